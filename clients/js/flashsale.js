// @flashsale/client — a client for the Flashsale WebSocket protocol v1 (docs/protocol.md).
//
// One ES module without dependencies, for browsers and for Node ≥ 20 (whose `WebSocket` is
// global from Node 22 on, and behind --experimental-websocket in Node 20 and 21; elsewhere pass
// a constructor as `options.WebSocket`). The flashsale server serves this file as
// /web/flashsale.js, and its viewer page is built on it.
//
// What it does for an application:
// - connects, signs in (`hello` with a token, or a name in dev mode), and after a lost
//   connection reconnects with exponential backoff and full jitter, signs in again and
//   subscribes again to every drop and stream it was following;
// - keeps each followed drop's state current from `drop`, `tick`, `state` and `stock`, and
//   estimates the server's clock from `time` round trips, so that countdowns run on the
//   server's time whatever the device's clock says;
// - follows live streams: each one's title, state, pinned drop and shelf from `stream`;
// - orders with a client_order_id that stays the same across every retry and reconnect: an
//   answer `busy`, `unavailable` or `rate_limited` is asked again after a backoff (a bounded
//   number of times), and an order whose answer was lost with its connection is asked again on
//   the next one — the server answers a known client_order_id with its original outcome, so no
//   retry can buy twice;
// - confirms and cancels, with the same care;
// - reports everything as events: each server message under its own type, connection states,
//   merged drop states, stream states, order changes and retries.
//
// See README.md beside this file for usage, flashsale.d.ts for the types.

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** Answers to an order that mean "not decided: ask again later with the same id". */
export const RETRYABLE_ORDER_STATUSES = Object.freeze(['busy', 'unavailable', 'rate_limited']);

/** Answers to an order that the server recorded: asking again returns them unchanged. */
export const RECORDED_ORDER_STATUSES =
    Object.freeze(['reserved', 'waitlisted', 'sold_out', 'limit_exceeded', 'closed']);

/** Close codes after which the client does not reconnect on its own (docs/protocol.md). */
export const TERMINAL_CLOSE_CODES = Object.freeze([1008]);

// Error codes (`error` messages) after which a confirm, cancel or subscribe is asked again.
const RETRYABLE_ERROR_CODES = ['rate_limited', 'unavailable'];
// The events the client makes itself; every other event is a server message of that type.
const CLIENT_EVENTS = ['message', 'connection', 'close', 'dropchange', 'streamchange', 'orderchange', 'order_retry'];
const QTY_MAX = 1_000_000;          // engine::order_qty_max
const CLIENT_ORDER_ID_MAX = 64;     // engine::client_order_id_length_max

const DEFAULTS = {
  reconnect: { baseMs: 500, maxMs: 10_000, busyMs: 5_000 },
  retry: { attempts: 8, baseMs: 250, maxMs: 8_000 },
  timeSyncIntervalMs: 30_000,
  responseTimeoutMs: 10_000,
};

/** An error of the protocol (`code` is the server's error code) or of this client. */
export class FlashsaleError extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'FlashsaleError';
    this.code = code;
    Object.assign(this, details);
  }
}

/**
 * Exponential backoff with full jitter: a uniformly random delay from 0 to
 * min(maxMs, baseMs·2^attempt). A crowd that was refused, or lost its connection, at the same
 * instant does not come back at the same instant.
 */
export function backoffDelay(attempt, { baseMs = 250, maxMs = 8_000 } = {}, random = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(random() * ceiling);
}

/**
 * The server's clock as seen from here. Each `time` round trip gives an estimate of the offset
 * between the server's clock and ours; the one from the fastest round trip is kept (its error
 * is at most half that round trip). Until one arrives, the timestamps the server puts on its
 * messages are used, which are late by the one-way delay only.
 */
export class ServerClock {
  #offset = 0;
  #bestRoundTrip = Infinity;
  #sampled = false;
  #now;

  /** `now`: the local clock (Unix ms), Date.now unless given. */
  constructor(now = () => Date.now()) {
    this.#now = now;
  }

  /** A `time` answer to a request sent at `sentAt` (our clock), received now. */
  fromRoundTrip(serverTimeMs, sentAt) {
    const receivedAt = this.#now();
    const roundTrip = receivedAt - sentAt;
    if (!Number.isFinite(serverTimeMs) || roundTrip > this.#bestRoundTrip) return;
    this.#bestRoundTrip = roundTrip;
    this.#offset = serverTimeMs - (sentAt + receivedAt) / 2;
    this.#sampled = true;
  }

  /** A server timestamp on a pushed message: good enough until a round trip is measured. */
  fromMessage(serverTimeMs) {
    if (!Number.isFinite(serverTimeMs) || this.#bestRoundTrip !== Infinity) return;
    this.#offset = serverTimeMs - this.#now();
    this.#sampled = true;
  }

  /** Forgets the round trips measured (a new connection may take another path). */
  restart() {
    this.#bestRoundTrip = Infinity;
  }

  /** The local clock's time now. */
  local() { return this.#now(); }
  get synced() { return this.#sampled; }
  get offsetMs() { return this.#offset; }
  get roundTripMs() { return this.#bestRoundTrip === Infinity ? null : this.#bestRoundTrip; }
  now() { return this.#now() + this.#offset; }
}

/** A new client_order_id: a random UUID (1–64 printable ASCII bytes, as the protocol wants). */
export function newClientOrderId() {
  const crypto = globalThis.crypto;
  if (typeof crypto?.randomUUID === 'function') return crypto.randomUUID();
  // randomUUID is for secure contexts only; getRandomValues works on any page.
  const bytes = new Uint8Array(16);
  if (typeof crypto?.getRandomValues === 'function') {
    crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; ++i) bytes[i] = Math.floor(Math.random() * 256);
  }
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

const isStreamId = (text) => typeof text === 'string' && /^[A-Za-z0-9_.-]{1,32}$/.test(text);

function isName(text, lengthMax) {
  return typeof text === 'string' && text.length >= 1 && text.length <= lengthMax &&
         /^[\x21-\x7e]+$/.test(text);
}

// A timer that does not keep Node's event loop alive on its own (a no-op in browsers).
function timer(callback, ms) {
  const id = setTimeout(callback, ms);
  id?.unref?.();
  return id;
}

// A promise with its settle functions at hand.
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((ok, fail) => { resolve = ok; reject = fail; });
  return { promise, resolve, reject };
}

// A stream's state, copied down to its drops' variants: what a caller gets may be changed freely.
function copyStream(state) {
  const drops = Array.isArray(state.drops) ? state.drops.map((drop) => ({
    ...drop, ...(Array.isArray(drop.variants) ? { variants: drop.variants.map((variant) => ({ ...variant })) } : {}),
  })) : [];
  return { ...state, drops };
}

/**
 * A small event emitter: `on` and `once` return a function that removes the listener, `off`
 * removes one, `waitFor` gives a promise of the next matching event. A listener that throws
 * does not disturb the client or the other listeners: its error is reported as an uncaught
 * error, as EventTarget does.
 */
class Emitter {
  #listeners = new Map();

  on(type, listener) {
    if (typeof listener !== 'function') throw new TypeError('a listener is a function');
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(listener);
    return () => this.off(type, listener);
  }

  off(type, listener) {
    this.#listeners.get(type)?.delete(listener);
  }

  once(type, listener) {
    const remove = this.on(type, (event) => {
      remove();
      listener(event);
    });
    return remove;
  }

  waitFor(type, predicate = () => true, { timeoutMs, signal } = {}) {
    return new Promise((resolve, reject) => {
      let timeout;
      const finish = () => {
        remove();
        clearTimeout(timeout);
        signal?.removeEventListener('abort', aborted);
      };
      const aborted = () => {
        finish();
        reject(signal.reason ?? new FlashsaleError('aborted', `stopped waiting for "${type}"`));
      };
      const remove = this.on(type, (event) => {
        let matches;
        try {
          matches = predicate(event);
        } catch (error) {
          finish();
          reject(error);
          return;
        }
        if (!matches) return;
        finish();
        resolve(event);
      });
      if (timeoutMs !== undefined) {
        timeout = setTimeout(() => {
          finish();
          reject(new FlashsaleError('timeout', `no "${type}" event within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      if (signal?.aborted) aborted();
      else signal?.addEventListener('abort', aborted);
    });
  }

  emit(type, event) {
    const listeners = this.#listeners.get(type);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch (error) {
        if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
        else setTimeout(() => { throw error; });
      }
    }
  }
}

/**
 * A connection to a flashsale server for one viewer. Create it, subscribe, order; call
 * connect() once (nothing is sent before), close() at the end.
 */
export class FlashsaleClient extends Emitter {
  #url;
  #WebSocket;
  #credentials;   // {user} | {token}; token may be a function, called on every sign-in
  #reconnect;
  #retry;
  #timeSyncIntervalMs;
  #responseTimeoutMs;

  #socket = null;
  #generation = 0;       // bumped by every stop: an #open() from before it gives up
  #state = 'idle';       // idle, connecting, live, waiting, closed
  #wanted = false;       // connect() was called and close() was not
  #failures = 0;         // connection attempts since the last welcome
  #reconnectTimer = null;
  #connectWaiters = [];  // deferreds of connect(), settled at the next welcome or at the end
  #user = null;
  #lastError = null;     // the last `error` message of this connection (the reason of a close)
  #clock;
  #timeSentAt = null;    // a `time` request waiting for its answer
  #syncTimer = null;
  #watchdog = null;

  // drop id -> {sent: subscribed on this connection, fresh: its `drop` message came on it,
  // state, attempts, timer: a subscribe to ask again, waiters: subscribe() promises}
  #drops = new Map();
  // stream id -> the same, for streams (fresh: its `stream` message came on this connection)
  #streams = new Map();
  #pending = new Map();  // client_order_id -> an order waiting for its final answer
  #actions = new Map();  // "confirm order_id" / "cancel order_id" -> a confirm or cancel waiting
  #orders = new Map();   // client_order_id -> what this client knows of the order

  constructor(options = {}) {
    super();
    const { url, user, token, WebSocket: Socket = globalThis.WebSocket } = options;
    if (typeof url !== 'string' && !(url instanceof URL)) throw new TypeError('options.url is required');
    if (typeof Socket !== 'function') {
      throw new TypeError('no WebSocket here: pass options.WebSocket (Node 20 and 21: --experimental-websocket)');
    }
    if (token === undefined && user === undefined) throw new TypeError('options.user or options.token is required');
    this.#url = String(url);
    this.#WebSocket = Socket;
    this.#credentials = token !== undefined ? { token } : { user };
    this.#reconnect = { ...DEFAULTS.reconnect, ...options.reconnect };
    this.#retry = { ...DEFAULTS.retry, ...options.retry };
    this.#clock = new ServerClock(options.now);
    this.#timeSyncIntervalMs = options.timeSyncIntervalMs ?? DEFAULTS.timeSyncIntervalMs;
    this.#responseTimeoutMs = options.responseTimeoutMs ?? DEFAULTS.responseTimeoutMs;
  }

  // ---- connection ----------------------------------------------------------------------

  /** idle, connecting, live, waiting (to reconnect) or closed. */
  get state() { return this.#state; }
  /** The user the server signed in, once welcomed. */
  get user() { return this.#user; }
  /** Live: signed in, messages go out now (otherwise they wait for the next sign-in). */
  get live() { return this.#state === 'live'; }

  /**
   * Connects and signs in, and from then on stays connected until close() or a close code
   * that says retrying cannot help (1008). Resolves with the next `welcome`.
   */
  connect() {
    const waiter = deferred();
    if (this.#state === 'live') {
      waiter.resolve({ type: 'welcome', user: this.#user, server_time_ms: this.now() });
      return waiter.promise;
    }
    this.#connectWaiters.push(waiter);
    if (!this.#wanted) {
      this.#wanted = true;
      this.#failures = 0;
      this.#open();
    }
    return waiter.promise;
  }

  /**
   * Closes the connection for good. Orders, confirms and cancels still waiting are rejected
   * with a FlashsaleError `closed` (an order may have been placed: ask again with its
   * client_order_id after connecting again to learn its outcome).
   */
  close(code = 1000, reason = '') {
    this.#wanted = false;
    clearTimeout(this.#reconnectTimer);
    const socket = this.#socket;
    this.#detach();
    if (socket) {
      try {
        socket.close(code, reason);
      } catch {
        // already closing
      }
    }
    this.#stop(new FlashsaleError('closed', 'the client was closed'), { code, reason });
  }

  async #open() {
    const generation = this.#generation;
    this.#setState('connecting', { attempt: this.#failures });
    let hello;
    try {
      const { token, user } = this.#credentials;
      hello = token !== undefined
          ? { type: 'hello', token: typeof token === 'function' ? await token() : token }
          : { type: 'hello', user: typeof user === 'function' ? await user() : user };
    } catch (error) {
      this.#stop(new FlashsaleError('unauthenticated', `no credentials: ${error?.message ?? error}`));
      return;
    }
    if (!this.#wanted || generation !== this.#generation) return;
    let socket;
    try {
      socket = new this.#WebSocket(this.#url);
    } catch (error) {
      // A URL the WebSocket cannot take will not get better by retrying.
      if (error?.name === 'SyntaxError') this.#stop(new FlashsaleError('bad_url', error.message));
      else this.#lost(1006, String(error?.message ?? error));
      return;
    }
    this.#socket = socket;
    this.#lastError = null;
    socket.onopen = () => {
      if (socket === this.#socket) socket.send(JSON.stringify(hello));
    };
    socket.onmessage = (event) => {
      if (socket === this.#socket) this.#receive(event.data);
    };
    socket.onerror = () => {};  // a close follows
    socket.onclose = (event) => {
      if (socket === this.#socket) this.#lost(event.code, event.reason);
    };
  }

  // Stops listening to the socket and forgets what was in flight on it.
  #detach() {
    const socket = this.#socket;
    this.#socket = null;
    if (socket) socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    clearTimeout(this.#syncTimer);
    clearTimeout(this.#watchdog);
    this.#syncTimer = this.#watchdog = null;
    this.#timeSentAt = null;
    for (const entry of [...this.#drops.values(), ...this.#streams.values()]) entry.sent = entry.fresh = false;
    for (const order of this.#pending.values()) if (order.phase === 'sent') order.phase = 'queued';
    for (const action of this.#actions.values()) if (action.phase === 'sent') action.phase = 'queued';
  }

  // The connection ended (or never came up): reconnect after a backoff, unless the close code
  // says that retrying cannot help.
  #lost(code, reason) {
    const error = this.#lastError;
    this.#detach();
    this.emit('close', { code, reason: reason ?? '', error });
    if (!this.#wanted) return;
    if (TERMINAL_CLOSE_CODES.includes(code)) {
      // 1008: a bad or expired token, a name the server does not take, too many connections
      // for this user, or far too many requests. Coming straight back would be refused again.
      const failure = new FlashsaleError(error?.code ?? 'closed',
                                         reason || error?.message || 'the server closed the connection',
                                         { closeCode: code });
      this.#stop(failure, { code, reason, error });
      return;
    }
    let delayMs = backoffDelay(this.#failures++, this.#reconnect);
    // 1013: the viewer read too slowly, or the server was too busy to take a hello: coming
    // back at once would only add to its load.
    if (code === 1013) delayMs = Math.max(delayMs, this.#reconnect.busyMs + backoffDelay(0, { baseMs: this.#reconnect.busyMs }));
    this.#setState('waiting', { attempt: this.#failures, delayMs, code, reason: reason ?? '' });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#wanted) this.#open();
    }, delayMs);
  }

  // The end: no more reconnecting; everything waiting fails with `failure`.
  #stop(failure, detail = {}) {
    this.#wanted = false;
    this.#generation += 1;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#detach();
    if (this.#state !== 'closed') this.#setState('closed', { ...detail, error: detail.error ?? null });
    for (const waiter of this.#connectWaiters.splice(0)) waiter.reject(failure);
    for (const order of [...this.#pending.values()]) {
      clearTimeout(order.timer);
      this.#pending.delete(order.clientOrderId);
      order.reject(new FlashsaleError(failure.code, failure.message,
                                      { clientOrderId: order.clientOrderId, drop: order.drop, closeCode: detail.code }));
    }
    for (const action of [...this.#actions.values()]) {
      clearTimeout(action.timer);
      this.#actions.delete(action.key);
      action.reject(new FlashsaleError(failure.code, failure.message, { orderId: action.orderId, closeCode: detail.code }));
    }
    for (const entry of [...this.#drops.values(), ...this.#streams.values()]) {
      clearTimeout(entry.timer);
      for (const waiter of entry.waiters.splice(0)) waiter.reject(failure);
    }
  }

  #setState(state, detail = {}) {
    const previous = this.#state;
    this.#state = state;
    this.emit('connection', { state, previous, ...detail });
  }

  #send(message) {
    if (this.#state !== 'live' || !this.#socket) return false;
    this.#socket.send(JSON.stringify(message));
    return true;
  }

  // ---- messages from the server --------------------------------------------------------

  #receive(data) {
    let message;
    try {
      message = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
    } catch {
      return;  // not JSON: not from a flashsale server; nothing to do with it
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') return;
    switch (message.type) {
      case 'welcome': this.#welcome(message); break;
      case 'time': this.#time(message); break;
      case 'drop':
      case 'tick':
      case 'state':
      case 'stock': this.#dropMessage(message); break;
      case 'stream': this.#streamMessage(message); break;
      case 'order_result': this.#orderResult(message); break;
      case 'order_update': this.#orderUpdate(message); break;
      case 'error': this.#error(message); break;
      default: break;  // a newer server's message: ignored, as the protocol says
    }
    // Server messages come out after the client has taken them in (so a listener sees the
    // client's state already updated): as `message`, and under their own type unless that is
    // one of the client's own events.
    this.emit('message', message);
    if (!CLIENT_EVENTS.includes(message.type)) this.emit(message.type, message);
  }

  #welcome(message) {
    this.#user = message.user;
    this.#failures = 0;
    this.#clock.restart();
    this.#clock.fromMessage(message.server_time_ms);
    this.#setState('live', { user: message.user });
    this.#syncTime();
    // Subscribed again to everything followed, then whatever waited for a connection: orders
    // whose answer was lost are asked again with the same client_order_id.
    for (const [id, drop] of this.#drops) if (!drop.timer) this.#sendSubscribe(id, drop);
    for (const [id, stream] of this.#streams) if (!stream.timer) this.#sendStreamSubscribe(id, stream);
    for (const order of this.#pending.values()) if (order.phase === 'queued') this.#sendOrder(order);
    for (const action of this.#actions.values()) if (action.phase === 'queued') this.#sendAction(action);
    for (const waiter of this.#connectWaiters.splice(0)) waiter.resolve(message);
  }

  // A `time` request now, and another every timeSyncIntervalMs. One that stays unanswered for
  // responseTimeoutMs means the connection is dead without having said so (a network gone):
  // it is dropped and a new one made.
  #syncTime() {
    clearTimeout(this.#syncTimer);
    this.#syncTimer = timer(() => this.#syncTime(), this.#timeSyncIntervalMs);
    if (this.#timeSentAt !== null) return;
    this.#timeSentAt = this.#clock.local();
    if (!this.#send({ type: 'time' })) {
      this.#timeSentAt = null;
      return;
    }
    this.#watchdog = timer(() => {
      const socket = this.#socket;
      this.#lost(1006, 'no answer from the server');
      try {
        socket?.close();
      } catch {
        // closing already
      }
    }, this.#responseTimeoutMs);
  }

  #time(message) {
    if (this.#timeSentAt === null) return;
    this.#clock.fromRoundTrip(message.server_time_ms, this.#timeSentAt);
    this.#timeSentAt = null;
    clearTimeout(this.#watchdog);
    this.#watchdog = null;
  }

  #dropMessage(message) {
    const id = message.drop;
    const entry = this.#drops.get(id);
    if (message.type === 'drop') {
      this.#clock.fromMessage(message.server_time_ms);
      const { type, ...state } = message;
      if (entry) {
        entry.state = state;
        entry.fresh = true;
        entry.attempts = 0;
        for (const waiter of entry.waiters.splice(0)) waiter.resolve({ ...state });
      }
    } else {
      if (message.server_time_ms !== undefined) this.#clock.fromMessage(message.server_time_ms);
      const state = entry?.state;
      if (!state) return;
      if (message.type === 'tick') {
        state.opens_at_ms = message.server_time_ms + message.ms_left;
      } else if (message.type === 'state') {
        state.state = message.state;
      } else {
        state.stock_left = message.left;
        // A drop with named variants: every variant's stock, each time.
        if (Array.isArray(message.variants) && Array.isArray(state.variants)) {
          const left = new Map(message.variants.map((variant) => [variant.id, variant.left]));
          state.variants = state.variants.map((variant) =>
            left.has(variant.id) ? { ...variant, stock_left: left.get(variant.id) } : variant);
        }
        if (message.raised_cents !== undefined) state.raised_cents = message.raised_cents;
        if (message.supporters !== undefined) state.supporters = message.supporters;
      }
    }
    if (entry?.state) this.emit('dropchange', { drop: id, state: { ...entry.state }, cause: message.type });
  }

  #orderResult(result) {
    const order = this.#pending.get(result.client_order_id);
    if (!order || order.drop !== result.drop) {
      this.#track(result.client_order_id, result.drop, result);
      return;
    }
    clearTimeout(order.timer);
    order.timer = null;
    if (RETRYABLE_ORDER_STATUSES.includes(result.status)) {
      order.attempts += 1;
      if (order.attempts >= order.maxAttempts) {
        this.#pending.delete(order.clientOrderId);
        this.#track(order.clientOrderId, order.drop, { status: result.status, reason: result.reason });
        order.reject(new FlashsaleError('retries_exhausted',
            `still ${result.status} after ${order.attempts} attempts: ask again later with the same clientOrderId`,
            { clientOrderId: order.clientOrderId, drop: order.drop, result }));
        return;
      }
      const delayMs = backoffDelay(order.attempts - 1, this.#retry);
      order.phase = 'waiting';
      order.timer = timer(() => {
        order.timer = null;
        order.phase = 'queued';
        this.#sendOrder(order);
      }, delayMs);
      this.#track(order.clientOrderId, order.drop, { status: 'retrying', reason: result.reason, attempts: order.attempts });
      this.emit('order_retry', {
        client_order_id: order.clientOrderId, drop: order.drop, attempt: order.attempts,
        delay_ms: delayMs, result,
      });
      return;
    }
    this.#pending.delete(order.clientOrderId);
    this.#track(order.clientOrderId, order.drop, result);
    order.resolve(result);
  }

  #orderUpdate(update) {
    this.#track(update.client_order_id, update.drop, update);
    // The answer to a confirm or cancel is the order's state afterwards; `reserved` never is
    // (it is a waitlisted order getting its units).
    if (update.status === 'reserved') return;
    for (const kind of ['confirm', 'cancel']) {
      const action = this.#actions.get(`${kind} ${update.order_id}`);
      if (!action) continue;
      clearTimeout(action.timer);
      this.#actions.delete(action.key);
      action.resolve(update);
    }
  }

  #error(message) {
    this.#lastError = message;
    const ref = message.ref;
    if (ref === undefined) return;
    const retryable = RETRYABLE_ERROR_CODES.includes(message.code);
    // A confirm or cancel (ref: the order id).
    for (const kind of ['confirm', 'cancel']) {
      const action = this.#actions.get(`${kind} ${ref}`);
      if (!action) continue;
      clearTimeout(action.timer);
      if (retryable && ++action.attempts < this.#retry.attempts) {
        action.phase = 'waiting';
        action.timer = timer(() => {
          action.timer = null;
          action.phase = 'queued';
          this.#sendAction(action);
        }, backoffDelay(action.attempts - 1, this.#retry));
      } else {
        this.#actions.delete(action.key);
        action.reject(new FlashsaleError(message.code, message.message, { orderId: ref, error: message }));
      }
    }
    // An order the server could not read (ref: its client_order_id).
    const order = this.#pending.get(ref);
    if (order) {
      clearTimeout(order.timer);
      this.#pending.delete(ref);
      this.#track(ref, order.drop, { status: 'invalid', reason: message.message });
      order.reject(new FlashsaleError(message.code, message.message, { clientOrderId: ref, drop: order.drop, error: message }));
    }
    // A subscription (ref: the drop's or the stream's id; a stream may share its id with a
    // drop outside it, so `unknown_drop` and `unknown_stream` say which one failed).
    if (message.code !== 'unknown_stream') {
      this.#subscriptionError(this.#drops, ref, message, retryable, 'drop', (entry) => this.#sendSubscribe(ref, entry));
    }
    if (message.code !== 'unknown_drop') {
      this.#subscriptionError(this.#streams, ref, message, retryable, 'stream',
                              (entry) => this.#sendStreamSubscribe(ref, entry));
    }
  }

  // A subscribe to `ref` in `followed` (drops or streams) that was refused: asked again later if
  // retrying may help, else forgotten, its subscribe() promises rejected.
  #subscriptionError(followed, ref, message, retryable, what, resend) {
    const entry = followed.get(ref);
    if (!entry?.sent || entry.fresh) return;
    entry.sent = false;
    if (retryable && ++entry.attempts < this.#retry.attempts) {
      entry.timer = timer(() => {
        entry.timer = null;
        if (followed.get(ref) === entry) resend(entry);
      }, backoffDelay(entry.attempts - 1, this.#retry));
    } else if (message.code !== 'bad_field') {  // bad_field: subscribed already
      followed.delete(ref);
      for (const waiter of entry.waiters.splice(0)) {
        waiter.reject(new FlashsaleError(message.code, message.message, { [what]: ref, error: message }));
      }
    }
  }

  // ---- drops and the clock --------------------------------------------------------------

  /**
   * Follows a drop: its full state comes first (the promise resolves with it), then its
   * changes as `dropchange` events. Kept across reconnects until unsubscribe().
   */
  subscribe(drop) {
    if (!isName(drop, 64)) return Promise.reject(new TypeError(`not a drop id: ${drop}`));
    let entry = this.#drops.get(drop);
    if (entry?.fresh) return Promise.resolve({ ...entry.state });
    if (!entry) {
      entry = { sent: false, fresh: false, state: null, attempts: 0, timer: null, waiters: [] };
      this.#drops.set(drop, entry);
    }
    const waiter = deferred();
    entry.waiters.push(waiter);
    if (!entry.sent && !entry.timer) this.#sendSubscribe(drop, entry);
    return waiter.promise;
  }

  // The full state comes again; until then the old one is shown.
  #sendSubscribe(id, entry) {
    entry.fresh = false;
    entry.sent = this.#send({ type: 'subscribe', drop: id });
  }

  /** Stops following a drop. */
  unsubscribe(drop) {
    const entry = this.#drops.get(drop);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.#drops.delete(drop);
    for (const waiter of entry.waiters.splice(0)) {
      waiter.reject(new FlashsaleError('unsubscribed', `unsubscribed from ${drop}`, { drop }));
    }
    this.#send({ type: 'unsubscribe', drop });
  }

  /** A followed drop as the server last described it (a copy), or undefined. */
  drop(drop) {
    const state = this.#drops.get(drop)?.state;
    if (!state) return undefined;
    const copy = { ...state };
    if (Array.isArray(state.variants)) copy.variants = state.variants.map((variant) => ({ ...variant }));
    return copy;
  }

  /** The drops followed. */
  get drops() { return [...this.#drops.keys()]; }

  // ---- streams ------------------------------------------------------------------------------

  /**
   * Follows a live stream: its title, state, video, pinned drop and shelf (every drop of it as a
   * `drop` message tells it) come first (the promise resolves with them), then again at every
   * change as `streamchange` events. Kept across reconnects until unsubscribeStream(). The
   * pinned drop's own live state comes from subscribe(pinned), as for any drop.
   */
  subscribeStream(stream) {
    if (!isStreamId(stream)) return Promise.reject(new TypeError(`not a stream id: ${stream}`));
    let entry = this.#streams.get(stream);
    if (entry?.fresh) return Promise.resolve(copyStream(entry.state));
    if (!entry) {
      entry = { sent: false, fresh: false, state: null, attempts: 0, timer: null, waiters: [] };
      this.#streams.set(stream, entry);
    }
    const waiter = deferred();
    entry.waiters.push(waiter);
    if (!entry.sent && !entry.timer) this.#sendStreamSubscribe(stream, entry);
    return waiter.promise;
  }

  #sendStreamSubscribe(id, entry) {
    entry.fresh = false;
    entry.sent = this.#send({ type: 'subscribe', stream: id });
  }

  /** Stops following a stream. */
  unsubscribeStream(stream) {
    const entry = this.#streams.get(stream);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.#streams.delete(stream);
    for (const waiter of entry.waiters.splice(0)) {
      waiter.reject(new FlashsaleError('unsubscribed', `unsubscribed from ${stream}`, { stream }));
    }
    this.#send({ type: 'unsubscribe', stream });
  }

  /** A followed stream as the server last described it (a copy), or undefined. */
  stream(stream) {
    const state = this.#streams.get(stream)?.state;
    return state ? copyStream(state) : undefined;
  }

  /** The streams followed. */
  get streams() { return [...this.#streams.keys()]; }

  #streamMessage(message) {
    this.#clock.fromMessage(message.server_time_ms);
    const entry = this.#streams.get(message.stream);
    if (!entry) return;
    const { type, ...state } = message;
    const previous = entry.state;
    entry.state = state;
    entry.fresh = true;
    entry.attempts = 0;
    for (const waiter of entry.waiters.splice(0)) waiter.resolve(copyStream(state));
    this.emit('streamchange', {
      stream: message.stream, state: copyStream(state), previous: previous ? copyStream(previous) : null,
    });
  }

  /** The server's time now (Unix ms), as well as this client can tell. */
  now() { return this.#clock.now(); }

  /** What the client knows of the server's clock. */
  get clock() {
    return { offsetMs: this.#clock.offsetMs, roundTripMs: this.#clock.roundTripMs, synced: this.#clock.synced };
  }

  /**
   * Milliseconds until the drop opens, on the server's clock: 0 once open (or sold out or
   * closed), null while no countdown runs or the drop is unknown.
   */
  msUntilOpen(drop) {
    const state = this.#drops.get(drop)?.state;
    if (!state) return null;
    if (state.state === 'countdown' && typeof state.opens_at_ms === 'number') {
      return Math.max(0, state.opens_at_ms - this.now());
    }
    return state.state === 'scheduled' ? null : 0;
  }

  // ---- orders -------------------------------------------------------------------------------

  /**
   * Orders `qty` units of `drop`. Resolves with the final `order_result` (`reserved`,
   * `waitlisted`, `sold_out`, `limit_exceeded`, `closed`, `not_open`, `invalid`); `busy`,
   * `unavailable` and `rate_limited` are asked again after a backoff with the same
   * client_order_id, up to `retry.attempts` sends in all, then it rejects with
   * `retries_exhausted`. Ordering again with the same clientOrderId while it waits returns
   * the same promise; after it settled, it asks the server again (which answers a recorded
   * order with its original outcome). `variant`: which of a drop's named variants (its id).
   */
  order(drop, qty = 1, options = {}) {
    const clientOrderId = options.clientOrderId ?? newClientOrderId();
    const variant = options.variant ?? '';
    if (!isName(drop, 64)) return Promise.reject(new TypeError(`not a drop id: ${drop}`));
    if (variant !== '' && !/^[A-Za-z0-9_.-]{1,32}$/.test(variant)) {
      return Promise.reject(new TypeError('variant must be 1-32 of [A-Za-z0-9_.-]'));
    }
    if (!Number.isInteger(qty) || qty < 1 || qty > QTY_MAX) {
      return Promise.reject(new TypeError(`qty must be a whole number from 1 to ${QTY_MAX}`));
    }
    if (!isName(clientOrderId, CLIENT_ORDER_ID_MAX)) {
      return Promise.reject(new TypeError('clientOrderId must be 1-64 printable ASCII characters'));
    }
    const waiting = this.#pending.get(clientOrderId);
    if (waiting) {
      if (waiting.drop !== drop || waiting.qty !== qty || waiting.variant !== variant) {
        return Promise.reject(new TypeError(`client_order_id ${clientOrderId} is in use for another order`));
      }
      return waiting.promise;
    }
    const order = {
      drop, qty, variant, clientOrderId, attempts: 0, phase: 'queued', timer: null,
      maxAttempts: Math.max(1, options.attempts ?? this.#retry.attempts),
      ...deferred(),
    };
    this.#pending.set(clientOrderId, order);
    this.#track(clientOrderId, drop, { status: 'pending', qty, ...(variant ? { variant } : {}) });
    this.#sendOrder(order);
    return order.promise;
  }

  #sendOrder(order) {
    const message = { type: 'order', drop: order.drop, qty: order.qty, client_order_id: order.clientOrderId };
    if (order.variant) message.variant = order.variant;
    if (this.#send(message)) {
      order.phase = 'sent';
    }
  }

  /** Pays for a reserved order. Resolves with the `order_update` that answers it. */
  confirm(orderId) {
    return this.#action('confirm', orderId);
  }

  /** Cancels a reserved or waitlisted order. Resolves with the `order_update` that answers it. */
  cancel(orderId) {
    return this.#action('cancel', orderId);
  }

  #action(kind, orderId) {
    if (typeof orderId !== 'string' || orderId.length === 0) {
      return Promise.reject(new TypeError('orderId is the order_id of an order_result'));
    }
    const key = `${kind} ${orderId}`;
    const waiting = this.#actions.get(key);
    if (waiting) return waiting.promise;
    const action = { key, kind, orderId, attempts: 0, phase: 'queued', timer: null, ...deferred() };
    this.#actions.set(key, action);
    this.#sendAction(action);
    return action.promise;
  }

  #sendAction(action) {
    // Both are idempotent: confirming a paid order, or cancelling a cancelled one, answers
    // with the order as it is. So one whose answer was lost is simply asked again.
    if (this.#send({ type: action.kind, order_id: action.orderId })) action.phase = 'sent';
  }

  /**
   * What this client knows of an order, by client_order_id: its drop, qty, status (`pending`
   * and `retrying` while unanswered, then an order_result status, then order_update ones),
   * order_id, hold_expires_at_ms, position, reason, variant (on a drop with named variants).
   */
  orderState(clientOrderId) {
    const known = this.#orders.get(clientOrderId);
    return known ? { ...known } : undefined;
  }

  /** A promise of the next `order_update` of an order (say, a waitlisted one getting units). */
  nextUpdate(orderId, options) {
    return this.waitFor('order_update', (update) => update.order_id === orderId, options);
  }

  #track(clientOrderId, drop, change) {
    if (clientOrderId === undefined) return;
    const known = this.#orders.get(clientOrderId) ?? { client_order_id: clientOrderId, drop, status: 'pending' };
    for (const field of ['status', 'qty', 'variant', 'order_id', 'hold_expires_at_ms', 'position', 'reason', 'attempts',
                         'recorded']) {
      if (change[field] !== undefined) known[field] = change[field];
    }
    // A waitlisted order that got its units has a hold now, and no place in the queue.
    if (change.status !== undefined && change.status !== 'waitlisted') delete known.position;
    this.#orders.set(clientOrderId, known);
    this.emit('orderchange', { ...known });
  }
}

export default FlashsaleClient;
