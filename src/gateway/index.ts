export { createGateway, type Gateway, type GatewayOptions } from './gateway.js';
export {
  GatewaySettingsSchema,
  GatewaySettingsError,
  loadGatewaySettings,
  type GatewaySettings,
} from './settings.js';
export type { JobDetail, JobSummary } from './jobs.js';
