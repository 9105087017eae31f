import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  createGateway,
  GatewaySettingsSchema,
  loadGatewaySettings,
} from '../../../src/gateway/index.js';

describe('the gateway settings', () => {
  it('listen on 127.0.0.1:8090 by default, keeping at most 1,000 streams and 256 MiB of events open', () => {
    expect(loadGatewaySettings({ GATEWAY_OPERATOR_TOKEN: 'x'.repeat(16) })).toEqual({
      GATEWAY_PORT: 8090,
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_OPERATOR_TOKEN: 'x'.repeat(16),
      GATEWAY_SLOW_CLIENT_SECONDS: 30,
      GATEWAY_MAX_STREAMS: 1000,
      GATEWAY_MAX_HELD_BYTES: 256 * 1024 * 1024,
    });
  });

  it('name each bad variable, never showing a secret', () => {
    expect(() =>
      loadGatewaySettings({
        GATEWAY_PORT: '70000',
        GATEWAY_SECRET: 'hunter2',
        GATEWAY_SLOW_CLIENT_SECONDS: '0',
      }),
    ).toThrow(
      'invalid gateway settings: GATEWAY_PORT="70000": must be at most 65535; GATEWAY_SECRET: must be at least 32 characters (e.g. openssl rand -hex 32); GATEWAY_SLOW_CLIENT_SECONDS="0": must be a positive number of seconds, at least 0.001',
    );
  });

  it('refuse a stream limit that is no whole number of at least 1', () => {
    for (const value of ['0', '2.5', ' ']) {
      expect(() =>
        loadGatewaySettings({ GATEWAY_OPERATOR_TOKEN: 'x'.repeat(16), GATEWAY_MAX_STREAMS: value }),
      ).toThrow(`invalid gateway settings: GATEWAY_MAX_STREAMS=${JSON.stringify(value)}: must be`);
    }
  });

  it('refuse a slow-client time under a millisecond or past a day, which a timer would take as 1 ms', () => {
    expect(() =>
      loadGatewaySettings({
        GATEWAY_OPERATOR_TOKEN: 'x'.repeat(16),
        GATEWAY_SLOW_CLIENT_SECONDS: '0.0005',
      }),
    ).toThrow(
      'invalid gateway settings: GATEWAY_SLOW_CLIENT_SECONDS="0.0005": must be a positive number of seconds, at least 0.001',
    );
    expect(() =>
      loadGatewaySettings({
        GATEWAY_OPERATOR_TOKEN: 'x'.repeat(16),
        GATEWAY_SLOW_CLIENT_SECONDS: '3000000',
      }),
    ).toThrow(
      'invalid gateway settings: GATEWAY_SLOW_CLIENT_SECONDS="3000000": must be at most 86400 (a day)',
    );
  });

  it('refuse, as options of createGateway, timer lengths a Node.js timer cannot keep', () => {
    const range = 'must be a number of milliseconds from 1 to 2147483647';
    expect(() => createGateway({ slowClientMs: 3_000_000_000 })).toThrow(`slowClientMs: ${range}`);
    expect(() => createGateway({ heartbeatMs: 0 })).toThrow(`heartbeatMs: ${range}`);
    expect(() => createGateway({ heartbeatMs: Number.NaN })).toThrow(`heartbeatMs: ${range}`);
  });

  it('are each documented in docs/gateway.md', () => {
    const docs = readFileSync(new URL('../../../docs/gateway.md', import.meta.url), 'utf8');
    const missing = Object.keys(GatewaySettingsSchema.shape).filter(
      (name) => !docs.includes(`\`${name}\``),
    );
    expect(missing).toEqual([]);
  });
});
