// @flashsale/client against the real `flashsale` binary and a real redis-server: sign-in,
// subscriptions, the countdown on the server's clock, orders, payment, cancelling, the
// waitlist; a connection cut in the middle of an order (through a TCP proxy that reads the
// WebSocket frames going by); and a real `busy`, from a server whose engine queue is full.
//
//   node --experimental-websocket --test clients/js/test/client.test.mjs
//                                               (CTest: JsClient.AgainstTheRealServer)
//
// Environment: FLASHSALE_BIN (the server; default build/release/gateway/flashsale) and
// FLASHSALE_SOURCE_DIR (for configs/; default this checkout).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { eventually, freePort, start, startRedis } from '../../../tests/support/processes.mjs';

import {
  FlashsaleClient, FlashsaleError, ServerClock, backoffDelay, newClientOrderId,
} from '../flashsale.js';

const source = process.env.FLASHSALE_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../../..');
const serverBinary = process.env.FLASHSALE_BIN ?? path.join(source, 'build/release/gateway/flashsale');
const hostKey = 'dev-host-key';

const folder = mkdtempSync(path.join(tmpdir(), 'flashsale-js-client-'));
const redisSocket = path.join(folder, 'redis.sock');
let redis;
let server;  // {child, port}

async function startServer(config, prefix) {
  const port = await freePort();
  const child = start(serverBinary, ['--config', config, '--redis', redisSocket,
                                     '--listen', `127.0.0.1:${port}`, '--journal-prefix', prefix]);
  await eventually(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 20_000,
                   `flashsale on port ${port}:\n${child.output}`);
  return { child, port };
}

before(async () => {
  redis = await startRedis(source, folder, redisSocket);
  server = await startServer(path.join(source, 'configs/dev.toml'), 'jsclient');
});

after(() => {
  server?.child.kill('SIGKILL');
  redis?.kill('SIGKILL');
  rmSync(folder, { recursive: true, force: true });
});

// ---- helpers -----------------------------------------------------------------------------

async function api(port, method, target, body) {
  const reply = await fetch(`http://127.0.0.1:${port}${target}`, {
    method,
    headers: { Authorization: `Bearer ${hostKey}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await reply.json();
  assert.ok(reply.ok, `${method} ${target}: ${reply.status} ${JSON.stringify(json)}`);
  return json;
}

async function createDrop(port, fields) {
  return api(port, 'POST', '/api/drops', {
    title: 'A drop', price_cents: 990, stock: 1, per_user_limit: 1, hold_seconds: 600, waitlist_limit: 0, ...fields,
  });
}

const openNow = (port, drop) => api(port, 'POST', `/api/drops/${drop}/countdown`, { seconds: 0 });
const ordersOf = async (port, drop, user) =>
  (await api(port, 'GET', `/api/drops/${drop}/orders?user=${encodeURIComponent(user)}`)).orders;

// A client of `instance` (through `port` if given), with every connection state it went through
// in `client.states`; closed when the test ends.
function client(t, instance, { port = instance.port, ...options }) {
  const made = new FlashsaleClient({ url: `ws://127.0.0.1:${port}/ws`, ...options });
  made.states = [];
  made.on('connection', ({ state }) => made.states.push(state));
  t.after(() => made.close());
  return made;
}

// The drop's state once `predicate` holds for it: at once, or at the change that makes it so
// (checked and listened for in one go, so that no change can slip between).
function until(viewer, drop, predicate) {
  const state = viewer.drop(drop);
  if (state && predicate(state)) return Promise.resolve(state);
  return viewer.waitFor('dropchange', (event) => event.drop === drop && predicate(event.state), { timeoutMs: 10_000 })
      .then((event) => event.state);
}

// A WebSocket the test drives by hand: signed in as `user`, answers collected in `messages`.
async function rawViewer(t, port, user) {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  socket.messages = [];
  const welcomed = new Promise((resolve, reject) => {
    socket.onerror = () => reject(new Error(`${user}: no connection`));
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      socket.messages.push(message);
      if (message.type === 'welcome') resolve();
    };
  });
  await new Promise((resolve) => { socket.onopen = resolve; });
  socket.send(JSON.stringify({ type: 'hello', user }));
  await welcomed;
  t.after(() => socket.close());
  return socket;
}

// One command to the test's redis-server (RESP over its unix socket); its reply line.
function redisCommand(...args) {
  return new Promise((resolve, reject) => {
    const connection = net.createConnection(redisSocket);
    connection.on('error', reject);
    connection.once('data', (reply) => {
      connection.end();
      resolve(String(reply).trim());
    });
    connection.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(String(arg))}\r\n${arg}\r\n`).join('')}`);
  });
}

// A TCP proxy in front of a server that reads the WebSocket frames going by, both ways (after
// each connection's HTTP upgrade): `onServerText` may hold one back (return false), `cut()`
// destroys every connection at once, and `fromClient` lists every text frame a client sent,
// parsed, with the number of the connection it came on.
class FrameProxy {
  fromClient = [];
  onServerText = () => true;
  #pairs = new Set();
  #connections = 0;

  constructor(targetPort) {
    this.targetPort = targetPort;
    this.server = net.createServer((downstream) => this.#accept(downstream));
  }

  listen() {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this);
      });
    });
  }

  cut() {
    for (const pair of this.#pairs) {
      pair.downstream.destroy();
      pair.upstream.destroy();
    }
    this.#pairs.clear();
  }

  close() {
    this.cut();
    return new Promise((resolve) => this.server.close(resolve));
  }

  #accept(downstream) {
    const number = ++this.#connections;
    const upstream = net.createConnection(this.targetPort, '127.0.0.1');
    const pair = { downstream, upstream };
    this.#pairs.add(pair);
    const forget = () => {
      this.#pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on('close', forget).on('error', forget);
    upstream.on('close', forget).on('error', forget);
    this.#pipe(downstream, upstream, (text) => {
      this.fromClient.push({ connection: number, ...JSON.parse(text) });
      return true;
    });
    this.#pipe(upstream, downstream, (text) => this.onServerText(JSON.parse(text), number));
  }

  // Copies `from` to `to`: the HTTP head as it is, then frame by frame, each text frame shown
  // to `see` first (unmasked) and copied only if it says true.
  #pipe(from, to, see) {
    let buffer = Buffer.alloc(0);
    let head = true;
    from.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (head) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        to.write(buffer.subarray(0, end + 4));
        buffer = buffer.subarray(end + 4);
        head = false;
      }
      for (;;) {
        const frame = FrameProxy.#frame(buffer);
        if (!frame) return;
        buffer = buffer.subarray(frame.size);
        if (frame.opcode !== 1 || see(frame.payload.toString('utf8'))) to.write(frame.bytes);
      }
    });
  }

  // The first whole frame in `buffer` (RFC 6455 §5.2), or null.
  static #frame(buffer) {
    if (buffer.length < 2) return null;
    const opcode = buffer[0] & 0x0f;
    const masked = (buffer[1] & 0x80) !== 0;
    let length = buffer[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (buffer.length < 4) return null;
      length = buffer.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (buffer.length < 10) return null;
      length = Number(buffer.readBigUInt64BE(2));
      offset = 10;
    }
    const maskAt = offset;
    if (masked) offset += 4;
    const size = offset + length;
    if (buffer.length < size) return null;
    const payload = Buffer.from(buffer.subarray(offset, size));
    if (masked) for (let i = 0; i < payload.length; ++i) payload[i] ^= buffer[maskAt + (i % 4)];
    return { opcode, payload, size, bytes: Buffer.from(buffer.subarray(0, size)) };
  }
}

// ---- without a server ------------------------------------------------------------------

describe('pieces', () => {
  test('backoff: full jitter under an exponential ceiling', () => {
    const retry = { baseMs: 100, maxMs: 1000 };
    assert.equal(backoffDelay(0, retry, () => 0), 0);
    assert.equal(backoffDelay(0, retry, () => 0.999999), 100);
    assert.equal(backoffDelay(3, retry, () => 0.5), 400);
    assert.equal(backoffDelay(20, retry, () => 0.999999), 1000);
  });

  test('the server clock keeps the estimate of the fastest round trip', () => {
    let local = 1_000_000;
    const clock = new ServerClock(() => local);
    clock.fromMessage(5_000_000);  // one way: good enough for now
    assert.equal(clock.now(), 5_000_000);
    clock.fromRoundTrip(5_000_100, local - 200);  // 200 ms round trip
    assert.equal(clock.offsetMs, 5_000_100 - (local - 100));
    clock.fromRoundTrip(6_000_000, local - 500);  // slower: ignored
    assert.equal(clock.roundTripMs, 200);
    clock.fromMessage(7_000_000);  // a measured round trip beats a one-way timestamp
    assert.equal(clock.roundTripMs, 200);
    local += 1000;
    assert.equal(clock.now(), 5_000_100 + 100 + 1000);
  });

  test('client_order_ids are what the protocol takes', () => {
    const id = newClientOrderId();
    assert.match(id, /^[\x21-\x7e]{1,64}$/);
    assert.notEqual(id, newClientOrderId());
  });

  // Close codes, with a WebSocket made by hand (options.WebSocket): 1013 waits longer, 1008
  // ends it, anything else reconnects after the usual backoff.
  test('close codes: 1008 is the end, 1013 comes back slowly, others come back soon', async (t) => {
    const sockets = [];
    class FakeSocket {
      constructor(url) {
        this.url = url;
        this.sent = [];
        sockets.push(this);
        queueMicrotask(() => this.onopen?.());
      }
      send(text) {
        this.sent.push(JSON.parse(text));
        if (this.sent.at(-1).type === 'hello') {
          queueMicrotask(() => this.onmessage?.({ data: JSON.stringify({ type: 'welcome', user: 'fay', server_time_ms: Date.now() }) }));
        }
      }
      close() {}
      serverCloses(code, reason = '') { this.onclose?.({ code, reason }); }
    }
    const fake = new FlashsaleClient({ url: 'ws://fake/ws', user: 'fay', WebSocket: FakeSocket,
                                       reconnect: { baseMs: 1000, maxMs: 1000, busyMs: 60_000 } });
    t.after(() => fake.close());
    const waits = [];
    fake.on('connection', (event) => { if (event.state === 'waiting') waits.push(event); });
    assert.equal((await fake.connect()).user, 'fay');
    assert.deepEqual(sockets[0].sent, [{ type: 'hello', user: 'fay' }, { type: 'time' }]);

    sockets[0].serverCloses(1001, 'shutting down');
    assert.equal(fake.state, 'waiting');
    assert.ok(waits[0].delayMs <= 1000, `after 1001: ${waits[0].delayMs} ms`);
    fake.close();

    const slow = new FlashsaleClient({ url: 'ws://fake/ws', user: 'fay', WebSocket: FakeSocket,
                                       reconnect: { baseMs: 1000, maxMs: 1000, busyMs: 60_000 } });
    t.after(() => slow.close());
    slow.on('connection', (event) => { if (event.state === 'waiting') waits.push(event); });
    await slow.connect();
    sockets.at(-1).serverCloses(1013, 'too slow');
    assert.ok(waits[1].delayMs >= 60_000, `after 1013: ${waits[1].delayMs} ms`);
    slow.close();

    const refused = new FlashsaleClient({ url: 'ws://fake/ws', user: 'fay', WebSocket: FakeSocket });
    t.after(() => refused.close());
    await refused.connect();
    const pending = refused.order('d', 1);
    const before = sockets.length;
    sockets.at(-1).onmessage({ data: JSON.stringify({ type: 'error', code: 'rate_limited', message: 'too many requests' }) });
    sockets.at(-1).serverCloses(1008, 'too many requests');
    assert.equal(refused.state, 'closed');
    await assert.rejects(pending, (error) => error instanceof FlashsaleError && error.code === 'rate_limited' &&
                                             error.closeCode === 1008 && typeof error.clientOrderId === 'string');
    assert.equal(sockets.length, before, 'no new connection after 1008');
  });
  test('busy answers are asked again a bounded number of times, always with the same id', async (t) => {
    const orders = [];
    class BusySocket {
      constructor() { queueMicrotask(() => this.onopen?.()); }
      send(text) {
        const message = JSON.parse(text);
        const answer = message.type === 'hello' ? { type: 'welcome', user: 'gus', server_time_ms: Date.now() }
                     : message.type === 'order' ? { type: 'order_result', client_order_id: message.client_order_id,
                                                    drop: message.drop, status: 'busy', reason: 'the server is busy' }
                     : null;
        if (message.type === 'order') orders.push(message);
        if (answer) queueMicrotask(() => this.onmessage?.({ data: JSON.stringify(answer) }));
      }
      close() {}
    }
    const gus = new FlashsaleClient({ url: 'ws://fake/ws', user: 'gus', WebSocket: BusySocket,
                                      retry: { attempts: 4, baseMs: 1, maxMs: 4 } });
    t.after(() => gus.close());
    const retries = [];
    gus.on('order_retry', (event) => retries.push(event.attempt));
    await gus.connect();
    await assert.rejects(gus.order('d', 2, { clientOrderId: 'c-42' }),
                         (error) => error.code === 'retries_exhausted' && error.result.status === 'busy');
    assert.deepEqual(orders, Array(4).fill({ type: 'order', drop: 'd', qty: 2, client_order_id: 'c-42' }));
    assert.deepEqual(retries, [1, 2, 3]);
    assert.equal(gus.orderState('c-42').status, 'busy');
  });
});

// ---- against the server --------------------------------------------------------------------

test('sign in, subscribe, count down on the server clock, order, pay, cancel, waitlist', { timeout: 60_000 }, async (t) => {
  const { port } = server;
  await createDrop(port, { id: 'chestnut', title: 'Roasted chestnuts', stock: 2, waitlist_limit: 1 });

  // Sign-in: a name in dev mode, a token, and a bad token, which ends without reconnecting.
  const ann = client(t, server, { user: 'ann' });
  assert.equal((await ann.connect()).user, 'ann');
  assert.equal(ann.state, 'live');
  const { token } = await api(port, 'POST', '/api/tokens', { user: 'bob', ttl_seconds: 600 });
  const bob = client(t, server, { token: async () => token });
  assert.equal((await bob.connect()).user, 'bob');
  const forger = client(t, server, { token: `${token.slice(0, -4)}AAAA` });
  await assert.rejects(forger.connect(), (error) => error.code === 'unauthenticated' && error.closeCode === 1008);
  assert.deepEqual(forger.states, ['connecting', 'closed'], 'no reconnecting after 1008');
  // A viewer whose own clock is five minutes fast.
  const cat = client(t, server, { user: 'cat', now: () => Date.now() + 5 * 60_000 });
  await cat.connect();

  for (const viewer of [ann, bob, cat]) {
    const drop = await viewer.subscribe('chestnut');
    assert.equal(drop.title, 'Roasted chestnuts');
    assert.equal(drop.state, 'scheduled');
    assert.equal(drop.stock_left, 2);
    assert.equal(viewer.msUntilOpen('chestnut'), null);
  }
  await assert.rejects(ann.subscribe('no-such-drop'), (error) => error.code === 'unknown_drop');
  assert.deepEqual(ann.drops, ['chestnut']);

  // The countdown: the same on a clock five minutes off, and T-0 on the server's clock.
  const opening = Promise.all([ann, bob, cat].map((viewer) => viewer.waitFor(
      'state', (message) => message.drop === 'chestnut' && message.state === 'open', { timeoutMs: 15_000 })));
  await api(port, 'POST', '/api/drops/chestnut/countdown', { seconds: 2 });
  const counting = await until(ann, 'chestnut', (state) => state.state === 'countdown');
  await until(cat, 'chestnut', (state) => state.state === 'countdown');
  // The `time` round trip asked at the welcome has come back by now (or is on its way).
  if (cat.clock.roundTripMs === null) await cat.waitFor('time', undefined, { timeoutMs: 10_000 });
  const left = ann.msUntilOpen('chestnut');
  assert.ok(left > 0 && left <= 2100, `${left} ms left`);
  assert.ok(Math.abs(cat.msUntilOpen('chestnut') - left) < 250,
            `a clock five minutes fast says ${cat.msUntilOpen('chestnut')} ms, the server's ${left}`);
  assert.ok(cat.clock.synced && Math.abs(cat.clock.offsetMs + 5 * 60_000) < 250, JSON.stringify(cat.clock));
  const [opened] = await opening;
  // `open` goes out at T-0 and takes a journal write and a trip here: never before opens_at_ms
  // on the estimated clock (within its error), and not long after.
  for (const viewer of [ann, cat]) {
    const late = viewer.now() - counting.opens_at_ms;
    assert.ok(late > -150 && late < 1000, `open ${late} ms after opens_at_ms on ${viewer.user}'s estimate`);
  }
  assert.equal(opened.drop, 'chestnut');
  assert.equal(ann.msUntilOpen('chestnut'), 0);

  // Two units for two buyers, the third waits.
  const annOrder = await ann.order('chestnut', 1);
  assert.equal(annOrder.status, 'reserved');
  assert.match(annOrder.order_id, /^chestnut:/);
  assert.ok(annOrder.hold_expires_at_ms > ann.now());
  const bobOrder = await bob.order('chestnut');
  assert.equal(bobOrder.status, 'reserved');
  const catOrder = await cat.order('chestnut', 1);
  assert.equal(catOrder.status, 'waitlisted');
  assert.equal(catOrder.position, 1);
  await until(cat, 'chestnut', (state) => state.stock_left === 0);

  // The same client_order_id again: the original answer, not a second order.
  const again = await ann.order('chestnut', 1, { clientOrderId: annOrder.client_order_id });
  assert.deepEqual(again, annOrder);
  await assert.rejects(ann.order('chestnut', 0), TypeError);

  // Pay; cancel, which gives the unit to the waitlist; then the waitlisted buyer cancels.
  const paid = await ann.confirm(annOrder.order_id);
  assert.equal(paid.status, 'confirmed');
  assert.equal(ann.orderState(annOrder.client_order_id).status, 'confirmed');
  const promoted = cat.nextUpdate(catOrder.order_id, { timeoutMs: 10_000 });
  const cancelled = await bob.cancel(bobOrder.order_id);
  assert.equal(cancelled.status, 'cancelled');
  const update = await promoted;
  assert.equal(update.status, 'reserved');
  assert.ok(update.hold_expires_at_ms > cat.now() - 5 * 60_000);
  assert.equal(cat.orderState(catOrder.client_order_id).status, 'reserved');
  assert.equal((await cat.cancel(catOrder.order_id)).status, 'cancelled');
  await until(ann, 'chestnut', (state) => state.stock_left === 1);
  assert.equal((await ann.confirm(annOrder.order_id)).status, 'confirmed', 'paying twice is no error');
  await assert.rejects(ann.confirm(bobOrder.order_id), (error) => error.code === 'unknown_order',
                       "another buyer's order");
  assert.equal((await ann.order('no-such-drop', 1)).status, 'invalid');

  const drop = await api(port, 'GET', '/api/drops/chestnut');
  assert.deepEqual([drop.stock_left, drop.held, drop.sold], [1, 0, 1]);
});

test('variants: an order names one, stock follows each, an unknown one is not recorded', { timeout: 60_000 }, async (t) => {
  const { port } = server;
  await createDrop(port, { id: 'socks', title: 'Socks', price_cents: undefined, stock: undefined, per_user_limit: 2,
                           variants: [{ id: 'red', label: 'Red', price_cents: 500, stock: 1 },
                                      { id: 'blue', price_cents: 600, list_price_cents: 900, stock: 2 }] });
  await openNow(port, 'socks');
  const vic = client(t, server, { user: 'vic' });
  await vic.connect();
  const drop = await vic.subscribe('socks');
  assert.equal(drop.price_cents, 500, 'the lowest price');
  assert.deepEqual(drop.variants.map(({ id, label, price_cents, list_price_cents, stock_left }) =>
                     ({ id, label, price_cents, list_price_cents, stock_left })), [
    { id: 'red', label: 'Red', price_cents: 500, list_price_cents: undefined, stock_left: 1 },
    { id: 'blue', label: drop.variants[1].label, price_cents: 600, list_price_cents: 900, stock_left: 2 },
  ]);

  const red = await vic.order('socks', 1, { variant: 'red' });
  assert.equal(red.status, 'reserved');
  assert.equal(red.variant, 'red');
  assert.equal(vic.orderState(red.client_order_id).variant, 'red');
  // Every variant's stock in each `stock` message; `left` stays the drop's.
  const redGone = await until(vic, 'socks', (state) => state.variants[0].stock_left === 0);
  assert.equal(redGone.variants[1].stock_left, 2);
  assert.equal(redGone.stock_left, 2);

  // A variant the drop does not sell is not recorded: the same id may order a real one.
  const green = await vic.order('socks', 1, { variant: 'green' });
  assert.equal(green.status, 'unknown_variant');
  const blue = await vic.order('socks', 1, { clientOrderId: green.client_order_id, variant: 'blue' });
  assert.equal(blue.status, 'reserved');
  assert.equal(blue.variant, 'blue');
  await assert.rejects(vic.order('socks', 1, { variant: 'no spaces' }), TypeError);
});

test('one viewer too many for a user is refused once, not in a loop', { timeout: 60_000 }, async (t) => {
  const { port } = server;
  for (let i = 0; i < 4; ++i) await rawViewer(t, port, 'dora');  // connections_per_user = 4
  const fifth = client(t, server, { user: 'dora' });
  await assert.rejects(fifth.connect(), (error) => error.code === 'rate_limited' && error.closeCode === 1008);
  assert.deepEqual(fifth.states, ['connecting', 'closed']);
});

test('a connection cut in the middle of an order: reconnected, resubscribed, one reservation', { timeout: 60_000 }, async (t) => {
  const { port } = server;
  await createDrop(port, { id: 'pears', title: 'Snow pears', stock: 5 });
  await openNow(port, 'pears');
  const proxy = await new FrameProxy(port).listen();
  t.after(() => proxy.close());
  const eve = client(t, server, { user: 'eve', port: proxy.port, reconnect: { baseMs: 100, maxMs: 1000 } });
  await eve.connect();
  assert.equal((await eve.subscribe('pears')).stock_left, 5);

  // The server decides the order; its answer never reaches the client: the proxy swallows it
  // and cuts every connection.
  let lost = null;
  proxy.onServerText = (message) => {
    if (message.type !== 'order_result' || lost) return true;
    lost = message;
    proxy.cut();
    return false;
  };
  const resubscribed = eve.waitFor('drop', (message) => message.drop === 'pears', { timeoutMs: 20_000 });
  const result = await eve.order('pears', 1);
  await resubscribed;

  assert.equal(lost?.status, 'reserved', 'the answer the cut took away');
  assert.deepEqual(result, lost, 'asked again, the same answer: the same order');
  assert.deepEqual(eve.states, ['connecting', 'live', 'waiting', 'connecting', 'live']);
  const sent = proxy.fromClient.filter((message) => message.type !== 'time');
  assert.deepEqual(sent.map(({ connection, type }) => `${connection} ${type}`),
                   ['1 hello', '1 subscribe', '1 order', '2 hello', '2 subscribe', '2 order']);
  const orders = sent.filter((message) => message.type === 'order');
  assert.equal(orders[0].client_order_id, orders[1].client_order_id);
  assert.equal(eve.drop('pears').stock_left, 4);

  const drop = await api(port, 'GET', '/api/drops/pears');
  assert.deepEqual([drop.stock_left, drop.held, drop.orders], [4, 1, 1], 'one reservation, not two');
  const kept = await ordersOf(port, 'pears', 'eve');
  assert.deepEqual(kept.map((order) => [order.client_order_id, order.status]),
                   [[result.client_order_id, 'reserved']]);
});

test('streams: the shelf and the pinned drop, followed across a reconnect', { timeout: 60_000 }, async (t) => {
  const { port } = server;
  await api(port, 'POST', '/api/streams', { id: 'market', title: 'Market', video_url: 'https://video.example/market' });
  await api(port, 'POST', '/api/streams/market/drops', {
    id: 'figs', title: 'Figs', price_cents: 500, stock: 3, per_user_limit: 1, hold_seconds: 600, waitlist_limit: 0,
  });
  const proxy = await new FrameProxy(port).listen();
  t.after(() => proxy.close());
  const fay = client(t, server, { user: 'fay', port: proxy.port, reconnect: { baseMs: 100, maxMs: 1000 } });
  await fay.connect();
  await assert.rejects(fay.subscribeStream('no-such-stream'),
                       (error) => error.code === 'unknown_stream' && error.stream === 'no-such-stream');
  await assert.rejects(fay.subscribeStream('not a stream'), TypeError);

  const market = await fay.subscribeStream('market');
  assert.deepEqual([market.stream, market.title, market.video_url, market.state, market.pinned],
                   ['market', 'Market', 'https://video.example/market', 'scheduled', null]);
  assert.deepEqual(market.drops.map((drop) => [drop.drop, drop.title, drop.state, drop.stock_left]),
                   [['market~figs', 'Figs', 'scheduled', 3]]);
  assert.deepEqual(fay.streams, ['market']);

  // A pin comes as a change, with what was on screen before it.
  const pinned = fay.waitFor('streamchange', (event) => event.state.pinned === 'market~figs', { timeoutMs: 10_000 });
  await api(port, 'POST', '/api/streams/market/pin', { drop: 'figs' });
  assert.equal((await pinned).previous.pinned, null);
  assert.equal(fay.stream('market').pinned, 'market~figs');

  // The connection is cut and a drop added: subscribed again on the next connection, the
  // client has the stream as it is now.
  const waiting = fay.waitFor('connection', (event) => event.state === 'waiting', { timeoutMs: 10_000 });
  const grown = fay.waitFor('streamchange', (event) => event.state.drops.length === 2, { timeoutMs: 20_000 });
  proxy.cut();
  await waiting;
  await api(port, 'POST', '/api/streams/market/drops', {
    id: 'plums', title: 'Plums', price_cents: 700, stock: 2, per_user_limit: 1, hold_seconds: 600, waitlist_limit: 0,
  });
  const { state } = await grown;
  assert.deepEqual(state.drops.map((drop) => drop.drop), ['market~figs', 'market~plums']);
  assert.equal(state.pinned, 'market~figs');
  const subscribes = proxy.fromClient.filter((message) => message.type === 'subscribe' && message.stream === 'market');
  assert.deepEqual(subscribes.map((message) => message.connection), [1, 2]);

  fay.unsubscribeStream('market');
  assert.equal(fay.stream('market'), undefined);
  assert.deepEqual(fay.streams, []);
  await eventually(() => proxy.fromClient.some((message) => message.type === 'unsubscribe' && message.stream === 'market'),
                   5_000, 'the unsubscribe');
});

test('busy: the engine queue is full, the client asks again with the same client_order_id', { timeout: 60_000 }, async (t) => {
  // A server whose engine queue holds 16 requests, 4 of them at most from one connection, and
  // whose budgets let five connections keep it full.
  const config = readFileSync(path.join(source, 'configs/dev.toml'), 'utf8')
      .replace(/^engine_queue_max = .*$/m, 'engine_queue_max = 16')
      .replace(/^queued_per_connection = .*$/m, 'queued_per_connection = 4')
      .replace(/^(orders|requests)_(per_second|burst) = .*$/gm, '$1_$2 = 100000');
  assert.match(config, /engine_queue_max = 16\n/);
  const busyConfig = path.join(folder, 'busy.toml');
  writeFileSync(busyConfig, config);
  const busyServer = await startServer(busyConfig, 'jsclient-busy');
  t.after(() => busyServer.child.kill('SIGKILL'));
  const { port } = busyServer;
  await createDrop(port, { id: 'figs', title: 'Fresh figs', stock: 100, per_user_limit: 10 });
  await openNow(port, 'figs');
  const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

  const proxy = await new FrameProxy(port).listen();
  t.after(() => proxy.close());
  const fay = client(t, busyServer, { user: 'fay', port: proxy.port, retry: { attempts: 50, baseMs: 20, maxMs: 200 } });
  await fay.connect();
  const fillers = [];
  for (let i = 0; i < 5; ++i) fillers.push(await rawViewer(t, port, `filler${i}`));

  // Redis takes no writes for a while (CLIENT PAUSE ... WRITE): the engine thread, waiting for
  // the journal to write the fillers' new orders, takes its queue only every 50 ms, while five
  // connections keep it full — each sends an order and a `time` whenever a `time` comes back.
  // An order that comes in then is answered `busy`, unless it lands just after the engine took
  // the queue: then it waits in the queue like the others, is answered once Redis writes
  // again, and the test tries again.
  let filling = false;
  let round = 0;
  for (const [i, filler] of fillers.entries()) {
    filler.onmessage = (event) => {
      if (!filling || JSON.parse(event.data).type !== 'time') return;
      filler.send(JSON.stringify({ type: 'order', drop: 'figs', client_order_id: `filler-${i}-${round}` }));
      filler.send(JSON.stringify({ type: 'time' }));
    };
  }
  const stopFilling = async () => {
    filling = false;
    assert.equal(await redisCommand('CLIENT', 'UNPAUSE'), '+OK');
  };
  t.after(stopFilling);
  let retry = null;
  let result;
  while (retry === null) {
    round += 1;
    assert.ok(round <= 8, 'an order never found the engine queue full');
    assert.equal(await redisCommand('CLIENT', 'PAUSE', '5000', 'WRITE'), '+OK');
    filling = true;
    for (const filler of fillers) filler.send(JSON.stringify({ type: 'time' }));
    let ordered;
    try {
      await eventually(async () => /^flashsale_engine_queue_depth 16$/m.test(await metrics()), 4_000,
                       'a full engine queue');
      // `busy` comes back at once; an order that went into the queue says nothing until then.
      const retried = fay.waitFor('order_retry', () => true, { timeoutMs: 300 }).catch(() => null);
      ordered = fay.order('figs', 1);
      retry = await retried;
    } finally {
      await stopFilling();
    }
    result = await ordered;
  }

  assert.equal(retry.result.status, 'busy');
  assert.equal(retry.attempt, 1);
  assert.equal(result.status, 'reserved');
  assert.equal(result.client_order_id, retry.client_order_id);
  const attempts = proxy.fromClient.filter((message) => message.client_order_id === result.client_order_id);
  assert.ok(attempts.length >= 2, `${attempts.length} order messages`);
  assert.ok(attempts.every((message) => message.type === 'order' && message.drop === 'figs' && message.qty === 1));
  const kept = await ordersOf(port, 'figs', 'fay');
  assert.deepEqual(kept.filter((order) => order.client_order_id === result.client_order_id)
                       .map((order) => [order.order_id, order.status]),
                   [[result.order_id, 'reserved']], 'one order for all those attempts');
  assert.match(await metrics(), /^flashsale_orders_total\{status="busy"\} [1-9]/m);
});
