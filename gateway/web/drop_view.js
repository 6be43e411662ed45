// The drop on the viewer page — its countdown, price, stock and variants — and this viewer's
// orders: buy, then pay or cancel. Shared by both ways into the page: one drop (/?drop=) and a
// live stream (/s/{stream}), where the drop shown is the one the host pinned and changes with it.
//
// Everything shown is derived from the drop as the client keeps it, this viewer's orders and
// the connection, by render(), which the page runs on every event and five times a second for
// the clocks. Orders are kept in localStorage by drop and user, so that a reload asks again
// with the same client_order_id rather than ordering twice. An order on another drop of the
// stream (one the host has taken off screen since) stays listed under the drop shown, payable
// until its hold ends.
import { RETRYABLE_ORDER_STATUSES, newClientOrderId } from './flashsale.js';
import { clockText, discountText, element, money } from './common.js';

// A final answer: nothing more to ask of that variant. Reserved and waitlisted orders wait for
// pay or cancel.
const final = new Set(['sold_out', 'limit_exceeded', 'closed', 'confirmed', 'unknown_variant']);
// Orders worth listing when their drop is not the one shown: what the buyer may still act on,
// and what they paid for.
const listed = new Set(['reserved', 'waitlisted', 'confirmed']);
const unsettled = (order) => Boolean(order) &&
    (order.waiting || ['reserved', 'waitlisted', 'busy'].includes(order.status));
const variantName = (variant) => variant.label || variant.id;

// When the sale ends by itself (Unix ms, server clock): null for a drop without a duration, or
// while its opening instant is not set.
function closesAt(drop) {
  if (typeof drop.closes_at_ms === 'number') return drop.closes_at_ms;
  const opensAt = drop.opens_at_ms;
  return typeof opensAt === 'number' && drop.duration_ms ? opensAt + drop.duration_ms : null;
}

export class DropView {
  #client;
  #onMissing;
  #ui = Object.fromEntries(
      ['drop', 'title', 'deal-price', 'list-price', 'discount', 'phase', 'countdown', 'sale-left', 'stock-bar',
       'stock-left', 'stock-total', 'variants', 'variant-options', 'buy', 'order-status', 'pay', 'cancel',
       'window-note', 'raised', 'held', 'held-list']
          .map((id) => [id, element(id)]));

  #user = null;         // known from the first welcome: orders are stored under it
  #dropId = null;       // the drop shown, or null
  #connected = false;
  // This viewer's orders by drop id (null: none stored): {clientOrderId, variant, title, status,
  // waiting, orderId, qty, holdExpiresAt, position, reason}. `variant`: the id of the variant
  // ordered, '' on a drop without named variants. `waiting`: asked, no final answer yet; status
  // `busy` while the client asks again after `busy` (or gave up asking: then Buy asks again).
  #orders = new Map();
  #others = new Map();  // the stream's other drops by id, as its `stream` message tells them
  #chosen = null;       // the variant picked on the drop shown (its id), or null

  // `onMissing(error)`: the drop shown does not exist.
  constructor(client, { onMissing } = {}) {
    this.#client = client;
    this.#onMissing = onMissing;
    client.on('dropchange', () => this.render());
    client.on('orderchange', (change) => this.#onOrderChange(change));
    client.on('error', (error) => {
      const order = [...this.#orders.values()].find((known) => known && error.ref === known.orderId);
      if (order) {
        order.reason = error.message;
        this.render();
      }
    });
    this.#ui.buy.addEventListener('click', () => this.#buy());
    this.#ui.pay.addEventListener('click', () => this.#act('confirm', this.#orders.get(this.#dropId)));
    this.#ui.cancel.addEventListener('click', () => this.#act('cancel', this.#orders.get(this.#dropId)));
  }

  get dropId() { return this.#dropId; }

  set connected(value) {
    this.#connected = value;
    this.render();
  }

  // The first welcome: the orders stored for this user are read, and any not settled asked
  // again (the server answers with the original outcome). Later welcomes change nothing: the
  // client subscribes and asks again by itself.
  signedIn(user) {
    if (this.#user !== null) return;
    this.#user = user;
    for (const drop of [this.#dropId, ...this.#others.keys()]) if (drop) this.#adopt(drop);
    this.render();
  }

  // Shows `dropId` (null: none) from now on: subscribed to it, unsubscribed from the one before.
  show(dropId) {
    if (dropId === this.#dropId) return;
    const previous = this.#dropId;
    this.#dropId = dropId;
    this.#chosen = null;
    if (previous) this.#client.unsubscribe(previous);
    if (dropId) {
      this.#client.subscribe(dropId).catch((error) => {
        if (error.code === 'unknown_drop' && this.#dropId === dropId) this.#onMissing?.(error);
      });
      if (this.#user !== null) this.#adopt(dropId);
      this.#chosen = this.#orders.get(dropId)?.variant || null;
    }
    this.render();
  }

  // The stream's drops (each as a `drop` message tells it): orders on those not shown stay
  // listed, with pay and cancel.
  setOthers(drops) {
    this.#others = new Map(drops.map((drop) => [drop.drop, drop]));
    if (this.#user !== null) for (const drop of this.#others.keys()) this.#adopt(drop);
    this.render();
  }

  #storageKey(drop) {
    return `flashsale:order:${drop}:${this.#user}`;
  }

  #save(drop) {
    if (this.#user !== null) localStorage.setItem(this.#storageKey(drop), JSON.stringify(this.#orders.get(drop)));
  }

  // Reads the order stored for `drop` once, and asks again about it if it is not settled.
  #adopt(drop) {
    if (this.#orders.has(drop)) return;
    let order = null;
    try {
      order = JSON.parse(localStorage.getItem(this.#storageKey(drop)));
    } catch {
      // unreadable: as if none
    }
    this.#orders.set(drop, order);
    if (drop === this.#dropId && order?.variant) this.#chosen = order.variant;
    if (unsettled(order)) this.#ask(drop);
  }

  // What the client learnt about an order: the answer, a retry, an update (payment, expiry, a
  // waitlisted order getting its unit).
  #onOrderChange(change) {
    const order = this.#orders.get(change.drop);
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
    this.#save(change.drop);
    this.render();
  }

  #ask(drop) {
    const asked = this.#orders.get(drop);
    asked.waiting = true;
    const variant = asked.variant ? { variant: asked.variant } : {};
    this.#client.order(drop, 1, { clientOrderId: asked.clientOrderId, ...variant })
        .catch((error) => {
          // retries_exhausted: still busy; Buy asks again with the same client_order_id.
          if (error.code !== 'retries_exhausted') asked.reason = error.message;
        })
        .finally(() => {
          asked.waiting = false;
          if (this.#orders.get(drop) === asked) this.#save(drop);
          this.render();
        });
  }

  #buy() {
    const drop = this.#dropId;
    const variant = this.#chosen ?? '';
    const order = this.#orders.get(drop);
    // After `busy` answers the client gave up on, the same order again; otherwise a new one.
    if (!(order && order.status === 'busy' && (order.variant ?? '') === variant)) {
      const title = this.#client.drop(drop)?.title ?? '';
      this.#orders.set(drop, { clientOrderId: newClientOrderId(), variant, title, status: '', waiting: true });
    }
    this.#save(drop);
    this.#ask(drop);
    this.render();
  }

  // Pay and cancel: their answers come back as order changes (see #onOrderChange).
  #act(action, order) {
    if (!order?.orderId) return;
    this.#client[action](order.orderId).catch((error) => {
      order.reason = error.message;
      this.render();
    });
  }

  render() {
    this.#renderDrop();
    this.#renderHeld();
  }

  #renderDrop() {
    const ui = this.#ui;
    const client = this.#client;
    const dropId = this.#dropId;
    const drop = dropId ? client.drop(dropId) : undefined;
    ui.drop.hidden = !drop;
    if (!drop) return;
    const order = this.#orders.get(dropId) ?? null;
    const variants = drop.variants ?? [];
    if (variants.length === 1) this.#chosen = variants[0].id;
    const variant = variants.find((item) => item.id === this.#chosen);
    // Sold out still takes orders onto a waitlist, if the drop has one (each variant has its own).
    const waitlist = drop.waitlist_limit > 0;
    ui.title.textContent = drop.title;
    this.#renderPrice(drop, variant);
    this.#renderVariants(drop, waitlist);
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
    this.#renderSaleLeft(drop);

    // A final answer about one variant leaves the others to buy.
    const settled = order && (order.status === 'reserved' || order.status === 'waitlisted' ||
                              (final.has(order.status) && (order.variant ?? '') === (variant?.id ?? '')));
    const soldOut = drop.state === 'sold_out' || (drop.state === 'open' && variant?.stock_left === 0);
    const open = soldOut ? waitlist : drop.state === 'open';
    const unpicked = variants.length > 0 && !variant;
    ui.buy.disabled = !this.#connected || !open || unpicked || Boolean(order?.waiting) || Boolean(settled);
    ui.buy.textContent = drop.state === 'closed' ? phases.closed
        : soldOut ? (waitlist ? 'Join the waitlist' : 'Sold out')
        : unpicked && drop.state === 'open' ? 'Choose one above' : 'Buy now';

    ui['order-status'].textContent = this.#orderText(order, drop);
    ui['order-status'].dataset.status = order?.status ?? '';
    ui.pay.hidden = order?.status !== 'reserved';
    ui.cancel.hidden = !(order?.status === 'reserved' || order?.status === 'waitlisted');
    ui.pay.disabled = ui.cancel.disabled = !this.#connected;
  }

  // Orders on the stream's drops other than the one shown, one row each, made when the set
  // changes and updated in place after (a button rebuilt under a finger loses the tap).
  #renderHeld() {
    const ui = this.#ui;
    const rows = [...this.#orders.entries()]
        .filter(([drop, order]) => drop !== this.#dropId && this.#others.has(drop) && listed.has(order?.status));
    ui.held.hidden = rows.length === 0;
    const list = ui['held-list'];
    const ids = rows.map(([drop]) => drop).join(' ');
    if (list.dataset.ids !== ids) {
      list.dataset.ids = ids;
      list.replaceChildren(...rows.map(([drop]) => {
        const item = document.createElement('li');
        item.dataset.testid = 'held-order';
        item.dataset.drop = drop;
        const text = document.createElement('p');
        text.className = 'status';
        const actions = document.createElement('div');
        actions.className = 'actions';
        for (const [action, label] of [['confirm', 'Pay'], ['cancel', 'Cancel']]) {
          const button = document.createElement('button');
          button.type = 'button';
          button.dataset.testid = action === 'confirm' ? 'held-pay' : 'held-cancel';
          button.textContent = label;
          if (action === 'cancel') button.className = 'secondary';
          button.addEventListener('click', () => this.#act(action, this.#orders.get(drop)));
          actions.append(button);
        }
        item.append(text, actions);
        return item;
      }));
    }
    rows.forEach(([drop, order], index) => {
      const item = list.children[index];
      const known = this.#others.get(drop);
      const text = item.querySelector('.status');
      text.textContent = `${known?.title || order.title || drop} — ${this.#orderText(order, known ?? {})}`;
      text.dataset.status = order.status;
      const [pay, cancel] = item.querySelectorAll('button');
      pay.hidden = order.status !== 'reserved';
      cancel.hidden = !(order.status === 'reserved' || order.status === 'waitlisted');
      pay.disabled = cancel.disabled = !this.#connected;
    });
  }

  // What the buyer reads about their order, in plain words.
  #orderText(order, drop) {
    if (!order) return '';
    const variant = order.variant && drop.variants?.find((item) => item.id === order.variant);
    const text = this.#statusText(order, drop);
    return variant ? `${variantName(variant)}: ${text}` : text;
  }

  #statusText(order, drop) {
    const hold = order.holdExpiresAt ? clockText(order.holdExpiresAt - this.#client.now()) : '';
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

  // The time left in a sale with a duration: how long it will run, then how long it still runs.
  #renderSaleLeft(drop) {
    const ui = this.#ui;
    const end = closesAt(drop);
    const timed = end !== null || Boolean(drop.duration_ms);
    ui['sale-left'].hidden = !timed;
    if (!timed) return;
    const length = drop.duration_ms ?? end - drop.opens_at_ms;
    const text = {
      scheduled: `On sale for ${clockText(length)} once it opens`,
      countdown: `Then on sale for ${clockText(length)}`,
      closed: 'Sale ended',
    }[drop.state] ?? `Sale ends in ${clockText(end - this.#client.now())}`;
    ui['sale-left'].textContent = text;
    ui['sale-left'].dataset.state = drop.state === 'closed' ? 'ended' : drop.state;
  }

  // The deal price of what is picked (or the drop's own, or "from" its lowest), with the list
  // price struck through and the discount.
  #renderPrice(drop, variant) {
    const ui = this.#ui;
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

  // One button per variant, made when the set of variants changes and updated in place after.
  #renderVariants(drop, waitlist) {
    const ui = this.#ui;
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
          this.#chosen = variant.id;
          this.render();
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
      button.setAttribute('aria-pressed', String(variant.id === this.#chosen));
    });
  }
}
