import { describe, expect, it } from 'vitest';
import { readRunState, storedSessionId, type RunState } from '../../../src/contract/index.js';

const state: RunState = {
  attempt: 2,
  sessionId: '1b4e28ba-2fa1-41d2-883f-0016d3cca427',
  transcriptBaseline: 0,
  lastSeq: 7,
  pid: null,
  result: null,
};

describe('the run state on a job', () => {
  it('reads back the state the worker wrote, with or without a session', () => {
    expect(readRunState(state)).toEqual(state);
    expect(readRunState({ ...state, sessionId: null })).toEqual({ ...state, sessionId: null });
  });

  it.each(['../x', '', '1b4e28ba-2fa1-41d2-883f-0016d3cca427/../../x'])(
    'treats a stored state whose session id is %j, not a UUID, as no state at all',
    (sessionId) => {
      expect(readRunState({ ...state, sessionId })).toBeNull();
    },
  );

  it('keeps a session id the CLI printed only where it is a UUID, so the state stays readable', () => {
    const uuid = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
    expect(storedSessionId(uuid)).toBe(uuid);
    expect(storedSessionId('not-a-session')).toBeNull();
    expect(readRunState({ ...state, sessionId: storedSessionId('../x') })).not.toBeNull();
  });
});
