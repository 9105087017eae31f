import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import {
  describeViolations,
  SCHEMA_CHECKER_OPTIONS,
  type FailureKind,
  type SchemaViolation,
} from '../contract/index.js';
import { oneLine, type RunReport } from './outcome.js';

/**
 * How long checking a structured answer may take. A `pattern` of the schema can backtrack for
 * ever on a string the run chose (`^(a+)+$` on forty a's and a `!`), so the check runs in a
 * thread of its own that is stopped at this limit; the worker's event loop never waits on it.
 */
export const ANSWER_CHECK_MS = 5000;

/**
 * The thread's program. Plain JavaScript given as text, so the same program runs from source
 * (tests) and from dist; it compiles the schema as compileJsonSchema does.
 */
const CHECKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { Ajv } = require(workerData.ajv);
const addFormats = require(workerData.formats).default;
const ajv = new Ajv(workerData.options);
addFormats(ajv);
const validate = ajv.compile(workerData.schema);
const valid = validate(workerData.value);
parentPort.postMessage(
  valid ? [] : validate.errors.map((e) => ({ instancePath: e.instancePath, message: e.message })),
);
`;

const resolve = createRequire(import.meta.url).resolve;

type Checked =
  | { readonly done: true; readonly violations: readonly SchemaViolation[] }
  | { readonly done: false; readonly why: string };

/**
 * A run that succeeded still fails when the request asked for a structured answer and did not
 * get a valid one: the CLI reports success when the model never called its StructuredOutput
 * tool, and it does not check `format` keywords.
 */
export async function judgeAnswer(
  report: RunReport,
  jsonSchema: Readonly<Record<string, unknown>> | undefined,
  limitMs = ANSWER_CHECK_MS,
): Promise<RunReport> {
  if (jsonSchema === undefined || !report.success) return report;
  const failure =
    report.structuredOutputDroppedBytes === null
      ? await answerFailure(jsonSchema, report.structuredOutput, limitMs)
      : {
          kind: 'invalid-structured-output' as const,
          message: `the structured answer is ${report.structuredOutputDroppedBytes} bytes as JSON, more than MAX_OUTPUT_BYTES: it was not kept`,
        };
  if (failure === null) return report;
  return { ...report, success: false, failure: failure.kind, error: oneLine(failure.message) };
}

async function answerFailure(
  jsonSchema: Readonly<Record<string, unknown>>,
  answer: unknown,
  limitMs: number,
): Promise<{ kind: FailureKind; message: string } | null> {
  if (answer === null) {
    return {
      kind: 'no-structured-output',
      message: 'claude ended without a structured answer (jsonSchema): the model never gave one',
    };
  }
  const checked = await checkOffThread(jsonSchema, answer, limitMs);
  if (!checked.done) {
    return {
      kind: 'invalid-structured-output',
      message: `the structured answer could not be checked against jsonSchema: ${checked.why}`,
    };
  }
  if (checked.violations.length === 0) return null;
  return {
    kind: 'invalid-structured-output',
    message: `the structured answer does not match jsonSchema: ${describeViolations(checked.violations)}`,
  };
}

function checkOffThread(
  schema: Readonly<Record<string, unknown>>,
  value: unknown,
  limitMs: number,
): Promise<Checked> {
  return new Promise((settle) => {
    const thread = new Worker(CHECKER, {
      eval: true,
      workerData: {
        ajv: resolve('ajv'),
        formats: resolve('ajv-formats'),
        options: SCHEMA_CHECKER_OPTIONS,
        schema,
        value,
      },
    });
    let settled = false;
    const end = (checked: Checked): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      settle(checked);
      void thread.terminate();
    };
    const timer = setTimeout(() => {
      const seconds = limitMs / 1000;
      end({ done: false, why: `it took over ${seconds} s (does a pattern backtrack?)` });
    }, limitMs);
    thread.once('message', (violations: SchemaViolation[]) => end({ done: true, violations }));
    thread.once('error', (error) => end({ done: false, why: error.message }));
    thread.once('exit', (code) => end({ done: false, why: `its check ended with code ${code}` }));
  });
}
