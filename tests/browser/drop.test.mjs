// The viewer page and the host console end to end, in Debian's headless Chromium driven by
// playwright-core, against a real redis-server and the real `flashsale` binary (stage.mjs).
//
//   node --test tests/browser/            (CTest runs it; `npm ci` in tests/browser first)
//
// Environment: see stage.mjs.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { eventually, start } from '../support/processes.mjs';
import { Stage, byTest, createDrop, hostKey, loadtestBinary, screenshot, source } from './stage.mjs';

const stage = new Stage('browser');
before(() => stage.start());
after(() => stage.stop());

const url = (target) => stage.url(target);
const viewer = (drop, user, skewMs = 0) => stage.viewer(`/?drop=${drop}`, user, skewMs);
const console_ = () => stage.console(hostKey);

const status = (page) => byTest(page, 'order-status').getAttribute('data-status');

test('a drop from the console: countdown, a fair start, one winner of one unit, payment', async () => {
  const host = await console_();
  // A two-second fair start: both clicks land inside it, so neither page can see the drop
  // sell out before its own click (without it the second click may find Buy disabled already).
  await createDrop(host, { id: 'chestnut', title: 'Roasted chestnuts', price: '19.90', stock: 1,
                           per_user_limit: 1, hold_seconds: 60, waitlist_limit: 0,
                           admission_window_ms: 2000, beneficiary: 'Village school', pledge: '15' });
  const ann = await viewer('chestnut', 'ann');
  const bob = await viewer('chestnut', 'bob');
  // A viewer whose own clock is five minutes fast still counts down with the server.
  const skewed = await viewer('chestnut', 'cat', 5 * 60 * 1000);
  for (const page of [ann, bob]) {
    await page.locator('#title').filter({ hasText: 'Roasted chestnuts' }).waitFor();
    assert.equal(await byTest(page, 'stock-left').textContent(), '1');
    assert.equal(await byTest(page, 'buy').isDisabled(), true, 'Buy is disabled before a countdown');
  }

  await host.locator('#start-seconds').fill('3');
  await byTest(host, 'drop-start').click();

  // The countdown ticks down on both pages, and Buy stays disabled until T-0.
  const seen = new Set();
  await eventually(async () => {
    const text = await byTest(ann, 'countdown').textContent();
    if (/^0:0[1-3]$/.test(text)) seen.add(text);
    assert.equal(await byTest(ann, 'buy').isDisabled(), true);
    const [mine, theirs] = [text, await byTest(skewed, 'countdown').textContent()];
    if (/^0:0[1-3]$/.test(theirs)) {
      assert.ok(Math.abs(Number(mine.slice(2)) - Number(theirs.slice(2))) <= 1,
                `a skewed clock shows ${theirs} where the server's shows ${mine}`);
    }
    return seen.size >= 2;
  }, 5_000, 'the countdown to tick');
  await screenshot(host, 'host-console-countdown.png');
  await screenshot(ann, 'viewer-countdown.png');

  await Promise.all([ann, bob].map((page) => byTest(page, 'buy').and(page.locator(':enabled')).waitFor({ timeout: 8_000 })));
  assert.equal(await byTest(ann, 'countdown').textContent(), '0:00');
  await Promise.all([byTest(ann, 'buy').click(), byTest(bob, 'buy').click()]);
  // Inside the window both wait for the draw.
  assert.match(await byTest(ann, 'order-status').textContent(), /in the draw/);

  await eventually(async () => (await status(ann)) && (await status(bob)) &&
                               !['', 'busy'].includes(await status(ann)) && !['', 'busy'].includes(await status(bob)),
                   10_000, 'both outcomes');
  const outcomes = [await status(ann), await status(bob)];
  assert.equal(outcomes.filter((outcome) => outcome === 'reserved').length, 1, `outcomes ${outcomes}`);
  assert.ok(outcomes.includes('sold_out') || outcomes.includes('waitlisted'), `outcomes ${outcomes}`);
  const [winner, loser] = outcomes[0] === 'reserved' ? [ann, bob] : [bob, ann];
  await eventually(async () => (await byTest(loser, 'stock-left').textContent()) === '0', 5_000, 'stock 0');
  await screenshot(winner, 'viewer-reserved.png');
  await screenshot(loser, 'viewer-sold-out.png');

  await byTest(winner, 'pay').click();
  await eventually(async () => (await status(winner)) === 'confirmed', 5_000, 'confirmed');
  assert.match(await byTest(winner, 'order-status').textContent(), /Paid/);
  // A charity drop: 15% of ¥19.90, rounded down, reaches every viewer.
  await eventually(async () => /¥2\.98 raised for Village school · 1 supporter/.test(
                                   await byTest(loser, 'raised').textContent()),
                   5_000, 'the amount raised');
  await screenshot(winner, 'viewer-paid.png');
  await eventually(async () => (await host.locator('#live-sold').textContent()) === '1', 5_000,
                   'the console to show the sale');
  await screenshot(host, 'host-console.png', { fullPage: true });
});

test('a viewer page reconnects after a server restart and shows the order it had', async () => {
  const host = await console_();
  await createDrop(host, { id: 'pears', title: 'Snow pears', price: '9.90', stock: 5,
                           per_user_limit: 1, hold_seconds: 600, waitlist_limit: 0 });
  await host.locator('#start-seconds').fill('0');
  await byTest(host, 'drop-start').click();
  const dan = await viewer('pears', 'dan');
  await byTest(dan, 'buy').and(dan.locator(':enabled')).waitFor({ timeout: 8_000 });
  await byTest(dan, 'buy').click();
  await eventually(async () => (await status(dan)) === 'reserved', 5_000, 'reserved');

  await stage.stopServer();
  await byTest(dan, 'connection').and(dan.locator('[data-state="lost"]')).waitFor();
  await stage.startServer();
  await byTest(dan, 'connection').and(dan.locator('[data-state="live"]')).waitFor({ timeout: 20_000 });
  await eventually(async () => (await status(dan)) === 'reserved', 5_000, 'the order after reconnecting');
  assert.equal(await byTest(dan, 'pay').isVisible(), true);

  // A reload keeps the client_order_id: asking again returns the same reservation.
  await dan.reload();
  await eventually(async () => (await status(dan)) === 'reserved', 10_000, 'the order after a reload');
  assert.equal(await byTest(dan, 'stock-left').textContent(), '4');
});

test('a drop in three sizes: scheduled from the console, one size sells out, the sale ends by itself', async () => {
  const host = await console_();
  // Five seconds from now on the console's own clock, as its datetime-local field takes it (whole
  // seconds, the host's time zone, no ":00" for none): rounded up, so the drop opens in 5-6 s.
  // Asked for last, just before the form goes.
  let opensAt;
  const fiveSecondsAhead = async () => {
    opensAt = await host.evaluate(() => {
      const at = new Date(Math.ceil((Date.now() + 5_000) / 1000) * 1000);
      const two = (number) => String(number).padStart(2, '0');
      return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}T${two(at.getHours())}:` +
             `${two(at.getMinutes())}${at.getSeconds() ? `:${two(at.getSeconds())}` : ''}`;
    });
    return opensAt;
  };
  await createDrop(host, { id: 'tees', title: 'Festival tees', per_user_limit: 2, per_variant_limit: 1,
                           hold_seconds: 60, waitlist_limit: 0, duration_seconds: 20, opens_at: fiveSecondsAhead }, [
    { variant_id: 'S', variant_label: 'Small', variant_price: '59.00', variant_list_price: '99.00', variant_stock: 1 },
    { variant_id: 'M', variant_label: 'Medium', variant_price: '69.00', variant_list_price: '99.00', variant_stock: 5 },
    { variant_id: 'L', variant_label: 'Large', variant_price: '79.00', variant_list_price: '', variant_stock: 5 },
  ]);
  const opensAtMs = await host.evaluate((text) => new Date(text).getTime(), opensAt);
  // What the console asked for, as the server keeps it.
  const reply = await fetch(url('/api/drops/tees'), { headers: { Authorization: `Bearer ${hostKey}` } });
  const created = await reply.json();
  assert.equal(created.state, 'countdown');
  assert.equal(created.opens_at_ms, opensAtMs);
  assert.equal(created.closes_at_ms, opensAtMs + 20_000);
  assert.equal(created.per_variant_limit, 1);
  assert.equal(created.price_cents, 5900, 'the lowest price');
  assert.deepEqual(created.variants.map(({ id, label, price_cents, list_price_cents, stock_total }) =>
                     ({ id, label, price_cents, list_price_cents, stock_total })), [
    { id: 'S', label: 'Small', price_cents: 5900, list_price_cents: 9900, stock_total: 1 },
    { id: 'M', label: 'Medium', price_cents: 6900, list_price_cents: 9900, stock_total: 5 },
    { id: 'L', label: 'Large', price_cents: 7900, list_price_cents: undefined, stock_total: 5 },
  ]);
  await byTest(host, 'live-variants').locator('tbody tr').nth(2).waitFor();

  const [ann, bob] = await Promise.all([viewer('tees', 'ann'), viewer('tees', 'bob')]);
  for (const page of [ann, bob]) {
    await byTest(page, 'variants').waitFor();
    assert.deepEqual(await byTest(page, 'variants').locator('.name').allTextContents(), ['Small', 'Medium', 'Large']);
    assert.equal(await byTest(page, 'variant-S').locator('.left').textContent(), '1 left');
    assert.equal(await page.locator('#deal-price').textContent(), 'from ¥59.00');
    assert.match(await byTest(page, 'sale-left').textContent(), /^Then on sale for 0:20$/);
    assert.equal(await byTest(page, 'buy').isDisabled(), true, 'Buy is disabled in the countdown');
  }
  // Each picks a size before T-0: its deal price, the list price struck through, the discount.
  await byTest(ann, 'variant-S').click();
  await byTest(bob, 'variant-M').click();
  assert.equal(await byTest(ann, 'variant-S').getAttribute('aria-pressed'), 'true');
  assert.equal(await ann.locator('#deal-price').textContent(), '¥59.00');
  assert.equal(await byTest(ann, 'list-price').textContent(), '¥99.00');
  assert.equal(await byTest(ann, 'discount').textContent(), '40% off');
  assert.equal(await bob.locator('#deal-price').textContent(), '¥69.00');
  assert.equal(await byTest(bob, 'discount').textContent(), '30% off');
  await byTest(bob, 'variant-L').click();
  assert.equal(await byTest(bob, 'list-price').isHidden(), true, 'Large has no list price');
  await byTest(bob, 'variant-M').click();

  await Promise.all([ann, bob].map((page) => byTest(page, 'buy').and(page.locator(':enabled')).waitFor({ timeout: 10_000 })));
  assert.match(await byTest(ann, 'sale-left').textContent(), /^Sale ends in 0:(1\d|20)$/);
  await Promise.all([byTest(ann, 'buy').click(), byTest(bob, 'buy').click()]);
  await byTest(ann, 'order-status').and(ann.locator('[data-status="reserved"]')).waitFor({ timeout: 5_000 });
  await byTest(bob, 'order-status').and(bob.locator('[data-status="reserved"]')).waitFor({ timeout: 5_000 });
  assert.match(await byTest(ann, 'order-status').textContent(), /^Small: Reserved for you/);
  assert.match(await byTest(bob, 'order-status').textContent(), /^Medium: Reserved for you/);

  // Small's only unit is ann's: sold out on both pages, and nobody can pick it.
  for (const page of [ann, bob]) {
    await byTest(page, 'variant-S').and(page.locator('[data-state="sold-out"]:disabled')).waitFor({ timeout: 5_000 });
    assert.equal(await byTest(page, 'variant-S').locator('.left').textContent(), 'sold out');
    await byTest(page, 'variant-M').locator('.left').filter({ hasText: /^4 left$/ }).waitFor({ timeout: 5_000 });
    assert.equal(await byTest(page, 'stock-left').textContent(), '9');
  }
  await screenshot(ann, 'viewer-variants.png');
  await byTest(ann, 'pay').click();
  await byTest(ann, 'order-status').and(ann.locator('[data-status="confirmed"]')).waitFor({ timeout: 5_000 });

  // The console: per-size numbers, the time left in the sale, and a restock of one size.
  const small = byTest(host, 'live-variants').locator('tr[data-variant="S"] td');
  await eventually(async () => (await small.allTextContents()).slice(2).join(' ') === '0 0 1 0 1', 5_000,
                   'Small: none left, none held, one sold');
  assert.match(await byTest(host, 'live-closes').textContent(), /^0:[0-2]\d$/, 'the time left in the sale');
  await screenshot(host, 'host-console-variants.png', { fullPage: true });
  await byTest(host, 'restock-variant').selectOption('S');
  await host.locator('#restock-add').fill('2');
  await byTest(host, 'drop-restock').click();
  for (const page of [ann, bob]) {
    await byTest(page, 'variant-S').and(page.locator('[data-state="available"]:enabled')).waitFor({ timeout: 5_000 });
    assert.equal(await byTest(page, 'variant-S').locator('.left').textContent(), '2 left');
  }

  // Twenty seconds after the opening instant the sale ends by itself, on every page.
  for (const page of [ann, bob]) {
    await byTest(page, 'sale-left').filter({ hasText: /^Sale ended$/ }).waitFor({ timeout: 25_000 });
    await byTest(page, 'buy').and(page.locator(':disabled')).filter({ hasText: /^Sale ended$/ }).waitFor();
    assert.equal(await byTest(page, 'variant-M').isDisabled(), true);
  }
  await screenshot(ann, 'viewer-sale-ended.png');
  await host.locator('#live-state').filter({ hasText: /^closed$/ }).waitFor({ timeout: 5_000 });
  assert.equal(await byTest(host, 'live-closes').textContent(), 'ended');
});

test('a replay report reads as charts with titles, captions and labelled axes', async () => {
  const trace = path.join(stage.folder, 'small.jsonl');
  const report = path.join(stage.folder, 'report');
  const gen = start(loadtestBinary, ['gen', '--scenario', path.join(source, 'tests/loadtest/small.toml'),
                                     '--out', trace, '--seed', '3']);
  assert.equal(await gen.exited, 0, gen.output);
  const replay = start(loadtestBinary, ['replay', '--trace', trace, '--url', `ws://127.0.0.1:${stage.port}/ws`,
                                        '--api', `http://127.0.0.1:${stage.port}`, '--report', report,
                                        '--grace-seconds', '2']);
  assert.equal(await replay.exited, 0, replay.output);
  assert.match(replay.output, /answered \d+ \(\d+\/s\):.* p99 [\d.]+ ms/, 'the progress line');

  const context = await stage.browser.newContext({ viewport: { width: 900, height: 1200 } });
  const page = await context.newPage();
  await page.goto(`file://${report}/report.html`);
  const figures = page.locator('figure');
  assert.ok(await figures.count() >= 7, 'answers, latency, stock, connections, frames, CPU, memory');
  for (const figure of await figures.all()) {
    const title = await figure.locator('h3').textContent();
    assert.ok((await figure.locator('.caption').textContent()).length > 40, `${title}: a caption`);
    assert.match(await figure.locator('.x-label').textContent(), /seconds from T-0/, title);
    assert.ok((await figure.locator('.y-label').textContent()).length > 3, `${title}: a y label`);
    assert.ok(await figure.locator('line.grid').count() >= 4, `${title}: gridlines`);
  }
  const answers = figures.filter({ has: page.locator('h3', { hasText: 'Answers per second' }) });
  assert.ok(await answers.locator('polygon.area').count() >= 2, 'answers stacked by status');
  const latency = figures.filter({ has: page.locator('h3', { hasText: 'Latency over time' }) });
  assert.equal(await latency.locator('polyline.line').count(), 4, 'p50, p90, p99 and max');
  await screenshot(page, 'replay-report.png', { fullPage: true });
});
