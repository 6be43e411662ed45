// The host console: create drops (with variants, a list price, an opening instant and a
// duration), start the countdown, restock, close, and watch the sale.
// Everything goes through the host API (docs/protocol.md) with the host key, which stays in
// this tab's sessionStorage. The selected drop is polled once a second; the chart keeps the
// last five minutes of those samples.
import { clockText, discountText, element, money } from './common.js';

const ui = Object.fromEntries(
    ['host-key', 'problem', 'drops', 'live', 'live-title', 'live-state', 'live-countdown', 'live-closes',
     'live-left', 'live-held', 'live-sold', 'live-waitlist', 'live-rate', 'live-raised', 'live-variants',
     'sales-chart', 'start-seconds', 'drop-start', 'restock-add', 'restock-variant', 'restock-variant-label',
     'drop-restock', 'drop-close', 'drop-form', 'variant-rows', 'variant-row', 'variant-add']
        .map((id) => [id, element(id)]));

let selected = new URLSearchParams(location.search).get('drop');
let samples = [];  // {at, left, held, sold, decisions} of the selected drop, oldest first
const keep_ms = 5 * 60 * 1000;

ui['host-key'].value = sessionStorage.getItem('flashsale:host-key') ?? '';
ui['host-key'].addEventListener('change', () => {
  sessionStorage.setItem('flashsale:host-key', ui['host-key'].value);
  refresh();
});

async function api(method, path, body) {
  const reply = await fetch(`/api/${path}`, {
    method,
    headers: { Authorization: `Bearer ${ui['host-key'].value}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(answer.error?.message ?? `HTTP ${reply.status}`);
  return answer;
}

function showProblem(error) {
  ui.problem.hidden = !error;
  ui.problem.textContent = error ? String(error.message ?? error) : '';
}

async function act(method, path, body) {
  try {
    const answer = await api(method, path, body);
    showProblem(null);
    return answer;
  } catch (error) {
    showProblem(error);
    return null;
  }
}

async function refresh() {
  if (!ui['host-key'].value) return showProblem(new Error('Enter the host key to begin.'));
  const answer = await act('GET', 'drops');
  if (!answer) return;
  const rows = answer.drops.map((drop) => {
    const row = document.createElement('tr');
    row.dataset.drop = drop.id;
    row.classList.toggle('selected', drop.id === selected);
    for (const value of [drop.title || drop.id, drop.state.replace('_', ' '), drop.stock_left, drop.held,
                         drop.sold, drop.stock_total]) {
      const cell = document.createElement('td');
      cell.textContent = String(value);
      row.append(cell);
    }
    row.addEventListener('click', () => select(drop.id));
    return row;
  });
  ui.drops.tBodies[0].replaceChildren(...rows);
  const current = answer.drops.find((drop) => drop.id === selected);
  if (current) show(current);
}

function select(id) {
  selected = id;
  samples = [];
  history.replaceState(null, '', `/host?drop=${encodeURIComponent(id)}`);
  refresh();
}

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
  ui.live.hidden = false;
  const price = drop.variants?.length ? `from ${money(drop.price_cents)}`
                                      : priceText(drop.price_cents, drop.list_price_cents);
  ui['live-title'].textContent = `${drop.title} (${drop.id}) · ${price}`;
  ui['live-state'].textContent = drop.state.replace('_', ' ');
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

ui['drop-form'].addEventListener('submit', async (event) => {
  event.preventDefault();
  const created = await act('POST', 'drops', dropRequest(event.target));
  if (created) select(created.id);
});
ui['drop-start'].addEventListener('click', () =>
  act('POST', `drops/${selected}/countdown`, { seconds: Number(ui['start-seconds'].value) }).then(refresh));
ui['drop-restock'].addEventListener('click', () => {
  const request = { add: Number(ui['restock-add'].value) };
  if (!ui['restock-variant-label'].hidden) request.variant = ui['restock-variant'].value;
  act('POST', `drops/${selected}/restock`, request).then(refresh);
});
ui['drop-close'].addEventListener('click', () => {
  if (confirm('Close the sale? Buyers holding units keep them until they pay or their hold ends.'))
    act('POST', `drops/${selected}/close`).then(refresh);
});

refresh();
setInterval(refresh, 1000);
