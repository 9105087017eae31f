import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { looksLikeReadToken, verifyReadToken } from '../contract/index.js';

export interface AuthSettings {
  readonly operatorToken: string | undefined;
  /** The read tokens' key; without it only the operator token is accepted. */
  readonly secret: string | undefined;
  readonly queueName: string;
  readonly now: () => number;
}

/** What a request asks to read: everything (the job list, the board), or one job. */
export type Wanted = { readonly operator: true } | { readonly jobId: string };

export interface Denial {
  readonly status: 401 | 403;
  readonly message: string;
}

const NO_TOKEN =
  'this needs a token: the operator token (Authorization: Bearer), or a read token for the job (?token= or Bearer)';

/** The token a request carries: `Authorization: Bearer`, Basic's password, or `?token=`. */
export function tokenOf(c: Context): string | null {
  const header = c.req.header('authorization') ?? '';
  const [scheme, value = ''] = header.split(/\s+/, 2);
  if (scheme?.toLowerCase() === 'bearer' && value !== '') return value;
  if (scheme?.toLowerCase() === 'basic' && value !== '') {
    // Browsers can send Basic credentials on every request of a page (Bull Board's do).
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon >= 0 && colon < decoded.length - 1) return decoded.slice(colon + 1);
  }
  return c.req.query('token') ?? null;
}

/** Why the token does not give access to what is wanted, or null when it does. */
export function checkAccess(
  token: string | null,
  wanted: Wanted,
  auth: AuthSettings,
): Denial | null {
  if (token === null || token === '') return { status: 401, message: NO_TOKEN };
  if (auth.operatorToken !== undefined && sameSecret(token, auth.operatorToken)) return null;
  if (!looksLikeReadToken(token)) return { status: 401, message: 'the token is not valid here' };
  if (auth.secret === undefined) {
    return {
      status: 401,
      message:
        'this gateway takes no read tokens (it has no GATEWAY_SECRET): use the operator token',
    };
  }
  const check = verifyReadToken(token, auth.secret, auth.now());
  if (!check.ok) {
    return check.reason === 'expired'
      ? {
          status: 401,
          message: `the token expired at ${new Date((check.expiresAt ?? 0) * 1000).toISOString()}`,
        }
      : { status: 401, message: 'the token is not valid here' };
  }
  const { jobId, queueName } = check.claims;
  if (queueName !== auth.queueName || !('jobId' in wanted) || wanted.jobId !== jobId) {
    return { status: 403, message: `this token reads job ${jobId} of queue ${queueName} only` };
  }
  return null;
}

/** Hono middleware: the request goes on only with access to what `wanted` names. */
export function requireAccess(
  auth: AuthSettings,
  wanted: (c: Context) => Wanted,
  challenge = 'Bearer realm="claudebox"',
): MiddlewareHandler {
  return async (c, next) => {
    const denial = checkAccess(tokenOf(c), wanted(c), auth);
    if (denial === null) {
      await next();
      return;
    }
    if (denial.status === 401) c.header('www-authenticate', challenge);
    return c.json({ error: denial.message }, denial.status);
  };
}

/** Compared as digests in constant time: neither the token's bytes nor its length leak. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
