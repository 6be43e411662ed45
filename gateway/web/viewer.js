// The viewer page: watch one drop's countdown and stock, buy, then pay or cancel.
//
// Everything shown is derived from a few pieces of state (the drop as the server last
// described it, this viewer's order, the connection) by render(), which runs on every message
// and five times a second for the clocks. Orders are idempotent by client_order_id, so after
// `busy`, a lost connection or a server restart the page simply asks again with the same id
// and gets the original answer.
import { ServerClock, backoffMs, clockText, element, money } from './common.js';

const params = new URLSearchParams(location.search);
const clock = new ServerClock();
const ui = Object.fromEntries(
    ['connection', 'sign-in', 'choose', 'drop-list', 'drop', 'title', 'price', 'phase', 'countdown',
     'stock-bar', 'stock-left', 'stock-total', 'buy', 'order-status', 'pay', 'cancel',
     'window-note', 'raised'].map((id) => [id, element(id)]));

let user = params.get('user') ?? sessionStorage.getItem('flashsale:user');
// A token is read from the link once, then kept for this tab only and taken out of the address
// bar, so that it is not in the history, in bookmarks, or in a screenshot of the page.
const token = params.get('token') ?? sessionStorage.getItem('flashsale:token');
if (params.has('token')) {
  sessionStorage.setItem('flashsale:token', token);
  params.delete('token');
  const rest = params.toString();
  history.replaceState(null, '', rest ? `${location.pathname}?${rest}` : location.pathname);
}
const dropId = params.get('drop');
let socket = null;
let connected = false;
let reconnects = 0;    // failed attempts since the last welcome
let drop = null;       // the last `drop` message, kept current by tick, state and stock
// This viewer's order on the drop: {clientOrderId, status, waiting, orderId, qty,
// holdExpiresAt, position, reason}. `waiting`: asked, no answer yet. Kept in localStorage, so a
// reload asks again with the same client_order_id rather than ordering twice.
let order = null;
let orderRetries = 0;
let retryTimer = null;
let timeSentAt = 0;

const final = new Set(['sold_out', 'limit_exceeded', 'closed', 'confirmed']);
const storageKey = () => `flashsale:order:${dropId}:${user}`;

function saveOrder() {
  if (user && dropId) localStorage.setItem(storageKey(), JSON.stringify(order));
}

function loadOrder() {
  try {
    return JSON.parse(localStorage.getItem(storageKey()));
  } catch {
    return null;
  }
}

function send(message) {
  if (connected) socket.send(JSON.stringify(message));
}

function connect() {
  setConnection('connecting', reconnects ? 'reconnecting…' : 'connecting…');
  socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  socket.onopen = () => {
    socket.send(JSON.stringify(token ? { type: 'hello', token } : { type: 'hello', user }));
  };
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = (event) => {
    connected = false;
    socket = null;
    if (event.code === 1008) {
      setConnection('lost', 'signed out: ' + (event.reason || 'not allowed'));
      return;  // a bad token or name will not get better by retrying
    }
    const delay = backoffMs(reconnects++);
    setConnection('lost', `connection lost — retrying in ${Math.ceil(delay / 1000)} s`);
    setTimeout(connect, delay);
    render();
  };
}

function setConnection(state, text) {
  ui.connection.dataset.state = state;
  ui.connection.textContent = text;
}

function receive(message) {
  switch (message.type) {
    case 'welcome':
      connected = true;
      reconnects = 0;
      user = message.user;
      clock.fromMessage(message.server_time_ms);
      timeSentAt = Date.now();
      send({ type: 'time' });
      setConnection('live', `live as ${user}`);
      if (dropId) {
        send({ type: 'subscribe', drop: dropId });
        if (!order) order = loadOrder();
        // Ask again for anything not settled: the server answers with the original outcome.
        if (order && (order.waiting || order.status === 'reserved' || order.status === 'waitlisted' ||
                      order.status === 'busy')) {
          askOrder();
        }
      } else {
        showDropList();
      }
      break;
    case 'time':
      clock.fromRoundTrip(message.server_time_ms, timeSentAt);
      break;
    case 'drop':
      drop = message;
      clock.fromMessage(message.server_time_ms);
      break;
    case 'tick':
      if (drop && message.drop === drop.drop) {
        drop.opens_at_ms = message.server_time_ms + message.ms_left;
      }
      clock.fromMessage(message.server_time_ms);
      break;
    case 'state':
      if (drop && message.drop === drop.drop) drop.state = message.state;
      break;
    case 'stock':
      if (drop && message.drop === drop.drop) {
        drop.stock_left = message.left;
        if (message.raised_cents !== undefined) {
          drop.raised_cents = message.raised_cents;
          drop.supporters = message.supporters;
        }
      }
      break;
    case 'order_result':
      if (order && message.client_order_id === order.clientOrderId) onResult(message);
      break;
    case 'order_update':
      if (order && message.order_id === order.orderId) onUpdate(message);
      break;
    case 'error':
      if (order && message.ref === order.orderId) order.reason = message.message;
      break;
  }
  render();
}

function onResult(result) {
  clearTimeout(retryTimer);
  const retryable = ['busy', 'unavailable', 'rate_limited'];
  if (retryable.includes(result.status)) {
    // Same client_order_id, later: a retry can never buy twice.
    const delay = backoffMs(orderRetries++, 500);
    order.status = 'busy';
    order.waiting = true;
    retryTimer = setTimeout(askOrder, delay);
    saveOrder();
    return;
  }
  orderRetries = 0;
  order.waiting = false;
  order.status = result.status;
  order.reason = result.reason ?? '';
  if (result.order_id) order.orderId = result.order_id;
  if (result.hold_expires_at_ms) order.holdExpiresAt = result.hold_expires_at_ms;
  if (result.position) order.position = result.position;
  if (result.qty) order.qty = result.qty;
  saveOrder();
}

function onUpdate(update) {
  order.status = update.status;
  if (update.hold_expires_at_ms) order.holdExpiresAt = update.hold_expires_at_ms;
  saveOrder();
}

function askOrder() {
  if (!order) return;
  order.waiting = true;
  send({ type: 'order', drop: dropId, qty: 1, client_order_id: order.clientOrderId });
}

function buy() {
  order = { clientOrderId: crypto.randomUUID(), status: '', waiting: true };
  orderRetries = 0;
  saveOrder();
  askOrder();
  render();
}

async function showDropList() {
  ui.choose.hidden = false;
  const reply = await fetch('/drops');
  const { drops } = await reply.json();
  ui['drop-list'].replaceChildren(...drops.map((item) => {
    const entry = document.createElement('li');
    const link = document.createElement('a');
    const query = new URLSearchParams({ drop: item.id });
    if (!token) query.set('user', user);
    link.href = `/?${query}`;
    link.textContent = `${item.title} — ${item.state.replace('_', ' ')}`;
    entry.append(link);
    return entry;
  }));
  if (drops.length === 0) ui['drop-list'].textContent = 'Nothing on sale right now.';
}

// What the buyer reads about their order, in plain words.
function orderText() {
  if (!order) return '';
  const hold = order.holdExpiresAt ? clockText(order.holdExpiresAt - clock.now()) : '';
  switch (order.status) {
    case '': return drop?.admission_window_ms ? 'You are in the draw — results when it closes' : 'Ordering…';
    case 'busy': return 'So many buyers! Trying again…';
    case 'reserved': return `Reserved for you — pay within ${hold}`;
    case 'waitlisted': return `You are #${order.position} on the waitlist — we will tell you if a unit comes back`;
    case 'sold_out': return 'Sold out — every unit is taken';
    case 'limit_exceeded': return 'Limit reached — you already have as many as this drop allows';
    case 'closed': return 'The sale is closed';
    case 'confirmed': return 'Paid — it is yours!';
    case 'cancelled': return 'Cancelled — you can buy again while stock lasts';
    case 'expired': return 'Your hold ran out before payment';
    case 'not_open': return 'Not open yet — wait for the countdown';
    case 'invalid': return `Could not order: ${order.reason}`;
    default: return order.status;
  }
}

function render() {
  ui['sign-in'].hidden = Boolean(user || token);
  ui.drop.hidden = !drop;
  if (!drop) return;
  ui.title.textContent = drop.title;
  ui.price.textContent = money(drop.price_cents);
  // A charity drop: what every confirmed sale has given so far.
  ui.raised.hidden = !drop.pledge_bps;
  if (drop.pledge_bps) {
    const people = drop.supporters === 1 ? '1 supporter' : `${drop.supporters} supporters`;
    ui.raised.textContent = `${money(drop.raised_cents)} raised for ${drop.beneficiary} · ${people} · ` +
        `${drop.pledge_bps / 100}% of every sale`;
    ui.raised.title = drop.beneficiary_note ?? '';
  }
  const left = drop.stock_left;
  ui['stock-left'].textContent = String(left);
  ui['stock-total'].textContent = String(drop.stock_total);
  ui['stock-bar'].style.width = `${drop.stock_total ? (100 * left) / drop.stock_total : 0}%`;

  const phases = {
    scheduled: 'Coming soon', countdown: 'Opens in', open: 'On sale now',
    sold_out: 'Sold out', closed: 'Sale closed',
  };
  ui.phase.textContent = phases[drop.state] ?? drop.state;
  if (drop.state === 'countdown' && drop.opens_at_ms) {
    ui.countdown.textContent = clockText(drop.opens_at_ms - clock.now());
  } else {
    ui.countdown.textContent = drop.state === 'scheduled' ? '–:––' : '0:00';
  }
  ui.countdown.dataset.state = drop.state;
  ui['window-note'].hidden = !drop.admission_window_ms;
  ui['window-note'].textContent =
      `Fair start: everyone who orders in the first ${drop.admission_window_ms / 1000} s has the same chance.`;

  const settled = order && (final.has(order.status) || order.status === 'reserved' ||
                            order.status === 'waitlisted');
  // Sold out still takes orders onto a waitlist, if the drop has one.
  const waitlist = drop.state === 'sold_out' && drop.waitlist_limit > 0;
  const open = drop.state === 'open' || waitlist;
  ui.buy.disabled = !connected || !open || Boolean(order?.waiting) || Boolean(settled);
  ui.buy.textContent = {
    open: 'Buy now', sold_out: waitlist ? 'Join the waitlist' : 'Sold out', closed: 'Sale closed',
  }[drop.state] ?? 'Buy now';

  ui['order-status'].textContent = orderText();
  ui['order-status'].dataset.status = order?.status ?? '';
  ui.pay.hidden = order?.status !== 'reserved';
  ui.cancel.hidden = !(order?.status === 'reserved' || order?.status === 'waitlisted');
  ui.pay.disabled = ui.cancel.disabled = !connected;
}

ui.buy.addEventListener('click', buy);
ui.pay.addEventListener('click', () => send({ type: 'confirm', order_id: order.orderId }));
ui.cancel.addEventListener('click', () => send({ type: 'cancel', order_id: order.orderId }));
ui['sign-in'].addEventListener('submit', (event) => {
  event.preventDefault();
  user = new FormData(event.target).get('user').trim();
  sessionStorage.setItem('flashsale:user', user);
  render();
  connect();
});
setInterval(() => {
  render();
  if (connected && Date.now() - timeSentAt > 30_000) {
    timeSentAt = Date.now();
    send({ type: 'time' });
  }
}, 200);

render();
if (user || token) connect();
