import { describe, expect, it } from 'vitest';
import {
  compileJsonSchema,
  MAX_FLAG_VALUE_BYTES,
  parseExecuteRequest,
} from '../../../src/contract/index.js';

const reason = (data: unknown): string => {
  const parsed = parseExecuteRequest(data);
  return parsed.ok ? '' : parsed.reason;
};

describe('maxBudgetUsd and jsonSchema in a request', () => {
  it('takes a positive budget and a JSON Schema object', () => {
    const jsonSchema = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { email: { type: 'string', format: 'email' } },
      required: ['email'],
    };
    expect(parseExecuteRequest({ prompt: 'p', maxBudgetUsd: 0.25, jsonSchema })).toEqual({
      ok: true,
      request: { prompt: 'p', maxBudgetUsd: 0.25, jsonSchema },
    });
  });

  it.each(['1', Infinity, null])('refuses the budget %j', (maxBudgetUsd) => {
    expect(reason({ prompt: 'p', maxBudgetUsd })).toBe(
      'maxBudgetUsd: must be a positive number of dollars',
    );
  });

  it.each([0.005, 0, -1])('refuses the budget %j, less than any attempt needs', (maxBudgetUsd) => {
    expect(reason({ prompt: 'p', maxBudgetUsd })).toBe(
      'maxBudgetUsd: must be at least 0.01 dollars',
    );
  });

  it('keeps a schema as sent, an own __proto__ key too, which a copy would drop', () => {
    const jsonSchema = JSON.parse('{"type":"object","__proto__":{"required":["a"]}}') as object;
    const parsed = parseExecuteRequest({ prompt: 'p', jsonSchema });
    expect(parsed.ok && JSON.stringify(parsed.request.jsonSchema)).toBe(
      '{"type":"object","__proto__":{"required":["a"]}}',
    );
  });

  it.each([['string'], [['array']], [null], [new Date(0)]])(
    'refuses %j as a schema',
    (jsonSchema) => {
      expect(reason({ prompt: 'p', jsonSchema })).toBe('jsonSchema: must be a JSON Schema object');
    },
  );

  it('refuses a schema that does not compile, or that the CLI would refuse, saying why', () => {
    expect(reason({ prompt: 'p', jsonSchema: { type: 'strnig' } })).toMatch(
      /^jsonSchema: is not a valid JSON Schema: schema is invalid: data\/type must be equal to one of the allowed values/,
    );
    // The pinned CLI compiles draft-07 in strict mode: unknown keywords are refused.
    expect(reason({ prompt: 'p', jsonSchema: { type: 'object', prefixItems: [] } })).toBe(
      'jsonSchema: is not a valid JSON Schema: strict mode: unknown keyword: "prefixItems"',
    );
    expect(
      reason({
        prompt: 'p',
        jsonSchema: { $schema: 'https://json-schema.org/draft/2020-12/schema' },
      }),
    ).toContain('no schema with key or ref');
  });

  it('refuses a schema nested past 100 levels, naming it, where checking it would overflow the stack', () => {
    const nest = (levels: number): Record<string, unknown> => {
      let schema: Record<string, unknown> = { type: 'string' };
      for (let i = 0; i < levels; i++) schema = { type: 'array', items: schema };
      return schema;
    };
    expect(reason({ prompt: 'p', jsonSchema: nest(5000) })).toBe(
      'jsonSchema: must be nested at most 100 levels deep',
    );
    expect(parseExecuteRequest({ prompt: 'p', jsonSchema: nest(50) }).ok).toBe(true);
  });

  it('compiles a schema whose definition hundreds of refs name into code that grows with the schema alone', () => {
    const properties = Object.fromEntries(
      Array.from({ length: 50 }, (_, i) => [`p${i}`, { type: 'string', minLength: 1 }]),
    );
    const schema = {
      definitions: { a: { type: 'object', properties } },
      allOf: Array.from({ length: 100 }, () => ({ $ref: '#/definitions/a' })),
    };
    const compiled = compileJsonSchema(schema);
    if (!compiled.ok) throw new Error(compiled.reason);
    // A copy of the definition's code at each ref made it 3 MB; four times these 4.6 KB now.
    expect(compiled.validate.toString().length).toBeLessThan(10 * JSON.stringify(schema).length);
    expect(compiled.validate({ p0: 'x' })).toBe(true);
    expect(compiled.validate({ p0: '' })).toBe(false);
  });

  it('refuses a schema too big for a command line argument', () => {
    const big = { type: 'object', description: 'x'.repeat(MAX_FLAG_VALUE_BYTES) };
    expect(reason({ prompt: 'p', jsonSchema: big })).toBe(
      `jsonSchema: must be at most ${MAX_FLAG_VALUE_BYTES} bytes as JSON`,
    );
  });
});
