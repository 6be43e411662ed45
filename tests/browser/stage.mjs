// What the browser tests run on: a private redis-server, the real `flashsale` binary on a free
// port, and Debian's headless Chromium driven by playwright-core; and the pages opened on them
// (a viewer on a phone, the host console signed in with a key).
//
// Environment: FLASHSALE_BIN (the server), FLASHSALE_LOADTEST (for a replay's report),
// FLASHSALE_SOURCE_DIR (for configs/), and FLASHSALE_SCREENSHOTS (where the screenshots go;
// default build/screenshots).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { eventually, freePort, start, startRedis } from '../support/processes.mjs';

export const source = process.env.FLASHSALE_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const serverBinary = process.env.FLASHSALE_BIN ?? path.join(source, 'build/release/gateway/flashsale');
export const loadtestBinary =
    process.env.FLASHSALE_LOADTEST ?? path.join(source, 'build/release/loadtest/flashsale-loadtest');
const screenshots = process.env.FLASHSALE_SCREENSHOTS ?? path.join(source, 'build/screenshots');
// configs/dev.toml's keys.
export const hostKey = 'dev-host-key';
export const adminKey = 'dev-admin-key';

export const byTest = (page, id) => page.locator(`[data-testid="${id}"]`);
export const screenshot = (page, name, options = {}) =>
  page.screenshot({ path: path.join(screenshots, name), ...options });

export class Stage {
  folder = mkdtempSync(path.join(tmpdir(), 'flashsale-browser-'));
  #redisSocket = path.join(this.folder, 'redis.sock');
  #prefix;
  #redis = null;
  #server = null;
  port = null;
  browser = null;

  // `prefix`: the journal's, in this stage's own Redis.
  constructor(prefix) {
    this.#prefix = prefix;
  }

  async start() {
    mkdirSync(screenshots, { recursive: true });
    this.#redis = await startRedis(source, this.folder, this.#redisSocket);
    this.port = await freePort();
    await this.startServer();
    this.browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
             '--disable-component-update', '--no-first-run'],
    });
  }

  async stop() {
    await this.browser?.close();
    this.#server?.kill('SIGKILL');
    this.#redis?.kill('SIGKILL');
    rmSync(this.folder, { recursive: true, force: true });
  }

  async startServer() {
    const server = start(serverBinary, ['--config', path.join(source, 'configs/dev.toml'), '--redis', this.#redisSocket,
                                        '--listen', `127.0.0.1:${this.port}`, '--journal-prefix', this.#prefix]);
    this.#server = server;
    await eventually(async () => (await fetch(this.url('/healthz'))).ok, 20_000,
                     `flashsale on port ${this.port}:\n${server.output}`);
  }

  async stopServer() {
    this.#server.kill('SIGTERM');
    assert.equal(await this.#server.exited, 0, this.#server.output);
  }

  url(target) {
    return `http://127.0.0.1:${this.port}${target}`;
  }

  // The host API with `key`: the reply's status and JSON.
  async api(key, method, target, body) {
    const reply = await fetch(this.url(`/api/${target}`), {
      method,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: reply.status, body: await reply.json() };
  }

  // A phone-sized viewer page at `target` ("/?drop=…", "/s/…") signed in as `user`, once live;
  // `skewMs` sets the page's own clock off.
  async viewer(target, user, skewMs = 0) {
    const context = await this.browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    if (skewMs) {
      await context.addInitScript((skew) => {
        const realNow = Date.now.bind(Date);
        Date.now = () => realNow() + skew;
      }, skewMs);
    }
    const page = await context.newPage();
    await page.goto(this.url(`${target}${target.includes('?') ? '&' : '?'}user=${user}`));
    await byTest(page, 'connection').and(page.locator('[data-state="live"]')).waitFor();
    return page;
  }

  // The host console signed in with `key`; its confirmations are accepted.
  async console(key = hostKey) {
    const context = await this.browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    page.on('dialog', (dialog) => dialog.accept());
    await page.goto(this.url('/host'));
    await byTest(page, 'host-key').fill(key);
    await byTest(page, 'sign-in-button').click();
    await byTest(page, 'who').waitFor();
    return page;
  }
}

// Fills in the console's New drop form and creates the drop (into the stream chosen in the
// form, if any), then waits for the console to show it. `variants`: rows of the form's variant
// table, [{variant_id, variant_label, variant_price, …}], filled in first. A field's value may be
// a function, asked for it when its turn comes.
export async function createDrop(host, fields, variants = []) {
  const form = byTest(host, 'drop-form');
  for (const variant of variants) {
    await byTest(host, 'variant-add').click();
    const row = byTest(host, 'variant-rows').locator('tbody tr').last();
    for (const [name, value] of Object.entries(variant)) await row.locator(`[name="${name}"]`).fill(String(value));
  }
  for (const [name, value] of Object.entries(fields)) {
    await form.locator(`[name="${name}"]`).fill(String(typeof value === 'function' ? await value() : value));
  }
  await form.locator('button[type="submit"]').click();
  // "(chestnut)" for a drop outside streams, "(morning~chestnut)" for one in a stream.
  await host.locator('#live-title').filter({ hasText: new RegExp(`\\((?:[^()~]+~)?${fields.id}\\)`) }).waitFor();
}
