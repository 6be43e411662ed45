// Lints both contracts: contracts/asyncapi.json with @asyncapi/parser (fails on any diagnostic of
// severity error) and contracts/openapi.json with Redocly CLI (`redocly lint`, rules in
// contracts/redocly.yaml; fails on errors and on warnings).
//
//   node tests/contracts/lint.mjs            (`npm ci` in tests/browser first)
//
// Exit 0: both clean. 1: a problem (printed). 77: the AsyncAPI document is clean but this Node
// is too old for Redocly CLI (it needs 20.19+ or 22.12+), so the OpenAPI lint did not run.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { contractsDir, npmDir, require } from './contracts.mjs';

const asyncapiFile = path.join(contractsDir, 'asyncapi.json');
const openapiFile = path.join(contractsDir, 'openapi.json');
let failed = false;

// Spectral's severities: 0 error, 1 warning, 2 information, 3 hint.
const severities = ['error', 'warning', 'information', 'hint'];

async function lintAsyncApi() {
  const { Parser } = require('@asyncapi/parser');
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(readFileSync(asyncapiFile, 'utf8'), { source: asyncapiFile });
  for (const diagnostic of diagnostics) {
    const where = diagnostic.path?.length ? ` at /${diagnostic.path.join('/')}` : '';
    const line = diagnostic.range ? `:${diagnostic.range.start.line + 1}` : '';
    console.log(`asyncapi.json${line}${where}: ${severities[diagnostic.severity] ?? diagnostic.severity} ${diagnostic.code}: ${diagnostic.message}`);
  }
  const errors = diagnostics.filter((diagnostic) => diagnostic.severity === 0);
  if (!document || errors.length > 0) {
    console.log(`asyncapi.json: ${errors.length} errors`);
    failed = true;
  } else {
    console.log(`asyncapi.json: valid AsyncAPI ${document.version()} (${diagnostics.length} notes)`);
  }
}

function redoclyRuns() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major >= 22 || (major === 20 && minor >= 19) || (major === 22 && minor >= 12);
}

function lintOpenApi() {
  const cli = path.join(npmDir, 'node_modules/@redocly/cli/bin/cli.js');
  const result = spawnSync(
    process.execPath,
    [cli, 'lint', '--config', path.join(contractsDir, 'redocly.yaml'), '--max-problems', '200', openapiFile],
    {
      encoding: 'utf8',
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    },
  );
  const output = `${result.stdout}${result.stderr}`;
  // Keep Redocly's findings, not its banners.
  process.stdout.write(output.split('\n').filter((line) => !/[║╔╚═]/.test(line)).join('\n'));
  if (result.error) {
    console.log(`openapi.json: could not run Redocly CLI: ${result.error.message}`);
    failed = true;
  } else if (result.status !== 0) {
    console.log(`openapi.json: redocly lint exited with ${result.status}`);
    failed = true;
  } else if (/You have \d+ warnings?/.test(output)) {
    console.log('openapi.json: redocly lint found warnings');
    failed = true;
  }
}

await lintAsyncApi();
if (redoclyRuns()) {
  lintOpenApi();
} else {
  console.log(`openapi.json: not linted: Redocly CLI needs Node 20.19+ or 22.12+, this is ${process.version}`);
  process.exit(failed ? 1 : 77);
}
process.exit(failed ? 1 : 0);
