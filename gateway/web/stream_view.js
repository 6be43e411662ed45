// A live stream on the viewer page (/s/{stream}): its title and state, its video, and the shelf —
// every drop of the stream with its state, price and units left, as the stream's `stream`
// messages tell them. The drop the host pinned is shown large by the drop view (drop_view.js).
import { element, money } from './common.js';

// Addresses a <video> plays itself; any other is a player page, shown in a sandboxed frame.
const videoFile = /\.(mp4|webm|ogv|ogg|m3u8)$/i;

const streamStates = { scheduled: 'Starts soon', live: 'Live', ended: 'Ended' };
const dropStates = {
  scheduled: 'coming up', countdown: 'counting down', open: 'on sale', sold_out: 'sold out', closed: 'closed',
};

// The URL if it is an absolute http(s) one without credentials (as the server only takes),
// else null: whatever comes, the page shows nothing else.
function playable(text) {
  try {
    const url = new URL(text);
    return ['http:', 'https:'].includes(url.protocol) && !url.username && !url.password ? url : null;
  } catch {
    return null;
  }
}

function priceText(drop) {
  const prices = (drop.variants ?? []).map((variant) => variant.price_cents);
  return prices.some((price) => price !== drop.price_cents) ? `from ${money(drop.price_cents)}` : money(drop.price_cents);
}

export class StreamView {
  #ui = Object.fromEntries(
      ['stream', 'stream-title', 'stream-state', 'video', 'stream-note', 'shelf', 'shelf-list']
          .map((id) => [id, element(id)]));
  #videoUrl = null;

  render(stream) {
    const ui = this.#ui;
    ui.stream.hidden = false;
    document.title = `${stream.title} — Flashsale`;
    ui['stream-title'].textContent = stream.title;
    ui['stream-state'].textContent = streamStates[stream.state] ?? stream.state;
    ui['stream-state'].dataset.state = stream.state;
    this.#renderVideo(stream.state === 'ended' ? '' : stream.video_url);
    const note = stream.state === 'ended'
        ? 'This stream has ended — thank you for watching. Anything you reserved can still be paid below until its hold runs out.'
        : stream.pinned ? ''
        : stream.state === 'live' ? 'Nothing on sale on screen right now — the next drop appears here.'
        : 'The stream has not started yet.';
    ui['stream-note'].hidden = !note;
    ui['stream-note'].textContent = note;
    this.#renderShelf(stream);
  }

  #renderVideo(url) {
    if (url === this.#videoUrl) return;
    this.#videoUrl = url;
    const ui = this.#ui;
    const safe = url ? playable(url) : null;
    ui.video.hidden = !safe;
    if (!safe) {
      ui.video.replaceChildren();
      return;
    }
    let player;
    if (videoFile.test(safe.pathname)) {
      player = document.createElement('video');
      Object.assign(player, { controls: true, autoplay: true, muted: true, playsInline: true });
    } else {
      player = document.createElement('iframe');
      // The player runs its own scripts, in its own origin, and may not navigate this page,
      // open windows or send forms. With this page's origin it would also reach the page's
      // storage (and could lift its own sandbox): then it gets an opaque origin instead.
      const sameOrigin = safe.origin === location.origin ? '' : ' allow-same-origin';
      player.setAttribute('sandbox', `allow-scripts allow-presentation${sameOrigin}`);
      player.setAttribute('allow', 'autoplay; encrypted-media; fullscreen; picture-in-picture');
      player.title = 'The live video';
    }
    player.src = safe.href;
    player.dataset.testid = 'player';
    ui.video.replaceChildren(player);
  }

  // Rebuilt at each `stream` message: it has no buttons, and changes only with those.
  #renderShelf(stream) {
    const ui = this.#ui;
    ui.shelf.hidden = stream.drops.length === 0;
    ui['shelf-list'].replaceChildren(...stream.drops.map((drop) => {
      const item = document.createElement('li');
      item.dataset.testid = 'shelf-item';
      item.dataset.drop = drop.drop;
      item.dataset.state = drop.state;
      const soldOut = drop.state === 'sold_out' || drop.stock_left === 0;
      const parts = {
        name: drop.title,
        price: priceText(drop),
        state: drop.drop === stream.pinned ? `on screen · ${dropStates[drop.state]}` : dropStates[drop.state] ?? drop.state,
        left: soldOut ? 'sold out' : `${drop.stock_left} left`,
      };
      for (const [part, text] of Object.entries(parts)) {
        const span = document.createElement('span');
        span.className = part;
        span.textContent = text;
        item.append(span);
      }
      if (drop.drop === stream.pinned) item.setAttribute('aria-current', 'true');
      return item;
    }));
  }
}
