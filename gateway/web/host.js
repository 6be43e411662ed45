// The host console: a host runs its live streams — creates a stream and its drops (with
// variants, a list price, an opening instant and a duration), pins the drop on screen, goes
// live, starts countdowns, restocks, closes, ends the stream — and watches the sale. The
// operator's key sees every host's streams and drops and manages the hosts: creates one (its
// key is shown once), gives it a new key, revokes it.
//
// Everything goes through the host API (docs/protocol.md) with the key, which is kept in this
// tab's sessionStorage and nowhere else: not in the address, not in localStorage, not in the
// console. A key the server refuses signs the console out at once. The streams, the selected
// stream's shelf and the drops are polled once a second; the chart keeps the last five minutes
// of the samples of the drop shown (the one picked, else the stream's pinned one).
import { clockText, discountText, element, money } from './common.js';

const ui = Object.fromEntries(
    ['sign-in', 'host-key', 'who', 'sign-out', 'problem', 'signed-out', 'operator', 'hosts', 'new-key',
     'new-key-host', 'new-key-value', 'new-key-copy', 'new-key-done', 'host-form', 'streams', 'stream-form',
     'stream', 'stream-title', 'stream-state', 'stream-link', 'stream-live', 'stream-unpin', 'stream-end', 'shelf',
     'other-drops', 'drops', 'live', 'live-title', 'live-state', 'live-countdown', 'live-closes', 'live-left',
     'live-held', 'live-sold', 'live-waitlist', 'live-rate', 'live-raised', 'live-variants', 'sales-chart',
     'start-seconds', 'drop-start', 'restock-add', 'restock-variant', 'restock-variant-label', 'drop-restock',
     'drop-close', 'drop-form', 'drop-target', 'variant-rows', 'variant-row', 'variant-add']
        .map((id) => [id, element(id)]));

const keyStorage = 'flashsale:host-key';
const signedOutText = ui['signed-out'].textContent;
let key = sessionStorage.getItem(keyStorage);  // null: signed out
let role = '';             // 'host' or 'operator' once the server took the key
const query = new URLSearchParams(location.search);
let selectedStream = query.get('stream');
let chosenDrop = query.get('drop');  // a drop the host picked; without one, the stream's pinned drop
let shownDrop = null;      // the drop whose numbers and chart are shown
let dropTarget = selectedStream ?? '';  // where the next drop goes: a stream's id, '' for none
let samples = [];          // {at, left, held, sold, decisions, total} of shownDrop, oldest first
const keep_ms = 5 * 60 * 1000;
let refreshing = false;    // one refresh at a time; one asked meanwhile runs after it
let again = false;

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const reply = await fetch(`/api/${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new ApiError(reply.status, answer.error?.code, answer.error?.message ?? `HTTP ${reply.status}`);
  return answer;
}

function showProblem(error) {
  ui.problem.hidden = !error;
  ui.problem.textContent = error ? String(error.message ?? error) : '';
}

// A call whose failure is shown (and a refused key signs out): its answer, or null.
async function act(method, path, body) {
  if (!key) return null;
  try {
    const answer = await api(method, path, body);
    showProblem(null);
    return answer;
  } catch (error) {
    if (error.status === 401) {
      signOut('Signed out: the server refused this key. It was revoked or replaced by a new one; ' +
              'sign in with the key you have now.');
    } else {
      showProblem(error);
    }
    return null;
  }
}

const path = (...parts) => parts.map(encodeURIComponent).join('/');
const stateText = (state) => state.replace('_', ' ');

// ---- signing in and out ---------------------------------------------------------------------

// A host account's key names its host (fsh_<host>_<64 hex>); the configured host's key does not.
function whoText() {
  if (role === 'operator') return 'Signed in: operator';
  const host = /^fsh_(.+)_[0-9a-f]{64}$/.exec(key)?.[1];
  return host ? `Signed in: host ${host}` : 'Signed in: host';
}

// Whose key it is: the operator's reads the hosts, a host's is forbidden to. Null if refused.
async function findRole() {
  try {
    await api('GET', 'admin/hosts');
    return 'operator';
  } catch (error) {
    if (error.status === 403) return 'host';
    if (error.status === 401) signOut('That key was refused: check it and sign in again.');
    else showProblem(error);
    return null;
  }
}

function signOut(reason = signedOutText) {
  key = null;
  role = '';
  sessionStorage.removeItem(keyStorage);
  document.body.dataset.role = '';
  ui['signed-out'].textContent = reason;
  ui['sign-in'].hidden = false;
  ui.who.hidden = ui['sign-out'].hidden = true;
  hideKey();
  showProblem(null);
  for (const table of [ui.hosts, ui.streams, ui.shelf, ui.drops]) table.tBodies[0].replaceChildren();
  ui.stream.hidden = ui['other-drops'].hidden = ui.live.hidden = true;
  shownDrop = null;
  samples = [];
}

ui['sign-in'].addEventListener('submit', (event) => {
  event.preventDefault();
  key = ui['host-key'].value.trim();
  ui['host-key'].value = '';
  role = '';
  refresh();
});
ui['sign-out'].addEventListener('click', () => signOut());

// ---- polling ----------------------------------------------------------------------------------

async function refresh() {
  if (!key) return;
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    await load();
  } finally {
    refreshing = false;
    if (again) {
      again = false;
      refresh();
    }
  }
}

async function load() {
  if (!role) {
    const found = await findRole();
    if (!found || !key) return;
    role = found;
    sessionStorage.setItem(keyStorage, key);
    document.body.dataset.role = role;
    ui['sign-in'].hidden = true;
    ui.who.hidden = ui['sign-out'].hidden = false;
    ui.who.textContent = whoText();
  }
  const [list, drops, hosts] = await Promise.all([
    act('GET', 'streams'), act('GET', 'drops'), role === 'operator' ? act('GET', 'admin/hosts') : null,
  ]);
  if (!key || !list || !drops) return;
  if (hosts) showHosts(hosts.hosts);
  if (!list.streams.some((item) => item.id === selectedStream)) selectedStream = null;
  const stream = selectedStream ? await act('GET', `streams/${path(selectedStream)}`) : null;
  if (!key) return;
  showStreams(list.streams);
  showStream(stream);
  const outside = drops.drops.filter((drop) => !drop.stream);
  showOtherDrops(outside);
  // The drop shown: the one picked, if it is still there; else what the stream has on screen.
  const candidates = [...(stream?.shelf ?? []), ...(stream ? [] : outside)];
  const drop = candidates.find((item) => item.id === chosenDrop) ??
               stream?.shelf.find((item) => item.id === stream.pinned);
  show(drop ?? null);
}

// ---- the operator: hosts --------------------------------------------------------------------------

function showHosts(hosts) {
  ui.hosts.tBodies[0].replaceChildren(...hosts.map((host) => {
    const row = document.createElement('tr');
    row.dataset.host = host.id;
    const since = host.configured ? 'in the config'
        : new Date(host.revoked_at_ms ?? host.created_at_ms).toLocaleString();
    for (const value of [host.id, host.state, since]) {
      const cell = document.createElement('td');
      cell.textContent = value;
      row.append(cell);
    }
    const actions = document.createElement('td');
    actions.className = 'actions';
    if (!host.configured) {
      const rotate = button('New key', 'secondary', `rotate-${host.id}`, async () => {
        const warning = host.state === 'revoked'
            ? `Give ${host.id} a new key? They can sell again with it.`
            : `Give ${host.id} a new key? Their current key stops working at once.`;
        if (!confirm(warning)) return;
        const answer = await act('POST', `admin/hosts/${path(host.id)}/key`);
        if (answer) showKey(answer);
        refresh();
      });
      actions.append(rotate);
      if (host.state !== 'revoked') {
        actions.append(button('Revoke', 'danger', `revoke-${host.id}`, async () => {
          if (!confirm(`Revoke ${host.id}'s key? It stops working at once; their streams stay.`)) return;
          await act('POST', `admin/hosts/${path(host.id)}/revoke`);
          refresh();
        }));
      }
    }
    row.append(actions);
    return row;
  }));
}

function button(text, className, testid, onClick) {
  const made = document.createElement('button');
  made.type = 'button';
  made.textContent = text;
  if (className) made.className = className;
  made.dataset.testid = testid;
  made.addEventListener('click', (event) => {
    event.stopPropagation();  // a button in a row is not a click on the row
    onClick();
  });
  return made;
}

// A host's new key, shown here once: the server keeps only its digest.
function showKey(account) {
  ui['new-key-host'].textContent = account.id;
  ui['new-key-value'].value = account.key;
  ui['new-key-copy'].textContent = 'Copy';
  ui['new-key'].hidden = false;
  ui['new-key-value'].select();
}

function hideKey() {
  ui['new-key-value'].value = '';
  ui['new-key'].hidden = true;
}

ui['new-key-copy'].addEventListener('click', async () => {
  const value = ui['new-key-value'].value;
  try {
    await navigator.clipboard.writeText(value);
  } catch {
    // No clipboard API here (not a secure context): the selected text, copied the old way.
    ui['new-key-value'].select();
    document.execCommand('copy');
  }
  ui['new-key-copy'].textContent = 'Copied';
});
ui['new-key-done'].addEventListener('click', hideKey);

ui['host-form'].addEventListener('submit', async (event) => {
  event.preventDefault();
  const id = new FormData(event.target).get('id').trim();
  const created = await act('POST', 'admin/hosts', { id });
  if (!created) return;
  event.target.reset();
  showKey(created);
  refresh();
});

// ---- streams ------------------------------------------------------------------------------------

function showStreams(streams) {
  ui.streams.tBodies[0].replaceChildren(...streams.map((stream) => {
    const row = document.createElement('tr');
    row.dataset.stream = stream.id;
    row.classList.toggle('selected', stream.id === selectedStream);
    const pinned = stream.pinned ? stream.pinned.slice(stream.pinned.indexOf('~') + 1) : '–';
    for (const value of [`${stream.title} (${stream.id})`, stream.host, stream.state, pinned, stream.drops.length]) {
      const cell = document.createElement('td');
      cell.textContent = String(value);
      row.append(cell);
    }
    row.addEventListener('click', () => selectStream(stream.id));
    return row;
  }));
  // Where a new drop goes: a stream that has not ended, or none. Rebuilt when the set changes.
  const open = streams.filter((stream) => stream.state !== 'ended');
  const target = ui['drop-target'];
  const ids = open.map((stream) => stream.id).join(' ');
  if (target.dataset.ids !== ids) {
    target.dataset.ids = ids;
    target.replaceChildren(new Option('no stream', ''),
                           ...open.map((stream) => new Option(`${stream.title} (${stream.id})`, stream.id)));
  }
  target.value = open.some((stream) => stream.id === dropTarget) ? dropTarget : '';
}

function showStream(stream) {
  ui.stream.hidden = !stream;
  if (!stream) return;
  ui['stream-title'].textContent = `${stream.title} (${stream.id}) · host ${stream.host}`;
  ui['stream-state'].textContent = stream.state;
  ui['stream-state'].dataset.state = stream.state;
  const link = new URL(`/s/${encodeURIComponent(stream.id)}`, location.origin).href;
  ui['stream-link'].href = link;
  ui['stream-link'].textContent = link;
  ui['stream-live'].disabled = stream.state !== 'scheduled';
  ui['stream-unpin'].disabled = !stream.pinned || stream.state === 'ended';
  ui['stream-end'].disabled = stream.state === 'ended';
  ui.shelf.tBodies[0].replaceChildren(...stream.shelf.map((drop) => {
    const row = document.createElement('tr');
    row.dataset.drop = drop.id;
    row.classList.toggle('selected', drop.id === shownDrop);
    const name = drop.id.slice(drop.id.indexOf('~') + 1);
    for (const value of [`${drop.title} (${name})`, stateText(drop.state), drop.stock_left, drop.held, drop.sold,
                         drop.stock_total]) {
      const cell = document.createElement('td');
      cell.textContent = String(value);
      row.append(cell);
    }
    const pin = document.createElement('td');
    if (drop.id === stream.pinned) {
      pin.textContent = 'on screen';
      pin.className = 'on-screen';
    } else if (stream.state !== 'ended') {
      pin.append(button('Pin', 'secondary', `pin-${name}`, () => {
        chosenDrop = null;  // the numbers follow what is on screen
        act('POST', `streams/${path(stream.id)}/pin`, { drop: drop.id }).then(refresh);
      }));
    }
    row.append(pin);
    row.addEventListener('click', () => selectDrop(drop.id, stream.id));
    return row;
  }));
}

function showOtherDrops(drops) {
  ui['other-drops'].hidden = drops.length === 0;
  ui.drops.tBodies[0].replaceChildren(...drops.map((drop) => {
    const row = document.createElement('tr');
    row.dataset.drop = drop.id;
    row.classList.toggle('selected', drop.id === shownDrop);
    for (const value of [drop.title || drop.id, stateText(drop.state), drop.stock_left, drop.held,
                         drop.sold, drop.stock_total]) {
      const cell = document.createElement('td');
      cell.textContent = String(value);
      row.append(cell);
    }
    row.addEventListener('click', () => selectDrop(drop.id, null));
    return row;
  }));
}

function remember() {
  const state = new URLSearchParams();
  if (selectedStream) state.set('stream', selectedStream);
  if (chosenDrop) state.set('drop', chosenDrop);
  const rest = state.toString();
  history.replaceState(null, '', rest ? `/host?${rest}` : '/host');
}

function selectStream(id) {
  selectedStream = id;
  chosenDrop = null;
  dropTarget = id;
  remember();
  refresh();
}

function selectDrop(id, stream) {
  selectedStream = stream;
  chosenDrop = id;
  dropTarget = stream ?? '';
  remember();
  refresh();
}

ui['stream-form'].addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const request = { id: form.get('id'), title: form.get('title') };
  const video = String(form.get('video_url')).trim();
  if (video) request.video_url = video;
  if (role === 'operator') request.host = String(form.get('host')).trim();
  const created = await act('POST', 'streams', request);
  if (!created) return;
  event.target.reset();
  selectStream(created.id);
});
ui['stream-live'].addEventListener('click', () =>
  act('POST', `streams/${path(selectedStream)}/live`).then(refresh));
ui['stream-unpin'].addEventListener('click', () =>
  act('POST', `streams/${path(selectedStream)}/unpin`).then(refresh));
ui['stream-end'].addEventListener('click', () => {
  if (confirm('End the stream? Every sale in it closes; buyers holding units keep them until they pay or their hold ends.'))
    act('POST', `streams/${path(selectedStream)}/end`).then(refresh);
});

// ---- the drop shown -----------------------------------------------------------------------------

// "¥19.90 (list ¥29.90, 33% off)", or the price alone.
function priceText(priceCents, listPriceCents) {
  const discount = discountText(priceCents, listPriceCents);
  return discount ? `${money(priceCents)} (list ${money(listPriceCents)}, ${discount})` : money(priceCents);
}

// When the sale ends by itself: the time left while it runs, the instant before it opens.
function closesText(drop) {
  if (typeof drop.closes_at_ms !== 'number') {
    return drop.duration_ms ? `${clockText(drop.duration_ms)} after opening` : '–';
  }
  if (drop.state === 'closed') return 'ended';
  if (drop.state === 'countdown') return new Date(drop.closes_at_ms).toLocaleTimeString();
  return clockText(drop.closes_at_ms - Date.now());
}

function showVariants(drop) {
  const variants = drop.variants ?? [];
  ui['live-variants'].hidden = variants.length === 0;
  ui['live-variants'].tBodies[0].replaceChildren(...variants.map((variant) => {
    const row = document.createElement('tr');
    row.dataset.variant = variant.id;
    const name = variant.label ? `${variant.label} (${variant.id})` : variant.id;
    for (const value of [name, priceText(variant.price_cents, variant.list_price_cents), variant.stock_left,
                         variant.held, variant.sold, variant.waitlist, variant.stock_total]) {
      const cell = document.createElement('td');
      cell.textContent = String(value);
      row.append(cell);
    }
    return row;
  }));
  // Restock adds to one variant: which one, when there is a choice. Kept while the set stays.
  const several = variants.length > 1;
  ui['restock-variant-label'].hidden = !several;
  const ids = several ? variants.map((variant) => variant.id).join(' ') : '';
  if (ui['restock-variant'].dataset.ids !== ids) {
    ui['restock-variant'].dataset.ids = ids;
    ui['restock-variant'].replaceChildren(...(several ? variants : []).map((variant) =>
      new Option(variant.label ? `${variant.label} (${variant.id})` : variant.id, variant.id)));
  }
}

function show(drop) {
  if ((drop?.id ?? null) !== shownDrop) {
    shownDrop = drop?.id ?? null;
    samples = [];
  }
  ui.live.hidden = !drop;
  if (!drop) return;
  const price = drop.variants?.length ? `from ${money(drop.price_cents)}`
                                      : priceText(drop.price_cents, drop.list_price_cents);
  ui['live-title'].textContent = `${drop.title} (${drop.id}) · ${price}`;
  ui['live-state'].textContent = stateText(drop.state);
  ui['live-countdown'].textContent =
      drop.state === 'countdown' ? clockText(drop.opens_at_ms - Date.now()) : '–';
  ui['live-closes'].textContent = closesText(drop);
  ui['live-closes'].title =
      typeof drop.closes_at_ms === 'number' ? new Date(drop.closes_at_ms).toLocaleString() : '';
  showVariants(drop);
  ui['live-left'].textContent = drop.stock_left;
  ui['live-held'].textContent = drop.held;
  ui['live-sold'].textContent = drop.sold;
  ui['live-waitlist'].textContent = drop.waitlist;
  ui['live-raised'].textContent = drop.pledge_bps
      ? `${money(drop.raised_cents)} (${drop.supporters})` : '–';
  ui['live-raised'].title = drop.pledge_bps ? `for ${drop.beneficiary}` : '';
  const now = Date.now();
  samples.push({ at: now, left: drop.stock_left, held: drop.held, sold: drop.sold,
                 decisions: drop.decisions, total: drop.stock_total });
  samples = samples.filter((sample) => now - sample.at <= keep_ms);
  ui['live-rate'].textContent = Math.round(rate(samples.length - 1));
  draw();
}

// Orders a second between sample i-1 and i (recorded outcomes, so retries are not counted).
function rate(index) {
  if (index < 1) return 0;
  const [before, after] = [samples[index - 1], samples[index]];
  return ((after.decisions - before.decisions) * 1000) / Math.max(1, after.at - before.at);
}

function draw() {
  const canvas = ui['sales-chart'];
  const context = canvas.getContext('2d');
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  if (samples.length === 0) return;
  const first = samples[0].at;
  const span = Math.max(10_000, samples[samples.length - 1].at - first);
  const x = (at) => 8 + ((at - first) / span) * (width - 16);
  const units = Math.max(1, ...samples.map((sample) => sample.total));
  const rates = samples.map((_, index) => rate(index));
  const peak = Math.max(1, ...rates);
  const line = (color, value) => {
    context.strokeStyle = color;
    context.lineWidth = 2;
    context.beginPath();
    samples.forEach((sample, index) => {
      const y = height - 8 - value(sample, index) * (height - 32);  // room for the label on top
      if (index === 0) context.moveTo(x(sample.at), y); else context.lineTo(x(sample.at), y);
    });
    context.stroke();
  };
  const style = getComputedStyle(document.body);
  line(style.getPropertyValue('--sold'), (sample) => sample.sold / units);
  line(style.getPropertyValue('--held'), (sample) => sample.held / units);
  line(style.getPropertyValue('--left'), (sample) => sample.left / units);
  line(style.getPropertyValue('--rate'), (_, index) => rates[index] / peak);
  context.fillStyle = style.getPropertyValue('--muted');
  context.font = '12px system-ui';
  context.fillText(`${units} units · peak ${Math.round(peak)} orders/s`, 12, 16);
}

// ---- a new drop ---------------------------------------------------------------------------------

// With variant rows the drop's own price, list price and stock are theirs to set, not the form's.
function variantRowsChanged() {
  const rows = ui['variant-rows'].tBodies[0].rows.length;
  ui['variant-rows'].hidden = rows === 0;
  for (const name of ['price', 'list_price', 'stock']) ui['drop-form'].elements[name].disabled = rows > 0;
}

ui['variant-add'].addEventListener('click', () => {
  const row = ui['variant-row'].content.firstElementChild.cloneNode(true);
  const form = ui['drop-form'].elements;
  // A new row starts from the drop's price and stock, so three sizes need three ids and little else.
  row.querySelector('[name="variant_price"]').value = form.price.value;
  row.querySelector('[name="variant_list_price"]').value = form.list_price.value;
  row.querySelector('[name="variant_stock"]').value = form.stock.value;
  row.querySelector('.remove').addEventListener('click', () => {
    row.remove();
    variantRowsChanged();
  });
  ui['variant-rows'].tBodies[0].append(row);
  variantRowsChanged();
  row.querySelector('[name="variant_id"]').focus();
});

const cents = (text) => Math.round(Number(text) * 100);

// The form's fields as the host API takes them: optional ones only when filled in.
function dropRequest(formElement) {
  const form = new FormData(formElement);
  const number = (name) => Number(form.get(name));
  const filled = (name) => String(form.get(name) ?? '').trim() !== '';
  const request = {
    id: form.get('id'), title: form.get('title'), per_user_limit: number('per_user_limit'),
    hold_seconds: number('hold_seconds'), waitlist_limit: number('waitlist_limit'),
    admission_window_ms: number('admission_window_ms'),
    beneficiary: form.get('beneficiary'), pledge_bps: Math.round(number('pledge') * 100),
  };
  const rows = [...ui['variant-rows'].tBodies[0].rows];
  if (rows.length) {
    request.variants = rows.map((row) => {
      const field = (name) => row.querySelector(`[name="${name}"]`).value.trim();
      const variant = { id: field('variant_id'), price_cents: cents(field('variant_price')),
                        stock: Number(field('variant_stock')) };
      if (field('variant_label')) variant.label = field('variant_label');
      if (field('variant_list_price')) variant.list_price_cents = cents(field('variant_list_price'));
      return variant;
    });
  } else {
    request.price_cents = cents(form.get('price'));
    request.stock = number('stock');
    if (filled('list_price')) request.list_price_cents = cents(form.get('list_price'));
  }
  if (filled('per_variant_limit')) request.per_variant_limit = number('per_variant_limit');
  // datetime-local is the host's own time zone: Date reads a date-time without an offset as local.
  if (filled('opens_at')) request.opens_at_ms = new Date(form.get('opens_at')).getTime();
  if (filled('duration_seconds')) request.duration_seconds = number('duration_seconds');
  return request;
}

ui['drop-target'].addEventListener('change', () => { dropTarget = ui['drop-target'].value; });

// Into the stream chosen (its "id" is then the drop's name there), or outside any.
ui['drop-form'].addEventListener('submit', async (event) => {
  event.preventDefault();
  const stream = ui['drop-target'].value;
  const created = await act('POST', stream ? `streams/${path(stream)}/drops` : 'drops', dropRequest(event.target));
  if (created) selectDrop(created.id, created.stream ?? null);
});
ui['drop-start'].addEventListener('click', () =>
  act('POST', `drops/${path(shownDrop)}/countdown`, { seconds: Number(ui['start-seconds'].value) }).then(refresh));
ui['drop-restock'].addEventListener('click', () => {
  const request = { add: Number(ui['restock-add'].value) };
  if (!ui['restock-variant-label'].hidden) request.variant = ui['restock-variant'].value;
  act('POST', `drops/${path(shownDrop)}/restock`, request).then(refresh);
});
ui['drop-close'].addEventListener('click', () => {
  if (confirm('Close the sale? Buyers holding units keep them until they pay or their hold ends.'))
    act('POST', `drops/${path(shownDrop)}/close`).then(refresh);
});

document.body.dataset.role = '';
refresh();
setInterval(refresh, 1000);
