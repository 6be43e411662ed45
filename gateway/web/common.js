// Shared by the viewer page and the host console: the server's clock, retry delays, money.

// The server's clock as seen from here. Each `time` round trip gives an estimate of the offset
// between the server's clock and ours; the one from the fastest round trip is kept (its error
// is at most half that round trip). Until one arrives, the timestamps the server puts on its
// messages are used, which are late by the one-way delay only.
export class ServerClock {
  #offset = 0;
  #bestRoundTrip = Infinity;
  #sampled = false;

  // A `time` answer to a request sent at `sentAt` (our clock), received now.
  fromRoundTrip(serverTimeMs, sentAt) {
    const receivedAt = Date.now();
    const roundTrip = receivedAt - sentAt;
    if (roundTrip > this.#bestRoundTrip) return;
    this.#bestRoundTrip = roundTrip;
    this.#offset = serverTimeMs - (sentAt + receivedAt) / 2;
    this.#sampled = true;
  }

  // A server timestamp on a pushed message: good enough until a round trip is measured.
  fromMessage(serverTimeMs) {
    if (this.#bestRoundTrip !== Infinity) return;
    this.#offset = serverTimeMs - Date.now();
    this.#sampled = true;
  }

  get synced() { return this.#sampled; }
  now() { return Date.now() + this.#offset; }
}

// Exponential backoff with full jitter: a crowd that lost its connection at the same instant
// does not come back at the same instant. attempt 0, 1, 2, … → up to base·2^attempt ms.
export function backoffMs(attempt, baseMs = 250, maxMs = 8000) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * ceiling / 2);
}

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
