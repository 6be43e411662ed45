// Shared by the viewer page and the host console: money, time left as text, page elements.
// (The server's clock and retry delays are the client's: clients/js/flashsale.js.)

export function money(cents) {
  return `¥${(cents / 100).toFixed(2)}`;
}

// "1:05", "0:09", "26:00:00" — whole seconds left, rounded up so that 0:00 means it is time;
// hours once there is an hour or more (a countdown or a sale may last a week).
export function clockText(msLeft) {
  const seconds = Math.max(0, Math.ceil(msLeft / 1000));
  const [hours, minutes] = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60];
  const tail = String(seconds % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${tail}` : `${minutes}:${tail}`;
}

// "20% off" when a list price is above the deal price, else ''.
export function discountText(priceCents, listPriceCents) {
  if (!(listPriceCents > priceCents)) return '';
  return `${Math.max(1, Math.round((100 * (listPriceCents - priceCents)) / listPriceCents))}% off`;
}

export function element(id) {
  return document.querySelector(`[data-testid="${id}"]`) ?? document.getElementById(id);
}
