import { homedir } from 'node:os';
import { join } from 'node:path';
import type { RedisClient } from '../../redis/connections.js';
import type { Config } from '../../config/config.js';
import type { Profiles } from '../../config/profiles.js';
import type { QueueAddress } from '../../contract/index.js';
import type { Isolation } from '../../isolation/index.js';
import type { JobSettings } from '../attempt/context.js';
import { LocalTranscripts, RedisTranscripts, SessionStore } from '../sessions/sessions.js';

/** The settings an attempt works with, from the worker's configuration. */
export function jobSettings(config: Config, workDir: string, profiles: Profiles): JobSettings {
  return {
    workDir,
    defaultTimeoutSeconds: config.DEFAULT_TIMEOUT_SECONDS,
    maxTimeoutSeconds: config.MAX_TIMEOUT_SECONDS,
    allowedPermissionModes: config.ALLOWED_PERMISSION_MODES,
    maxOutputBytes: config.MAX_OUTPUT_BYTES,
    maxPromptBytes: config.MAX_PROMPT_BYTES,
    maxLineBytes: config.MAX_LINE_BYTES,
    killGraceMs: config.KILL_GRACE_SECONDS * 1000,
    resultGraceMs: config.RESULT_GRACE_SECONDS * 1000,
    sessionSyncMs: config.SESSION_SYNC_SECONDS * 1000,
    eventsTtlSeconds: config.EVENTS_TTL_SECONDS,
    extraEnv: config.CLAUDE_ENV,
    profiles,
    maxRateLimitDelays: config.MAX_RATE_LIMIT_DELAYS,
    workspaceSources: config.WORKSPACE_SOURCES,
    workspaceDir: workspaceDirOf(config, workDir),
    patchMaxBytes: config.WORKSPACE_PATCH_MAX_BYTES,
  };
}

/** WORKSPACE_DIR, or its default in WORK_DIR. */
export function workspaceDirOf(config: Config, workDir: string): string {
  return config.WORKSPACE_DIR ?? join(workDir, '.claudebox-workspaces');
}

/**
 * Where sessions outlive their runs: Redis (SESSION_STORE=redis); with SESSION_STORE=off, a
 * directory of the worker's for isolated runs (whose homes go when they end), else nowhere.
 */
export function sessionStoreFor(
  config: Config,
  redis: RedisClient,
  address: QueueAddress,
  isolation: Isolation,
): SessionStore | null {
  const sink =
    config.SESSION_STORE === 'redis'
      ? new RedisTranscripts(redis, address, config.SESSION_TTL_SECONDS)
      : isolation.summary.mode === 'uid'
        ? new LocalTranscripts(join(config.RUN_ROOT, 'sessions'), config.SESSION_TTL_SECONDS)
        : null;
  return sink && new SessionStore(sink, config.SESSION_MAX_BYTES);
}

/** The Claude config dir unisolated runs share: the worker's own. */
export function sharedClaudeConfigDir(env: Readonly<Record<string, string | undefined>>): string {
  return env.CLAUDE_CONFIG_DIR ?? join(env.HOME ?? homedir(), '.claude');
}
