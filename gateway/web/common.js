// Shared by the viewer page and the host console: money, time left as text, page elements.
// (The server's clock and retry delays are the client's: clients/js/flashsale.js.)

export function money(cents) {
  return `¥${(cents / 100).toFixed(2)}`;
}

// "1:05", "0:09" — whole seconds left, rounded up so that 0:00 means it is time.
export function clockText(msLeft) {
  const seconds = Math.max(0, Math.ceil(msLeft / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

export function element(id) {
  return document.querySelector(`[data-testid="${id}"]`) ?? document.getElementById(id);
}
