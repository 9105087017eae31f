import { describe, expect, it } from 'vitest';
import { createClient } from '../../../src/client/index.js';
import { mintReadToken, verifyReadToken } from '../../../src/contract/index.js';

const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const NOW = Date.parse('2026-01-01T00:00:00Z');
const claims = { jobId: '42', queueName: 'claudebox', expiresAt: NOW / 1000 + 60 };

describe('read tokens', () => {
  it('carry the job, the queue and the expiry, signed: cbr1.<claims>.<signature>', () => {
    const token = mintReadToken(claims, SECRET);
    const [version, body] = token.split('.');

    expect(version).toBe('cbr1');
    expect(JSON.parse(Buffer.from(body ?? '', 'base64url').toString())).toEqual({
      job: '42',
      queue: 'claudebox',
      exp: claims.expiresAt,
    });
    expect(verifyReadToken(token, SECRET, NOW)).toEqual({ ok: true, claims });
  });

  it('are refused once expired, and when signed with another secret or altered', () => {
    const token = mintReadToken(claims, SECRET);
    expect(verifyReadToken(token, SECRET, NOW + 60_000)).toEqual({
      ok: false,
      reason: 'expired',
      expiresAt: claims.expiresAt,
    });
    expect(verifyReadToken(token, `${SECRET}!`, NOW)).toEqual({ ok: false, reason: 'invalid' });
    const [version, , signature] = token.split('.');
    const otherJob = Buffer.from(JSON.stringify({ job: '43', queue: 'claudebox', exp: 1e12 }));
    const altered = `${version}.${otherJob.toString('base64url')}.${signature}`;
    expect(verifyReadToken(altered, SECRET, NOW)).toEqual({ ok: false, reason: 'invalid' });
    expect(verifyReadToken('cbr1.x', SECRET, NOW)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('are refused when their expiry is no whole second a date can hold, as none minted here is', () => {
    for (const expiresAt of [-1e300, 1.5, 1e16, Number.NaN]) {
      const odd = mintReadToken({ ...claims, expiresAt }, SECRET);
      expect(verifyReadToken(odd, SECRET, NOW)).toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('are minted by the client for its queue, with the secret given once or per call', async () => {
    const client = createClient({
      url: 'redis://127.0.0.1:1',
      queueName: 'mine',
      readTokenSecret: SECRET,
    });
    try {
      const token = client.readToken('7', 30);
      const check = verifyReadToken(token, SECRET, Date.now());
      expect(check).toMatchObject({ ok: true, claims: { jobId: '7', queueName: 'mine' } });
      expect(() => client.readToken('7', 0)).toThrow('ttlSeconds must be a positive number');
      // Past what a token can carry, which the gateway would refuse as invalid.
      expect(() => client.readToken('7', 1e13)).toThrow(
        'ttlSeconds must end by 8640000000000 seconds after 1970',
      );
      expect(() => client.readToken('7', 30, 'short')).toThrow("needs the gateway's secret");
      // Tokens for no job a client could enqueue, which the gateway would refuse.
      expect(() => client.readToken(7 as never, 30)).toThrow('readToken: jobId must be a job id');
      expect(() => client.readToken('j'.repeat(257), 30)).toThrow(
        'readToken: jobId: is 257 characters, over the limit of 256',
      );
    } finally {
      await client.close();
    }
  });
});
