#!/usr/bin/env node
// The `claude` of the benchmark, for claudebox and the baselines alike. The prompt says what
// to print: "lines N bytes B rate R": N assistant lines of B bytes each (newline included),
// R lines a second (0: as fast as the pipe takes them), between an init and a result line.
// Paced lines carry `t`, when they were written (process.hrtime, in ms), for latency.
import { randomUUID } from 'node:crypto';

const session =
  process.argv.map((arg) => /^--(?:session-id|resume)=(.+)$/.exec(arg)?.[1]).find(Boolean) ??
  randomUUID();
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const prompt = Buffer.concat(chunks).toString('utf8');
const setting = (name, fallback) =>
  Number(new RegExp(`${name} (\\d+)`).exec(prompt)?.[1] ?? fallback);
const lines = setting('lines', 2);
const bytes = setting('bytes', 200);
const rate = setting('rate', 0);

const print = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);
// The monotonic clock is the machine's, the same in every process (performance.timeOrigin is not).
const now = () => Number(process.hrtime.bigint()) / 1e6;
/** An assistant line padded to `bytes`, newline included. */
const assistant = (t) => {
  const shell = {
    type: 'assistant',
    message: { role: 'assistant', content: [{ type: 'text', text: '' }] },
    session_id: session,
    t,
  };
  const text = 'x'.repeat(Math.max(0, bytes - 1 - JSON.stringify(shell).length));
  shell.message.content[0].text = text;
  return `${JSON.stringify(shell)}\n`;
};
const write = async (text) => {
  if (!process.stdout.write(text))
    await new Promise((resolve) => process.stdout.once('drain', resolve));
};

print({ type: 'system', subtype: 'init', cwd: process.cwd(), session_id: session });
if (rate === 0) {
  // One template line (t is a constant), written in chunks of about 64 KiB.
  const perChunk = Math.max(1, Math.floor(65536 / bytes));
  const chunk = assistant(0).repeat(perChunk);
  for (let left = lines; left > 0; left -= perChunk) {
    await write(left >= perChunk ? chunk : assistant(0).repeat(left));
  }
} else {
  const started = performance.now();
  for (let sent = 0; sent < lines;) {
    const due = Math.min(lines, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; sent < due; sent++) await write(assistant(now()));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
print({
  type: 'result',
  subtype: 'success',
  is_error: false,
  num_turns: 1,
  total_cost_usd: 0,
  usage: { input_tokens: 1, output_tokens: 1 },
  permission_denials: [],
  api_error_status: null,
  session_id: session,
  result: `printed ${lines} lines`,
});
