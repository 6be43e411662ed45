// Live streams end to end, in Debian's headless Chromium against a real redis-server and the
// real `flashsale` binary (stage.mjs): the operator makes two hosts in the console's operator
// view; one runs a stream of two drops that viewers watch on /s/{stream}, where the pinned drop
// changes under them without a reload; the other host sees none of it and can touch none of it;
// a revoked key is refused at once.
//
//   node --test tests/browser/stream.test.mjs      (CTest: Browser.RunAStream)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Stage, adminKey, byTest, createDrop, screenshot } from './stage.mjs';

const stage = new Stage('streams');
before(() => stage.start());
after(() => stage.stop());

const status = (page) => byTest(page, 'order-status').getAttribute('data-status');
const settled = async (page) => !['', 'busy', null].includes(await status(page));

// Everything a page wrote to its console, to check that no key ever went there.
function recordConsole(page) {
  const lines = [];
  page.on('console', (message) => lines.push(message.text()));
  return lines;
}

// A host made in the operator view: its key, read from where the console shows it once.
async function createHost(operator, id) {
  const form = byTest(operator, 'host-form');
  await form.locator('[name="id"]').fill(id);
  await form.locator('button[type="submit"]').click();
  await operator.locator('#new-key-host').filter({ hasText: new RegExp(`^${id}$`) }).waitFor();
  const key = await byTest(operator, 'new-key-value').inputValue();
  assert.match(key, new RegExp(`^fsh_${id}_[0-9a-f]{64}$`));
  await byTest(operator, 'hosts').locator(`tr[data-host="${id}"]`).filter({ hasText: 'active' }).waitFor();
  return key;
}

async function createStream(host, fields) {
  const form = byTest(host, 'stream-form');
  for (const [name, value] of Object.entries(fields)) await form.locator(`[name="${name}"]`).fill(value);
  await form.locator('button[type="submit"]').click();
  await byTest(host, 'stream-panel').locator('#stream-title').filter({ hasText: `(${fields.id})` }).waitFor();
}

// The key is in this tab's sessionStorage only: not in the address, localStorage or the console.
async function assertKeyKept(page, key, consoleLines) {
  assert.equal(await page.evaluate(() => sessionStorage.getItem('flashsale:host-key')), key);
  assert.ok(!page.url().includes(key), page.url());
  const stored = await page.evaluate(() => Object.values(localStorage).join(' '));
  assert.ok(!stored.includes(key), 'the key is not in localStorage');
  assert.ok(!consoleLines.some((line) => line.includes(key)), 'the key is not logged');
}

test('hosts run their own streams: viewers follow the pinned drop; keys act on their own host only', async () => {
  // The operator makes two hosts; each key is shown once, copied with a button.
  const operator = await stage.console(adminKey);
  assert.equal(await byTest(operator, 'who').textContent(), 'Signed in: operator');
  await operator.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  const rosaKey = await createHost(operator, 'rosa');
  await byTest(operator, 'new-key-done').click();
  assert.equal(await byTest(operator, 'new-key').isHidden(), true);
  assert.equal(await byTest(operator, 'new-key-value').inputValue(), '', 'the key is gone from the page');
  const miloKey = await createHost(operator, 'milo');
  await byTest(operator, 'new-key-copy').click();
  await byTest(operator, 'new-key-copy').filter({ hasText: 'Copied' }).waitFor();
  assert.equal(await operator.evaluate(() => navigator.clipboard.readText()), miloKey);
  await screenshot(operator, 'operator-hosts.png');

  // Rosa: a stream with two drops, the first pinned, live.
  const rosa = await stage.console(rosaKey);
  const rosaConsole = recordConsole(rosa);
  assert.equal(await byTest(rosa, 'who').textContent(), 'Signed in: host rosa');
  assert.equal(await byTest(rosa, 'operator').isHidden(), true, 'a host has no operator view');
  await createStream(rosa, { id: 'morning-market', title: 'Morning market',
                             video_url: 'https://video.example/morning-market/live.mp4' });
  assert.equal(await byTest(rosa, 'drop-target').inputValue(), 'morning-market', 'new drops go into it');
  // A two-second fair start: both viewers' clicks land inside it.
  await createDrop(rosa, { id: 'honey', title: 'Wildflower honey', price: '39.00', stock: 1, per_user_limit: 1,
                           hold_seconds: 120, waitlist_limit: 0, admission_window_ms: 2000 });
  await createDrop(rosa, { id: 'jam', title: 'Plum jam', price: '19.00', stock: 5, per_user_limit: 1,
                           hold_seconds: 120, waitlist_limit: 0, admission_window_ms: 0 });
  await byTest(rosa, 'pin-honey').click();
  await byTest(rosa, 'shelf').locator('tr[data-drop="morning-market~honey"] .on-screen').waitFor();
  await byTest(rosa, 'stream-live').click();
  await byTest(rosa, 'stream-state').filter({ hasText: /^live$/ }).waitFor();
  await assertKeyKept(rosa, rosaKey, rosaConsole);

  // Two viewers on the stream's page: the stream, its video, the pinned drop large, the shelf.
  const [ann, bob] = await Promise.all([stage.viewer('/s/morning-market', 'ann'), stage.viewer('/s/morning-market', 'bob')]);
  for (const page of [ann, bob]) {
    await page.locator('#title').filter({ hasText: 'Wildflower honey' }).waitFor();
    assert.equal(await byTest(page, 'stream-title').textContent(), 'Morning market');
    assert.equal(await byTest(page, 'stream-state').textContent(), 'Live');
    assert.equal(await byTest(page, 'player').evaluate((player) => [player.tagName, player.src].join(' ')),
                 'VIDEO https://video.example/morning-market/live.mp4');
    const shelf = byTest(page, 'shelf-item');
    assert.deepEqual(await shelf.locator('.name').allTextContents(), ['Wildflower honey', 'Plum jam']);
    assert.deepEqual(await shelf.locator('.price').allTextContents(), ['¥39.00', '¥19.00']);
    assert.deepEqual(await shelf.locator('.left').allTextContents(), ['1 left', '5 left']);
    assert.equal(await shelf.first().getAttribute('aria-current'), 'true', 'the pinned drop is marked');
    assert.equal(await byTest(page, 'buy').isDisabled(), true, 'Buy is disabled before a countdown');
    // Kept until a reload: the pages below must never reload.
    await page.evaluate(() => { window.sameDocument = true; });
  }

  // The console shows the pinned drop's numbers: its countdown starts there.
  await rosa.locator('#live-title').filter({ hasText: '(morning-market~honey)' }).waitFor();
  await rosa.locator('#start-seconds').fill('3');
  await byTest(rosa, 'drop-start').click();
  await byTest(ann, 'countdown').filter({ hasText: /^0:0[1-3]$/ }).waitFor({ timeout: 5_000 });
  await screenshot(ann, 'viewer-stream-countdown.png', { fullPage: true });
  await screenshot(rosa, 'host-console-stream.png', { fullPage: true });

  // T-0: both buy the one unit; one wins it.
  await Promise.all([ann, bob].map((page) => byTest(page, 'buy').and(page.locator(':enabled')).waitFor({ timeout: 8_000 })));
  await Promise.all([byTest(ann, 'buy').click(), byTest(bob, 'buy').click()]);
  await Promise.all([ann, bob].map((page) =>
    byTest(page, 'order-status').and(page.locator(':not([data-status=""]):not([data-status="busy"])')).waitFor({ timeout: 10_000 })));
  assert.ok(await settled(ann) && await settled(bob));
  const outcomes = [await status(ann), await status(bob)];
  assert.deepEqual([...outcomes].sort(), ['reserved', 'sold_out'], `outcomes ${outcomes}`);
  const [winner, loser] = outcomes[0] === 'reserved' ? [ann, bob] : [bob, ann];
  for (const page of [ann, bob]) {
    await byTest(page, 'stock-left').filter({ hasText: /^0$/ }).waitFor({ timeout: 5_000 });
    await byTest(page, 'shelf-item').first().locator('.left').filter({ hasText: 'sold out' }).waitFor({ timeout: 5_000 });
  }

  // Rosa pins the jam: both pages switch to it without a reload. The winner's honey stays
  // listed under it, and is paid from there.
  await byTest(rosa, 'pin-jam').click();
  for (const page of [ann, bob]) {
    await page.locator('#title').filter({ hasText: 'Plum jam' }).waitFor({ timeout: 5_000 });
    assert.equal(await page.evaluate(() => window.sameDocument), true, 'the page was not reloaded');
    assert.equal(await byTest(page, 'shelf-item').nth(1).getAttribute('aria-current'), 'true');
    assert.equal(await byTest(page, 'stock-left').textContent(), '5');
    assert.equal(await status(page), '', 'no order on the jam yet');
  }
  const honeyHeld = byTest(winner, 'held-order').and(winner.locator('[data-drop="morning-market~honey"]'));
  await honeyHeld.locator('.status[data-status="reserved"]').filter({ hasText: /^Wildflower honey — Reserved for you/ }).waitFor();
  assert.equal(await byTest(loser, 'held').isHidden(), true, 'the loser holds nothing');
  await screenshot(winner, 'viewer-stream-next-drop.png');
  await honeyHeld.locator('[data-testid="held-pay"]').click();
  await honeyHeld.locator('.status[data-status="confirmed"]').filter({ hasText: /Paid/ }).waitFor({ timeout: 5_000 });

  // Milo, the other host: his console lists his stream only, and his key reaches none of Rosa's.
  const milo = await stage.console(miloKey);
  assert.equal(await byTest(milo, 'who').textContent(), 'Signed in: host milo');
  await createStream(milo, { id: 'evening-show', title: 'Evening show', video_url: 'https://player.example/embed/evening' });
  assert.deepEqual(await byTest(milo, 'streams').locator('tbody tr').evaluateAll(
    (rows) => rows.map((row) => row.dataset.stream)), ['evening-show']);
  assert.equal(await milo.locator('#other-drops').isHidden(), true, 'no drops of anyone else');
  for (const [method, target, code] of [['POST', 'drops/morning-market~jam/close', 'unknown_drop'],
                                        ['GET', 'drops/morning-market~honey', 'unknown_drop'],
                                        ['GET', 'streams/morning-market', 'unknown_stream'],
                                        ['POST', 'streams/morning-market/end', 'unknown_stream']]) {
    const reply = await stage.api(miloKey, method, target, method === 'POST' ? {} : undefined);
    assert.deepEqual([reply.status, reply.body.error?.code], [404, code], `${method} ${target}`);
  }
  const jam = await stage.api(rosaKey, 'GET', 'drops/morning-market~jam');
  assert.deepEqual([jam.status, jam.body.state], [200, 'scheduled'], 'Rosa\'s jam is untouched');
  // His stream's page (by ?stream=): the player page in a sandboxed frame.
  const cat = await stage.viewer('/?stream=evening-show', 'cat');
  await byTest(cat, 'stream-title').filter({ hasText: 'Evening show' }).waitFor();
  const frame = byTest(cat, 'player');
  assert.deepEqual(await frame.evaluate((player) => [player.tagName, player.src, player.getAttribute('sandbox')]),
                   ['IFRAME', 'https://player.example/embed/evening', 'allow-scripts allow-presentation allow-same-origin']);
  assert.equal(await byTest(cat, 'stream-note').textContent(), 'The stream has not started yet.');
  assert.equal(await cat.locator('#drop').isHidden(), true, 'nothing pinned');

  // The jam's countdown (the console follows what is pinned); the loser reserves a jar.
  await rosa.locator('#live-title').filter({ hasText: '(morning-market~jam)' }).waitFor();
  await rosa.locator('#start-seconds').fill('0');
  await byTest(rosa, 'drop-start').click();
  await byTest(loser, 'buy').and(loser.locator(':enabled')).waitFor({ timeout: 8_000 });
  await byTest(loser, 'buy').click();
  await byTest(loser, 'order-status').and(loser.locator('[data-status="reserved"]')).waitFor({ timeout: 5_000 });

  // Rosa ends the stream: every page says so, and the loser's jar is still payable.
  await byTest(rosa, 'stream-end').click();
  await byTest(rosa, 'stream-state').filter({ hasText: /^ended$/ }).waitFor();
  for (const page of [ann, bob]) {
    await byTest(page, 'stream-state').filter({ hasText: /^Ended$/ }).waitFor({ timeout: 5_000 });
    assert.match(await byTest(page, 'stream-note').textContent(), /has ended/);
    assert.equal(await page.locator('#drop').isHidden(), true, 'nothing on screen');
    assert.deepEqual(await byTest(page, 'shelf-item').evaluateAll((items) => items.map((item) => item.dataset.state)),
                     ['closed', 'closed']);
  }
  const jamHeld = byTest(loser, 'held-order').and(loser.locator('[data-drop="morning-market~jam"]'));
  await jamHeld.locator('.status[data-status="reserved"]').waitFor();
  await screenshot(loser, 'viewer-stream-ended.png');
  await jamHeld.locator('[data-testid="held-pay"]').click();
  await jamHeld.locator('.status[data-status="confirmed"]').waitFor({ timeout: 5_000 });
  const ended = await stage.api(rosaKey, 'GET', 'streams/morning-market');
  assert.deepEqual([ended.body.state, ended.body.pinned, ended.body.shelf.map((drop) => drop.sold)], ['ended', null, [1, 1]]);

  // The operator revokes Rosa: her key is refused at once, and her console signs itself out.
  await byTest(operator, 'revoke-rosa').click();
  await byTest(operator, 'hosts').locator('tr[data-host="rosa"]').filter({ hasText: 'revoked' }).waitFor();
  const refused = await stage.api(rosaKey, 'GET', 'streams');
  assert.deepEqual([refused.status, refused.body.error?.code], [401, 'unauthorized']);
  await byTest(rosa, 'signed-out').filter({ hasText: /refused/ }).waitFor({ timeout: 5_000 });
  assert.equal(await byTest(rosa, 'who').isHidden(), true);
  assert.equal(await rosa.evaluate(() => sessionStorage.getItem('flashsale:host-key')), null, 'the key is forgotten');
  assert.ok(!rosaConsole.some((line) => line.includes(rosaKey)), 'the key is not logged');
  // Milo's key still works.
  assert.equal((await stage.api(miloKey, 'GET', 'streams')).status, 200);
});
