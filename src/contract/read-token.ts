import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * A read token lets its holder read one job's events and state through the HTTP gateway, and
 * nothing else, until it expires. It is `cbr1.<claims>.<signature>`: the claims are the
 * base64url of `{"job":"<jobId>","queue":"<queueName>","exp":<unix seconds>}`, the signature
 * the base64url of HMAC-SHA256(secret, "cbr1.<claims>"). Anyone holding the gateway's secret
 * can mint one, in any language.
 */
export const READ_TOKEN_VERSION = 'cbr1';

/** Shorter secrets are refused: an HMAC key is only as strong as it is long. */
export const MIN_READ_TOKEN_SECRET_LENGTH = 32;

export interface ReadTokenClaims {
  readonly jobId: string;
  readonly queueName: string;
  /** Unix time in seconds after which the token is refused. */
  readonly expiresAt: number;
}

export type ReadTokenCheck =
  | { readonly ok: true; readonly claims: ReadTokenClaims }
  | { readonly ok: false; readonly reason: 'invalid' | 'expired'; readonly expiresAt?: number };

function sign(body: string, secret: string): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

export function mintReadToken(claims: ReadTokenClaims, secret: string): string {
  const payload = { job: claims.jobId, queue: claims.queueName, exp: claims.expiresAt };
  const body = `${READ_TOKEN_VERSION}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${body}.${sign(body, secret).toString('base64url')}`;
}

/** Whether the text is shaped like a read token (as opposed to an operator token). */
export function looksLikeReadToken(token: string): boolean {
  return token.startsWith(`${READ_TOKEN_VERSION}.`);
}

/** The token's claims if its signature holds and it has not expired at `nowMs`. */
export function verifyReadToken(token: string, secret: string, nowMs: number): ReadTokenCheck {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== READ_TOKEN_VERSION)
    return { ok: false, reason: 'invalid' };
  const [version, claims, signature] = parts as [string, string, string];
  const expected = sign(`${version}.${claims}`, secret);
  const given = Buffer.from(signature, 'base64url');
  // Compared in constant time, so the signature cannot be guessed byte by byte.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'invalid' };
  }
  const parsed = parseClaims(claims);
  if (parsed === null) return { ok: false, reason: 'invalid' };
  if (parsed.expiresAt * 1000 <= nowMs) {
    return { ok: false, reason: 'expired', expiresAt: parsed.expiresAt };
  }
  return { ok: true, claims: parsed };
}

function parseClaims(encoded: string): ReadTokenClaims | null {
  try {
    const raw = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    const { job, queue, exp } = raw;
    if (typeof job !== 'string' || typeof queue !== 'string' || !isDateSeconds(exp)) return null;
    return { jobId: job, queueName: queue, expiresAt: exp };
  } catch {
    return null;
  }
}

/** The last second a Date can hold, either side of 1970: no token expires later. */
export const MAX_DATE_SECONDS = 8.64e12;

/** Whole seconds, as minted, of a time a Date can hold (and an expiry message name). */
function isDateSeconds(exp: unknown): exp is number {
  return Number.isSafeInteger(exp) && Math.abs(exp as number) <= MAX_DATE_SECONDS;
}
