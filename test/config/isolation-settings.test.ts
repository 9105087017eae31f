import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';

describe('isolation and job limit settings', () => {
  it('default to isolation where possible and no bypassPermissions', () => {
    expect(loadConfig({})).toMatchObject({
      RUN_ISOLATION: 'auto',
      RUN_NAMESPACES: 'auto',
      RUN_ROOT: '/var/lib/claudebox',
      RUN_UID_BASE: 50000,
      RUN_UID_COUNT: 1000,
      RUN_MAX_PROCESSES: 2048,
      MAX_TIMEOUT_SECONDS: 86400,
      ALLOWED_PERMISSION_MODES: ['acceptEdits', 'auto', 'default', 'dontAsk', 'manual', 'plan'],
    });
  });

  it.each([
    [{ RUN_ISOLATION: 'maybe' }, 'RUN_ISOLATION="maybe": must be auto, required or off'],
    [{ RUN_NAMESPACES: 'yes' }, 'RUN_NAMESPACES="yes": must be auto or off'],
    [{ RUN_ROOT: 'relative/dir' }, 'RUN_ROOT="relative/dir": must be an absolute path'],
    [{ RUN_UID_BASE: '0' }, 'RUN_UID_BASE="0": must be at least 1'],
    [{ RUN_MAX_PROCESSES: '-1' }, 'RUN_MAX_PROCESSES="-1": must be at least 0'],
    [{ RUN_MAX_PROCESSES: 'lots' }, 'RUN_MAX_PROCESSES="lots": must be a number'],
    [
      { ALLOWED_PERMISSION_MODES: 'plan,yolo' },
      'ALLOWED_PERMISSION_MODES="plan,yolo": must be a comma-separated list of acceptEdits, auto, bypassPermissions, default, dontAsk, manual, plan',
    ],
    [
      { CLAUDE_ENV: 'GITHUB_TOKEN,REDIS_URL' },
      'CLAUDE_ENV="GITHUB_TOKEN,REDIS_URL": must not name the worker\'s own secrets (REDIS_URL, OTEL_EXPORTER_OTLP_HEADERS)',
    ],
    [
      { CLAUDE_ENV: 'OTEL_EXPORTER_OTLP_HEADERS' },
      'CLAUDE_ENV="OTEL_EXPORTER_OTLP_HEADERS": must not name the worker\'s own secrets',
    ],
    [
      { DEFAULT_TIMEOUT_SECONDS: '7200', MAX_TIMEOUT_SECONDS: '3600' },
      'DEFAULT_TIMEOUT_SECONDS=7200 is over MAX_TIMEOUT_SECONDS=3600',
    ],
  ])('refuses %o, naming the setting', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('lets an operator allow bypassPermissions explicitly', () => {
    expect(
      loadConfig({ ALLOWED_PERMISSION_MODES: 'default, bypassPermissions' })
        .ALLOWED_PERMISSION_MODES,
    ).toEqual(['default', 'bypassPermissions']);
  });
});
