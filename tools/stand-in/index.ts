export {
  startStandIn,
  REQUESTS_PATH,
  type StandIn,
  type StandInOptions,
  type RecordedRequest,
  type Played,
} from './server.js';
export {
  decide,
  BASH_TIMEOUT_MS,
  type Decision,
  type Reply,
  type Scenario,
} from './scripted-model.js';
export { readConversation, type Conversation } from './conversation.js';
export { parseScript, parseStep, hasScript, type Step, type StepKind } from './script.js';
