import type { Job } from 'bullmq';
import type { RedisClient } from '../../redis/connections.js';
import type { Logger } from 'pino';
import type { ExecuteResult, QueueAddress } from '../../contract/index.js';
import type { Profiles } from '../../config/profiles.js';
import type { Isolation } from '../../isolation/index.js';
import type { Workspaces } from '../../workspace/index.js';
import type { EventPublisher } from '../events/publisher.js';
import type { SessionStore } from '../sessions/sessions.js';
import type { ActiveRuns } from './active-runs.js';
import type { AttemptTracing } from './attempt-trace.js';

export interface JobSettings {
  /** WORK_DIR, as a real path. */
  readonly workDir: string;
  readonly defaultTimeoutSeconds: number;
  /** MAX_TIMEOUT_SECONDS: the longest `timeout` a job may ask for. */
  readonly maxTimeoutSeconds: number;
  /** ALLOWED_PERMISSION_MODES: the permission modes a job may ask for. */
  readonly allowedPermissionModes: readonly string[];
  readonly maxOutputBytes: number;
  readonly maxPromptBytes: number;
  readonly maxLineBytes: number;
  readonly killGraceMs: number;
  /** RESULT_GRACE_SECONDS: how long the CLI may go on after its result line. */
  readonly resultGraceMs: number;
  readonly sessionSyncMs: number;
  readonly eventsTtlSeconds: number;
  /** Names of extra variables the CLI gets besides the built-in allow-list (CLAUDE_ENV). */
  readonly extraEnv: readonly string[];
  /** PROFILES_FILE's profiles by name: what a job's `profile` may name. */
  readonly profiles: Profiles;
  /** MAX_RATE_LIMIT_DELAYS: delayed retries of a job after 429s and 529s. */
  readonly maxRateLimitDelays: number;
  /** WORKSPACE_SOURCES: the git sources a job's workspace may name. */
  readonly workspaceSources: readonly string[];
  /** WORKSPACE_DIR, as a real path: no job's workingDir or addDirs may be in it. */
  readonly workspaceDir: string;
  /** WORKSPACE_PATCH_MAX_BYTES */
  readonly patchMaxBytes: number;
}

/** What processing a job needs, handed in so tests can use real parts of their own choosing. */
export interface JobContext {
  readonly settings: JobSettings;
  readonly claudeBin: string;
  readonly workerId: string;
  /** The environment the CLI's allow-listed one is taken from (the worker's own). */
  readonly envSource: Readonly<Record<string, string | undefined>>;
  readonly redis: RedisClient;
  readonly address: QueueAddress;
  readonly publisher: EventPublisher;
  readonly sessions: SessionStore | null;
  readonly isolation: Isolation;
  /** Cached clones and checkouts for jobs with a workspace; null when no source is allowed. */
  readonly workspaces: Workspaces | null;
  readonly runs: ActiveRuns;
  readonly logger: Logger;
  readonly now: () => number;
  readonly onFinished?: (result: ExecuteResult) => void;
  /** A checkpoint of a job's workspace was stored; it took this long. */
  readonly onCheckpoint?: (seconds: number) => void;
  /** A span per attempt; absent, nothing is traced. */
  readonly tracing?: AttemptTracing;
}

export type ExecuteJob = Job<unknown, ExecuteResult>;
