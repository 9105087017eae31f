import { z } from 'zod';
import { decimal, integer, NOT_DECIMAL, variablesSet } from '../common/environment.js';
import { MIN_READ_TOKEN_SECRET_LENGTH } from '../contract/index.js';
import { DEFAULT_MAX_HELD_BYTES, DEFAULT_MAX_STREAMS } from './gateway.js';

/**
 * The longest a stream may stay unread: a timer past 2^31 - 1 ms fires at once in Node.js, which
 * would cut every slow client off instead of none.
 */
export const MAX_SLOW_CLIENT_SECONDS = 86_400;

/**
 * The settings of `claudebox serve`, read from the environment next to the worker's REDIS_URL,
 * QUEUE_NAME and QUEUE_PREFIX. Documented in docs/gateway.md (a test checks every one is).
 */
export const GatewaySettingsSchema = z.object({
  GATEWAY_PORT: integer(0, 65535)
    .default(8090)
    .describe('The port the gateway listens on (`0`: any free port).'),
  GATEWAY_HOST: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .default('127.0.0.1')
    .describe('The address it listens on; put it behind a TLS proxy before opening it up.'),
  GATEWAY_SECRET: z
    .string()
    .min(
      MIN_READ_TOKEN_SECRET_LENGTH,
      `must be at least ${MIN_READ_TOKEN_SECRET_LENGTH} characters (e.g. openssl rand -hex 32)`,
    )
    .optional()
    .describe("The key read tokens are signed with (the client's `readTokenSecret`)."),
  GATEWAY_OPERATOR_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters (e.g. openssl rand -hex 32)')
    .optional()
    .describe('The token that reads every job, lists jobs, and opens Bull Board.'),
  GATEWAY_SLOW_CLIENT_SECONDS: z
    .preprocess(
      decimal,
      z
        .number({ error: NOT_DECIMAL })
        .min(0.001, 'must be a positive number of seconds, at least 0.001')
        .max(MAX_SLOW_CLIENT_SECONDS, `must be at most ${MAX_SLOW_CLIENT_SECONDS} (a day)`),
    )
    .default(30)
    .describe(
      'How long a client may leave an event stream unread (its buffer full) before it is disconnected.',
    ),
  GATEWAY_MAX_STREAMS: integer(1, 1_000_000)
    .default(DEFAULT_MAX_STREAMS)
    .describe(
      'Event streams open at once; one more is answered `503` with `Retry-After: 5` (see [Limits](#limits)).',
    ),
  GATEWAY_MAX_HELD_BYTES: integer(1024 * 1024)
    .default(DEFAULT_MAX_HELD_BYTES)
    .describe(
      'What all event streams may hold at once of long events (over 64 Ki characters) being written out (a byte a character); a stream whose long event does not fit is disconnected, to come back with Last-Event-ID (see [Limits](#limits)).',
    ),
});

export type GatewaySettings = z.output<typeof GatewaySettingsSchema>;

export class GatewaySettingsError extends Error {
  override readonly name = 'GatewaySettingsError';
}

/** Parses the environment, or throws naming every bad variable (never a secret's value). */
export function loadGatewaySettings(
  env: Readonly<Record<string, string | undefined>>,
): GatewaySettings {
  const present = variablesSet(Object.keys(GatewaySettingsSchema.shape), env);
  const parsed = GatewaySettingsSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      const shown = /SECRET|TOKEN/.test(name) ? '' : `=${JSON.stringify(present[name])}`;
      return `${name}${shown}: ${issue.message}`;
    });
    throw new GatewaySettingsError(`invalid gateway settings: ${problems.join('; ')}`);
  }
  const settings = parsed.data;
  if (settings.GATEWAY_SECRET === undefined && settings.GATEWAY_OPERATOR_TOKEN === undefined) {
    throw new GatewaySettingsError(
      'invalid gateway settings: set GATEWAY_OPERATOR_TOKEN or GATEWAY_SECRET (or both): without either no one could read anything',
    );
  }
  return settings;
}
