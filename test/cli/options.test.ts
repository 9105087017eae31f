import { describe, expect, it } from 'vitest';
import { CliError } from '../../src/cli/exit-codes.js';
import {
  parseCount,
  parseInteger,
  parseList,
  parseNumber,
  parseWaitSeconds,
} from '../../src/cli/options.js';

describe('option values', () => {
  it('splits a tool list at commas, but not inside a rule\u2019s parentheses', () => {
    expect(parseList('Read, Bash(git log:*),Edit')).toEqual(['Read', 'Bash(git log:*)', 'Edit']);
    expect(parseList('Bash(npm run a,b),Read')).toEqual(['Bash(npm run a,b)', 'Read']);
    expect(parseList('')).toEqual([]);
    expect(parseList('Read,,')).toEqual(['Read']);
  });

  it('takes numbers as written and leaves their range to the job contract', () => {
    expect(parseNumber('--timeout', '2.5')).toBe(2.5);
    expect(parseNumber('--timeout', '-5')).toBe(-5);
    expect(parseInteger('--max-turns', '0')).toBe(0);
  });

  it('rejects what is not a number with exit code 2 and the option named', () => {
    for (const [parse, value] of [
      [() => parseNumber('--timeout', 'abc', 'a number of seconds'), 'abc'],
      [() => parseNumber('--timeout', '1e3'), '1e3'],
      [() => parseNumber('--timeout', ''), ''],
      [() => parseInteger('--max-turns', '1.5'), '1.5'],
    ] as const) {
      expect(parse).toThrow(CliError);
      expect(parse).toThrow(`${JSON.stringify(value)} is not`);
      try {
        parse();
      } catch (error) {
        expect(error).toMatchObject({ code: 2 });
      }
    }
    // Whole, but past what a double holds exactly: it would reach the job as 1e+20.
    const huge = () => parseInteger('--attempts', '99999999999999999999');
    expect(huge).toThrow('--attempts: must be at most 9007199254740991');
    expect(() => huge()).toThrow(expect.objectContaining({ code: 2 }));
    expect(() => parseCount('--attempts', '0', 1)).toThrow('--attempts: must be at least 1');
    expect(() => parseWaitSeconds('--wait', '-1')).toThrow('--wait: must not be negative');
    expect(parseWaitSeconds('--wait', '0')).toBe(0);
  });
});
