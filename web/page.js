// The live page of the claudebox gateway: recent jobs, and one run as it happens (or replayed).
// Everything a run printed is set as text, never as HTML.
'use strict';

const TOKEN_KEY = 'claudebox-operator-token';
const EVENT_TYPES = ['started', 'output', 'error', 'gap', 'completed', 'failed'];
/** Longer texts are cut in the page (the events keep them whole). */
const SHOW_CHARS = 20000;

const params = new URLSearchParams(location.search);
const page = {
  token: params.get('token') ?? sessionStorage.getItem(TOKEN_KEY) ?? '',
  jobId: params.get('job'),
  cursor: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function clip(value) {
  const text = typeof value === 'string' ? value : String(value ?? '');
  return text.length > SHOW_CHARS
    ? `${text.slice(0, SHOW_CHARS)}\n[... ${text.length - SHOW_CHARS} more characters]`
    : text;
}

function say(id, text) {
  $(id).textContent = text;
}

async function getJson(path) {
  const headers = page.token ? { Authorization: `Bearer ${page.token}` } : {};
  const response = await fetch(path, { headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? `the gateway answered ${response.status}`);
  return body;
}

// ---- the list of recent jobs ----

async function showJobs(more = false) {
  $('jobs-panel').hidden = false;
  const state = $('state-filter').value;
  const query = new URLSearchParams({ limit: '20' });
  if (state) query.set('state', state);
  if (more && page.cursor) query.set('cursor', page.cursor);
  try {
    const { jobs, nextCursor } = await getJson(`jobs?${query}`);
    if (!more) $('jobs').replaceChildren();
    for (const job of jobs) $('jobs').append(jobItem(job));
    page.cursor = nextCursor;
    $('more-jobs').hidden = nextCursor === null;
    say('page-status', jobs.length === 0 && !more ? 'No jobs in this state.' : '');
  } catch (error) {
    say('page-status', `Cannot list jobs: ${error.message}`);
  }
}

function jobItem(job) {
  const link = el('a', { href: `?job=${encodeURIComponent(job.jobId)}` }, `Job ${job.jobId}`);
  const created = job.createdAt
    ? el('time', { datetime: job.createdAt }, localTime(job.createdAt))
    : null;
  return el(
    'li',
    { 'data-job': job.jobId },
    link,
    el('span', { class: `state-${job.state}` }, job.state),
    el('span', { class: 'prompt', title: job.prompt ?? '' }, job.prompt ?? ''),
    created,
  );
}

/** A job's time as the reader's clock shows it; a job written by hand may have none. */
function localTime(iso) {
  return iso ? new Date(iso).toLocaleString() : 'unknown';
}

// ---- one run ----

const run = {
  lastSeq: 0,
  /** tool_use id -> tool name, to label each result with the call it answers. */
  tools: new Map(),
  /** The pieces so far of a line longer than the worker's MAX_LINE_BYTES. */
  partial: '',
  source: null,
};

async function showRun(jobId) {
  $('run').hidden = false;
  say('run-id', jobId);
  document.title = `claudebox: job ${jobId}`;
  try {
    const job = await getJson(`jobs/${encodeURIComponent(jobId)}`);
    say('run-state', job.state);
    $('run-state').className = `state-${job.state}`;
    say('run-created', localTime(job.createdAt));
    say('run-prompt', clip(job.prompt ?? ''));
  } catch (error) {
    say('run-status', `Cannot show job ${jobId}: ${error.message}`);
    return;
  }
  follow(jobId);
}

function follow(jobId) {
  const query = page.token ? `?token=${encodeURIComponent(page.token)}` : '';
  // EventSource reconnects by itself, sending the seq it got last as Last-Event-ID.
  const source = new EventSource(`jobs/${encodeURIComponent(jobId)}/events${query}`);
  run.source = source;
  source.onopen = () => say('run-status', 'Following the run live.');
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED)
      say('run-status', 'Connection lost; reconnecting.');
    else say('run-status', 'The connection was refused; reload to try again.');
  };
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (message) => receive(JSON.parse(message.data)));
  }
  source.addEventListener('end', (message) => {
    source.close();
    const { error } = JSON.parse(message.data || '{}');
    say('run-status', error ? `The stream ended: ${error}` : 'The run is over.');
  });
}

function receive(event) {
  // A reconnection resumes after the last seq; anything older would be a repeat.
  if (event.seq <= run.lastSeq) return;
  run.lastSeq = event.seq;
  const item = el('li', { 'data-seq': event.seq, 'data-type': event.type });
  item.append(...shown(event, item).filter((part) => part !== null));
  $('events').append(item);
  if ((event.type === 'completed' || event.type === 'failed') && !event.data.retrying) {
    showResult(event.data);
    say('run-state', event.type);
    $('run-state').className = `state-${event.type}`;
  }
}

/**
 * The event as the page shows it; as it came, where its shape is not one the page knows (a run
 * prints what it likes): never lost, and never an error that would lose the events after it.
 */
function shown(event, item) {
  try {
    return render(event, item);
  } catch {
    return [label(event.type), el('pre', {}, clip(JSON.stringify(event)))];
  }
}

function render(event, item) {
  switch (event.type) {
    case 'started':
      return started(event);
    case 'output':
      return output(event, item);
    case 'error':
      item.classList.add('bad');
      return [label('stderr'), el('pre', {}, clip(event.content))];
    case 'gap':
      return [label('lost'), `${event.data.count} events were lost (${event.data.reason}).`];
    default:
      return terminal(event);
  }
}

function label(text) {
  return el('span', { class: 'label' }, text);
}

function started(event) {
  const { pid, sessionId, resumed } = event.data;
  const session = sessionId ? `, session ${sessionId}` : '';
  return [
    label(`attempt ${event.attempt}`),
    `Started (pid ${pid}${session}${resumed ? ', resumed' : ''}).`,
  ];
}

function terminal(event) {
  const result = event.data;
  const how = result.success ? 'Completed' : `Failed (${result.failure})`;
  const retry = result.retrying ? ' Another attempt follows.' : '';
  return [
    label(`attempt ${event.attempt}`),
    `${how}.${retry}`,
    result.error ? el('pre', {}, result.error) : null,
  ];
}

function output(event, item) {
  if (event.data?.encoding === 'base64') return [label('output'), 'A line that is not text.'];
  if (event.data?.partial) {
    run.partial += event.content;
    return [label('output'), 'Part of a long line (it continues).'];
  }
  const text = run.partial + event.content;
  run.partial = '';
  let line;
  try {
    line = JSON.parse(text);
  } catch {
    return [label('output'), el('pre', {}, clip(text))];
  }
  if (line === null || typeof line !== 'object')
    return [label('output'), el('pre', {}, clip(text))];
  return streamLine(line, item);
}

/** One line of the CLI's stream-json. */
function streamLine(line, item) {
  if (line.type === 'system' && line.subtype === 'init') {
    return [
      label('session'),
      `Session ${line.session_id ?? ''}, model ${line.model ?? 'unknown'}.`,
    ];
  }
  if (line.type === 'assistant') return blocks(line.message?.content, item, assistantBlock);
  if (line.type === 'user') return blocks(line.message?.content, item, userBlock);
  if (line.type === 'result') {
    return [label(`result: ${line.subtype}`), el('pre', {}, clip(String(line.result ?? '')))];
  }
  return [label(line.type ?? 'output'), el('pre', {}, clip(JSON.stringify(line)))];
}

function blocks(content, item, renderBlock) {
  if (typeof content === 'string') return [el('p', { class: 'assistant-text' }, clip(content))];
  if (!Array.isArray(content)) return [];
  return content
    .filter((block) => block !== null && typeof block === 'object')
    .flatMap((block) => renderBlock(block, item));
}

function assistantBlock(block, item) {
  if (block.type === 'text') {
    return [label('assistant'), el('p', { class: 'assistant-text' }, clip(block.text))];
  }
  if (block.type === 'tool_use') {
    run.tools.set(block.id, block.name);
    item.classList.add('tool-call');
    const input = JSON.stringify(block.input, null, 2);
    return [label(`tool call: ${block.name}`), el('pre', { class: 'tool-input' }, clip(input))];
  }
  if (block.type === 'thinking') {
    return [
      el('details', {}, el('summary', {}, 'Thinking'), el('pre', {}, clip(block.thinking ?? ''))),
    ];
  }
  return [];
}

function userBlock(block, item) {
  if (block.type !== 'tool_result') return [];
  const name = run.tools.get(block.tool_use_id) ?? 'a tool';
  const content = Array.isArray(block.content)
    ? block.content.map((part) => (typeof part?.text === 'string' ? part.text : '')).join('\n')
    : String(block.content ?? '');
  if (block.is_error) item.classList.add('tool-error');
  const title = block.is_error ? `error from ${name}` : `result of ${name}`;
  return [label(title), el('pre', { class: 'tool-result' }, clip(content))];
}

function showResult(result) {
  $('result').hidden = false;
  say('result-outcome', result.success ? 'success' : `failed: ${result.failure}`);
  $('result-outcome').className = result.success ? 'ok' : 'bad';
  say('result-cost', result.costUsd === null ? 'unknown' : `$${result.costUsd.toFixed(4)}`);
  say('result-turns', result.numTurns === null ? 'unknown' : String(result.numTurns));
  say('result-duration', `${(result.durationMs / 1000).toFixed(1)} s`);
  say('result-attempt', String(result.attempt));
  say('result-text', clip(result.finalOutput ?? result.error ?? ''));
}

// ---- start ----

function start() {
  $('operator-form').addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('operator-token').value);
    location.search = page.jobId ? `?job=${encodeURIComponent(page.jobId)}` : '';
  });
  $('jobs-filter').addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    void showJobs();
  });
  $('state-filter').addEventListener('change', () => void showJobs());
  $('more-jobs').addEventListener('click', () => void showJobs(true));
  // A read token names one job: the list is for the operator.
  const readsOneJob = page.token.startsWith('cbr1.');
  $('operator-form').hidden = readsOneJob;
  if (!page.token)
    say('page-status', 'Enter the operator token, or open a link with a read token.');
  else if (!readsOneJob) void showJobs();
  document.querySelector('.skip').hidden = !page.jobId;
  if (page.jobId) void showRun(page.jobId);
}

start();
