// The viewer page: watch one drop's countdown and stock, pick a variant (a size, a colour) when
// the drop has several, buy, then pay or cancel.
//
// The page is UI only: the protocol — signing in, reconnecting, following the drop, the
// server's clock, ordering with retries — is @flashsale/client (clients/js/flashsale.js, served
// as /web/flashsale.js). Everything shown is derived from a few pieces of state (the drop as
// the client keeps it, this viewer's order, the connection) by render(), which runs on every
// event and five times a second for the clocks. The order is kept in localStorage, so that a
// reload asks again with the same client_order_id rather than ordering twice.
import { FlashsaleClient, RETRYABLE_ORDER_STATUSES, newClientOrderId } from './flashsale.js';
import { clockText, discountText, element, money } from './common.js';

const params = new URLSearchParams(location.search);
const ui = Object.fromEntries(
    ['connection', 'sign-in', 'choose', 'drop-list', 'drop', 'title', 'deal-price', 'list-price',
     'discount', 'phase', 'countdown', 'sale-left', 'stock-bar', 'stock-left', 'stock-total',
     'variants', 'variant-options', 'buy', 'order-status', 'pay', 'cancel', 'window-note', 'raised']
        .map((id) => [id, element(id)]));

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
let client = null;
let connected = false;
let welcomed = false;  // the first welcome: the drop list, or the stored order asked again
// This viewer's order on the drop: {clientOrderId, variant, status, waiting, orderId, qty,
// holdExpiresAt, position, reason}. `variant`: the id of the variant ordered, '' on a drop
// without named variants. `waiting`: asked, no final answer yet; status `busy` while the client
// asks again after `busy` (or gave up asking: then Buy asks again).
let order = null;
// The variant picked on a drop with named variants (its id), or null.
let chosen = null;

// A final answer: nothing more to ask of that variant. Reserved and waitlisted orders wait for
// pay or cancel.
const final = new Set(['sold_out', 'limit_exceeded', 'closed', 'confirmed', 'unknown_variant']);
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

function connect() {
  client = new FlashsaleClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
    ...(token ? { token } : { user }),
  });
  client.on('connection', onConnection);
  client.on('welcome', onWelcome);
  client.on('dropchange', render);
  client.on('orderchange', onOrderChange);
  client.on('error', (error) => {
    if (order && error.ref === order.orderId) {
      order.reason = error.message;
      render();
    }
  });
  if (dropId) {
    client.subscribe(dropId).catch((error) => {
      if (error.code === 'unknown_drop') showDropList();
    });
  }
  client.connect().catch(() => {});  // a refusal shows as the connection's state
}

function onConnection(event) {
  connected = event.state === 'live';
  switch (event.state) {
    case 'connecting':
      setConnection('connecting', event.attempt ? 'reconnecting…' : 'connecting…');
      break;
    case 'live':
      setConnection('live', `live as ${event.user}`);
      break;
    case 'waiting':
      setConnection('lost', `connection lost — retrying in ${Math.ceil(event.delayMs / 1000)} s`);
      break;
    case 'closed':
      // A bad token or name, or too many tabs: it will not get better by retrying.
      setConnection('lost', 'signed out: ' + (event.error?.message || event.reason || 'not allowed'));
      break;
  }
  render();
}

function setConnection(state, text) {
  ui.connection.dataset.state = state;
  ui.connection.textContent = text;
}

function onWelcome(welcome) {
  user = welcome.user;
  if (welcomed) return;  // after a reconnect the client subscribes and asks again by itself
  welcomed = true;
  if (!dropId) return showDropList();
  order = loadOrder();
  if (order?.variant) chosen = order.variant;
  // Ask again for anything not settled: the server answers with the original outcome.
  if (order && (order.waiting || ['reserved', 'waitlisted', 'busy'].includes(order.status))) askOrder();
  render();
}

// What the client learnt about an order: the answer, a retry, an update (payment, expiry, a
// waitlisted order getting its unit).
function onOrderChange(change) {
  if (!order || change.client_order_id !== order.clientOrderId) return;
  if (change.status === 'pending') return;
  if (change.status === 'retrying' || RETRYABLE_ORDER_STATUSES.includes(change.status)) {
    order.status = 'busy';  // being asked again, or given up on after too many tries
  } else {
    order.status = change.status;
    order.reason = change.reason ?? '';
    if (change.order_id) order.orderId = change.order_id;
    if (change.hold_expires_at_ms) order.holdExpiresAt = change.hold_expires_at_ms;
    if (change.position) order.position = change.position;
    if (change.qty) order.qty = change.qty;
  }
  saveOrder();
  render();
}

function askOrder() {
  const asked = order;
  asked.waiting = true;
  const variant = asked.variant ? { variant: asked.variant } : {};
  client.order(dropId, 1, { clientOrderId: asked.clientOrderId, ...variant })
      .catch((error) => {
        // retries_exhausted: still busy; Buy asks again with the same client_order_id.
        if (asked === order && error.code !== 'retries_exhausted') asked.reason = error.message;
      })
      .finally(() => {
        asked.waiting = false;
        saveOrder();
        render();
      });
}

function buy() {
  const variant = chosen ?? '';
  // After `busy` answers the client gave up on, the same order again; otherwise a new one.
  if (!(order && order.status === 'busy' && (order.variant ?? '') === variant)) {
    order = { clientOrderId: newClientOrderId(), variant, status: '', waiting: true };
  }
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
function orderText(drop) {
  if (!order) return '';
  const variant = order.variant && drop.variants?.find((item) => item.id === order.variant);
  const text = statusText(drop);
  return variant ? `${variantName(variant)}: ${text}` : text;
}

function statusText(drop) {
  const hold = order.holdExpiresAt ? clockText(order.holdExpiresAt - client.now()) : '';
  switch (order.status) {
    case '': return drop.admission_window_ms ? 'You are in the draw — results when it closes' : 'Ordering…';
    case 'busy': return order.waiting ? 'So many buyers! Trying again…' : 'So many buyers! Tap Buy to try again';
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
    case 'unknown_variant': return 'This drop does not sell that one';
    default: return order.status;
  }
}

const variantName = (variant) => variant.label || variant.id;

// When the sale ends by itself (Unix ms, server clock): null for a drop without a duration, or
// while its opening instant is not set.
function closesAt(drop) {
  if (typeof drop.closes_at_ms === 'number') return drop.closes_at_ms;
  const opensAt = drop.opens_at_ms;
  return typeof opensAt === 'number' && drop.duration_ms ? opensAt + drop.duration_ms : null;
}

// The time left in a sale with a duration: how long it will run, then how long it still runs.
function renderSaleLeft(drop) {
  const end = closesAt(drop);
  const timed = end !== null || Boolean(drop.duration_ms);
  ui['sale-left'].hidden = !timed;
  if (!timed) return;
  const length = drop.duration_ms ?? end - drop.opens_at_ms;
  const text = {
    scheduled: `On sale for ${clockText(length)} once it opens`,
    countdown: `Then on sale for ${clockText(length)}`,
    closed: 'Sale ended',
  }[drop.state] ?? `Sale ends in ${clockText(end - client.now())}`;
  ui['sale-left'].textContent = text;
  ui['sale-left'].dataset.state = drop.state === 'closed' ? 'ended' : drop.state;
}

// The deal price of what is picked (or the drop's own, or "from" its lowest), with the list
// price struck through and the discount.
function renderPrice(drop, variant) {
  const variants = drop.variants ?? [];
  const price = variant ? variant.price_cents : drop.price_cents;
  const list = variant ? variant.list_price_cents : variants.length ? undefined : drop.list_price_cents;
  const several = !variant && variants.some((item) => item.price_cents !== price);
  ui['deal-price'].textContent = several ? `from ${money(price)}` : money(price);
  const discount = discountText(price, list);
  ui['list-price'].hidden = ui.discount.hidden = !discount;
  ui['list-price'].textContent = discount ? money(list) : '';
  ui.discount.textContent = discount;
}

// One button per variant, made when the set of variants changes and updated in place after
// (the page renders five times a second: a button rebuilt under a finger loses the tap).
function renderVariants(drop, waitlist) {
  const variants = drop.variants ?? [];
  ui.variants.hidden = variants.length === 0;
  const options = ui['variant-options'];
  const ids = variants.map((variant) => variant.id).join(' ');
  if (options.dataset.ids !== ids) {
    options.dataset.ids = ids;
    options.replaceChildren(...variants.map((variant) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'variant';
      button.dataset.testid = `variant-${variant.id}`;
      button.dataset.variant = variant.id;
      for (const part of ['name', 'amount', 'was', 'left']) {
        const span = document.createElement(part === 'was' ? 's' : 'span');
        span.className = part;
        button.append(span);
      }
      button.addEventListener('click', () => {
        chosen = variant.id;
        render();
      });
      return button;
    }));
  }
  variants.forEach((variant, index) => {
    const button = options.children[index];
    const soldOut = variant.stock_left === 0;
    button.querySelector('.name').textContent = variantName(variant);
    button.querySelector('.amount').textContent = money(variant.price_cents);
    const was = button.querySelector('.was');
    was.hidden = !discountText(variant.price_cents, variant.list_price_cents);
    was.textContent = was.hidden ? '' : money(variant.list_price_cents);
    button.querySelector('.left').textContent =
        soldOut ? (waitlist ? 'sold out · waitlist' : 'sold out') : `${variant.stock_left} left`;
    button.dataset.state = soldOut ? 'sold-out' : 'available';
    button.disabled = (soldOut && !waitlist) || drop.state === 'closed';
    button.setAttribute('aria-pressed', String(variant.id === chosen));
  });
}

function render() {
  ui['sign-in'].hidden = Boolean(user || token);
  const drop = client && dropId ? client.drop(dropId) : undefined;
  ui.drop.hidden = !drop;
  if (!drop) return;
  const variants = drop.variants ?? [];
  if (variants.length === 1) chosen = variants[0].id;
  const variant = variants.find((item) => item.id === chosen);
  // Sold out still takes orders onto a waitlist, if the drop has one (each variant has its own).
  const waitlist = drop.waitlist_limit > 0;
  ui.title.textContent = drop.title;
  renderPrice(drop, variant);
  renderVariants(drop, waitlist);
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

  // A sale with a duration ends rather than being closed (by the clock, or early by the host).
  const ended = closesAt(drop) !== null;
  const phases = {
    scheduled: 'Coming soon', countdown: 'Opens in', open: 'On sale now',
    sold_out: 'Sold out', closed: ended ? 'Sale ended' : 'Sale closed',
  };
  ui.phase.textContent = phases[drop.state] ?? drop.state;
  const msLeft = client.msUntilOpen(dropId);
  if (drop.state === 'countdown' && msLeft !== null) {
    ui.countdown.textContent = clockText(msLeft);
  } else {
    ui.countdown.textContent = drop.state === 'scheduled' ? '–:––' : '0:00';
  }
  ui.countdown.dataset.state = drop.state;
  ui['window-note'].hidden = !drop.admission_window_ms;
  ui['window-note'].textContent =
      `Fair start: everyone who orders in the first ${drop.admission_window_ms / 1000} s has the same chance.`;
  renderSaleLeft(drop);

  // A final answer about one variant leaves the others to buy.
  const settled = order && (order.status === 'reserved' || order.status === 'waitlisted' ||
                            (final.has(order.status) && (order.variant ?? '') === (variant?.id ?? '')));
  const soldOut = drop.state === 'sold_out' || (drop.state === 'open' && variant?.stock_left === 0);
  const open = soldOut ? waitlist : drop.state === 'open';
  const unpicked = variants.length > 0 && !variant;
  ui.buy.disabled = !connected || !open || unpicked || Boolean(order?.waiting) || Boolean(settled);
  ui.buy.textContent = drop.state === 'closed' ? phases.closed
      : soldOut ? (waitlist ? 'Join the waitlist' : 'Sold out')
      : unpicked && drop.state === 'open' ? 'Choose one above' : 'Buy now';

  ui['order-status'].textContent = orderText(drop);
  ui['order-status'].dataset.status = order?.status ?? '';
  ui.pay.hidden = order?.status !== 'reserved';
  ui.cancel.hidden = !(order?.status === 'reserved' || order?.status === 'waitlisted');
  ui.pay.disabled = ui.cancel.disabled = !connected;
}

// Pay and cancel: their answers come back as order changes (see onOrderChange).
function act(action) {
  client[action](order.orderId).catch((error) => {
    order.reason = error.message;
    render();
  });
}

ui.buy.addEventListener('click', buy);
ui.pay.addEventListener('click', () => act('confirm'));
ui.cancel.addEventListener('click', () => act('cancel'));
ui['sign-in'].addEventListener('submit', (event) => {
  event.preventDefault();
  user = new FormData(event.target).get('user').trim();
  sessionStorage.setItem('flashsale:user', user);
  render();
  connect();
});
setInterval(render, 200);

render();
if (user || token) connect();
