// Recorded real traffic against the contracts: every HTTP answer and every WebSocket frame that
// tests exchanged with a real server must be what contracts/openapi.json and
// contracts/asyncapi.json say, and the server must write no field they do not list.
//
//   FLASHSALE_TRAFFIC_DIR=DIR node --test tests/contracts/      (`npm ci` in tests/browser first)
//
// DIR holds *.jsonl files, one exchange a line:
//   {"kind":"http","method":"POST","target":"/api/drops/d/close?x=1","status":200,"body":"…"}
//   {"kind":"ws","direction":"received","frame":"…"}      a text frame the server sent
//   {"kind":"ws","direction":"sent","frame":"…"}          a text frame a client sent
// A "sent" line with "unchecked": true is not checked (a test sending a bad frame on purpose).
// Without FLASHSALE_TRAFFIC_DIR, or with no *.jsonl files in it, the test is skipped.
//
// Rules. http: the path (query stripped) is matched against the OpenAPI path templates and the
// method (HEAD only where the document has a `head` operation). A documented operation must
// document the status (or `default`), and a JSON body must validate against that response's
// schema, with no undocumented field at any depth. A request no operation documents (tests call
// bad routes and methods on purpose) must be refused with 401, 404, 405 or 429 and an Error
// body. /metrics, the pages (/, /host, /web/…) and the WebSocket upgrade (/ws) are not JSON APIs
// and are out of the document: only their error answers are checked (an Error body).
// ws received: a JSON object whose `type` is a documented server message, valid against it,
// with no undocumented field at any depth. ws sent: valid against the client message of its
// `type` (clients may add fields: the server ignores them).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { HttpContract, WsContract } from './contracts.mjs';

const refusedStatuses = new Set([401, 404, 405, 429]);
const outOfDocument = [/^\/metrics$/, /^\/$/, /^\/host$/, /^\/web\//, /^\/ws$/];
const examplesPerProblem = 3;

function trafficFiles(dir) {
  if (!dir) return [];
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.endsWith('.jsonl'))
    .map((name) => path.join(dir, name))
    .filter((file) => statSync(file).isFile())
    .sort();
}

function clip(text, max = 300) {
  const one = typeof text === 'string' ? text : JSON.stringify(text);
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

// Problems grouped by what went wrong, with the first few places each was seen.
class Findings {
  constructor() {
    this.groups = new Map();
    this.counts = { http: 0, 'ws received': 0, 'ws sent': 0, unchecked: 0, 'out of document': 0 };
  }

  add(problem, where, detail) {
    let group = this.groups.get(problem);
    if (!group) {
      group = { count: 0, examples: [] };
      this.groups.set(problem, group);
    }
    group.count += 1;
    if (group.examples.length < examplesPerProblem) group.examples.push(`${where}: ${clip(detail)}`);
  }

  report() {
    const lines = [];
    for (const [problem, { count, examples }] of [...this.groups].sort((a, b) => b[1].count - a[1].count)) {
      lines.push(`${problem}  (${count}×)`);
      for (const example of examples) lines.push(`    ${example}`);
    }
    return lines.join('\n');
  }
}

function checkHttp(http, line, where, findings) {
  const { method, target, status, body } = line;
  if (typeof method !== 'string' || typeof target !== 'string' || !Number.isInteger(status) || typeof body !== 'string') {
    findings.add('http line without method, target, status and body', where, line);
    return;
  }
  findings.counts.http += 1;
  const pathname = target.split('#')[0].split('?')[0];
  const upper = method.toUpperCase();
  const found = http.operation(upper, pathname);
  // A HEAD answer has no body to read (a client records none).
  const headersOnly = upper === 'HEAD' && body === '';
  // The body against `schema` (each problem named after `what`); a HEAD answer has none.
  const checkBody = (label, schema, what) => {
    if (headersOnly) return;
    let parsed;
    try {
      parsed = JSON.parse(body);
    } catch {
      findings.add(`${label}: ${status} body is not JSON`, where, body);
      return;
    }
    for (const problem of http.schemas.check(schema, parsed)) findings.add(`${what}: ${problem}`, where, body);
  };
  const errorBody = (label) => checkBody(label, http.errorSchema, `${label}: ${status} body against Error`);

  if (!found?.operation) {
    if (outOfDocument.some((pattern) => pattern.test(pathname))) {
      findings.counts['out of document'] += 1;
      if (status >= 400) errorBody(`${upper} ${pathname} (out of document)`);
      return;
    }
    const label = found ? `${upper} ${found.template} (method not documented)` : `${upper} (path not documented)`;
    if (!refusedStatuses.has(status)) findings.add(`${label}: status ${status} is not 401/404/405/429`, where, `${upper} ${target} → ${status} ${body}`);
    errorBody(label);
    return;
  }

  const label = `${upper} ${found.template}`;
  const response = http.response(found.operation, status);
  if (!response) {
    findings.add(`${label}: status ${status} is not documented`, where, `${target} → ${body}`);
    return;
  }
  const media = response.content?.['application/json'];
  if (!media) {
    if (body !== '' && response.content) findings.add(`${label}: ${status} body is not documented as JSON`, where, body);
    return;
  }
  checkBody(label, media.schema, `${label} ${status}`);
}

function checkWs(ws, line, where, findings) {
  const { direction, frame } = line;
  if (typeof frame !== 'string' || (direction !== 'received' && direction !== 'sent')) {
    findings.add('ws line without direction ("received" or "sent") and frame', where, line);
    return;
  }
  if (direction === 'sent' && line.unchecked === true) {
    findings.counts.unchecked += 1;
    return;
  }
  findings.counts[`ws ${direction}`] += 1;
  const side = direction === 'received' ? 'server → client' : 'client → server';
  let message;
  try {
    message = JSON.parse(frame);
  } catch {
    findings.add(`${side}: frame is not JSON`, where, frame);
    return;
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    findings.add(`${side}: frame is not a JSON object`, where, frame);
    return;
  }
  const known = (direction === 'received' ? ws.server : ws.client).get(message.type);
  if (!known) {
    findings.add(`${side}: type ${JSON.stringify(message.type)} is not a documented message`, where, frame);
    return;
  }
  // Clients may send fields the server ignores; the server must send none it does not document.
  const drift = direction === 'received';
  for (const problem of ws.schemas.check(known.schema, message, { drift })) findings.add(`${side} ${known.name}: ${problem}`, where, frame);
}

test('recorded traffic matches the contracts', (t) => {
  const dir = process.env.FLASHSALE_TRAFFIC_DIR;
  const files = trafficFiles(dir);
  if (files.length === 0) {
    t.skip(dir ? `no *.jsonl files in FLASHSALE_TRAFFIC_DIR=${dir}` : 'FLASHSALE_TRAFFIC_DIR is not set: no recorded traffic to check');
    return;
  }
  const http = new HttpContract();
  const ws = new WsContract();
  const findings = new Findings();
  let lines = 0;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    text.split('\n').forEach((raw, index) => {
      if (raw.trim() === '') return;
      lines += 1;
      const where = `${path.basename(file)}:${index + 1}`;
      let line;
      try {
        line = JSON.parse(raw);
      } catch {
        findings.add('line is not JSON', where, raw);
        return;
      }
      if (line?.kind === 'http') checkHttp(http, line, where, findings);
      else if (line?.kind === 'ws') checkWs(ws, line, where, findings);
      else findings.add('line whose kind is neither "http" nor "ws"', where, raw);
    });
  }
  const { counts } = findings;
  t.diagnostic(
    `${lines} lines in ${files.length} files: ${counts.http} HTTP answers (${counts['out of document']} out of the document), ` +
      `${counts['ws received']} frames received, ${counts['ws sent']} sent (${counts.unchecked} unchecked)`,
  );
  if (findings.groups.size > 0) {
    const total = [...findings.groups.values()].reduce((sum, group) => sum + group.count, 0);
    assert.fail(`${total} problems of ${findings.groups.size} kinds in recorded traffic (${dir}):\n${findings.report()}`);
  }
});
