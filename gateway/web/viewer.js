// The viewer page, three ways in: a live stream (/s/{stream}, or /?stream=) — its video, the
// drop the host pinned on screen, and the shelf of all its drops, switching to the next pinned
// drop as the host pins it; one drop (/?drop=); or, with neither, the list of drops on sale.
//
// The page is UI only: the protocol — signing in, reconnecting, following the stream and the
// drop, the server's clock, ordering with retries — is @flashsale/client (clients/js/flashsale.js,
// served as /web/flashsale.js). The drop and this viewer's orders are drop_view.js; the stream,
// its video and shelf, stream_view.js.
import { FlashsaleClient } from './flashsale.js';
import { element } from './common.js';
import { DropView } from './drop_view.js';
import { StreamView } from './stream_view.js';

const params = new URLSearchParams(location.search);
const ui = Object.fromEntries(['connection', 'sign-in', 'choose', 'drop-list'].map((id) => [id, element(id)]));

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
const streamPath = /^\/s\/([^/]+)$/.exec(location.pathname);
const streamId = streamPath ? decodeURIComponent(streamPath[1]) : params.get('stream');
const dropId = streamId ? null : params.get('drop');
let client = null;
let view = null;
let welcomed = false;

function connect() {
  client = new FlashsaleClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
    ...(token ? { token } : { user }),
  });
  view = new DropView(client, { onMissing: showDropList });
  client.on('connection', onConnection);
  client.on('welcome', onWelcome);
  if (streamId) {
    const stream = new StreamView();
    client.on('streamchange', ({ state }) => {
      stream.render(state);
      view.setOthers(state.drops.filter((drop) => drop.drop !== state.pinned));
      view.show(state.pinned);
    });
    client.subscribeStream(streamId).catch((error) => {
      if (error.code === 'unknown_stream') showDropList();
    });
  } else if (dropId) {
    view.show(dropId);
  }
  client.connect().catch(() => {});  // a refusal shows as the connection's state
}

function onConnection(event) {
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
  view.connected = event.state === 'live';
}

function setConnection(state, text) {
  ui.connection.dataset.state = state;
  ui.connection.textContent = text;
}

function onWelcome(welcome) {
  user = welcome.user;
  if (welcomed) return;
  welcomed = true;
  view.signedIn(user);
  if (!streamId && !dropId) showDropList();
}

// Drops on sale: those in a stream lead to the stream's page.
async function showDropList() {
  ui.choose.hidden = false;
  const reply = await fetch('/drops');
  const { drops } = await reply.json();
  ui['drop-list'].replaceChildren(...drops.map((item) => {
    const entry = document.createElement('li');
    const link = document.createElement('a');
    const query = new URLSearchParams(item.stream ? {} : { drop: item.id });
    if (!token) query.set('user', user);
    const rest = query.toString();
    link.href = `${item.stream ? `/s/${encodeURIComponent(item.stream)}` : '/'}${rest ? `?${rest}` : ''}`;
    link.textContent = `${item.title} — ${item.state.replace('_', ' ')}${item.stream ? ` (live on ${item.stream})` : ''}`;
    entry.append(link);
    return entry;
  }));
  if (drops.length === 0) ui['drop-list'].textContent = 'Nothing on sale right now.';
}

function render() {
  ui['sign-in'].hidden = Boolean(user || token);
  view?.render();
}

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
