// Types of @flashsale/client (flashsale.js): the client, its options and events, and every
// message of the Flashsale WebSocket protocol v1 (docs/protocol.md). The server may add fields
// to any message; they are kept, so every message type is open to more.

// ---- messages from the server ------------------------------------------------------------------

/** A drop's state. */
export type DropPhase = 'scheduled' | 'countdown' | 'open' | 'sold_out' | 'closed';

/** Final answers to an order: `reserved` … `closed` are recorded (asking again returns them). */
export type RecordedOrderStatus = 'reserved' | 'waitlisted' | 'sold_out' | 'limit_exceeded' | 'closed';
/** Answers that mean "ask again later, with the same client_order_id". */
export type RetryableOrderStatus = 'busy' | 'unavailable' | 'rate_limited';
/** Every `order_result` status. */
export type OrderStatus = RecordedOrderStatus | RetryableOrderStatus | 'not_open' | 'invalid' | 'unknown_variant';
/** Every `order_update` status (`waitlisted`: the answer to a confirm that changed nothing). */
export type OrderUpdateStatus = 'reserved' | 'confirmed' | 'cancelled' | 'expired' | 'waitlisted';

/** Error codes of `error` messages, and the client's own (FlashsaleError.code). */
export type ServerErrorCode =
  | 'bad_json' | 'unknown_type' | 'bad_field' | 'too_large' | 'rate_limited' | 'unauthenticated'
  | 'unknown_drop' | 'unknown_stream' | 'unknown_order' | 'unavailable';
export type ClientErrorCode =
  | 'closed' | 'retries_exhausted' | 'unsubscribed' | 'timeout' | 'aborted' | 'bad_url';

export interface WelcomeMessage {
  type: 'welcome';
  user: string;
  server_time_ms: number;
  [field: string]: unknown;
}

export interface TimeMessage {
  type: 'time';
  server_time_ms: number;
  [field: string]: unknown;
}

/** One of a drop's named variants (a size, a colour); its stock_left is kept current by `stock`. */
export interface Variant {
  id: string;
  label?: string;
  price_cents: number;
  list_price_cents?: number;
  stock_total: number;
  stock_left: number;
  [field: string]: unknown;
}

/** A drop as the client keeps it: the last `drop` message, kept current by tick, state, stock. */
export interface DropState {
  drop: string;
  title: string;
  price_cents: number;
  stock_total: number;
  stock_left: number;
  per_user_limit: number;
  /** 0: no waitlist. */
  waitlist_limit: number;
  /** 0: no admission window. */
  admission_window_ms: number;
  /** null until a countdown starts. */
  opens_at_ms: number | null;
  state: DropPhase;
  server_time_ms: number;
  /** A charity drop's (docs/audit.md). */
  beneficiary?: string;
  beneficiary_note?: string;
  pledge_bps?: number;
  raised_cents?: number;
  supporters?: number;
  /** A drop with named variants; price_cents is then the lowest of their prices. */
  variants?: Variant[];
  /** The price struck through, on a drop without named variants. */
  list_price_cents?: number;
  per_variant_limit?: number;
  /** A drop that ends by itself: this long after it opens; closes_at_ms null until a countdown. */
  duration_ms?: number;
  closes_at_ms?: number | null;
  [field: string]: unknown;
}

/** A drop's full state: on subscribe, when a countdown starts or moves, on restock. */
export interface DropMessage extends DropState {
  type: 'drop';
}

/** A live stream's state. */
export type StreamPhase = 'scheduled' | 'live' | 'ended';

/**
 * A live stream as the client keeps it: the last `stream` message. Sent at subscribe and again
 * whenever the stream changes (a drop created in it, pin or unpin, its state, any of its drops'
 * state, a restock), and at most once a second while its drops' stock moves.
 */
export interface StreamState {
  stream: string;
  title: string;
  /** An absolute http(s) URL to show the stream from, or ''. */
  video_url: string;
  state: StreamPhase;
  /** The id of the drop on screen, or null. */
  pinned: string | null;
  /** Every drop of the stream (the shelf), each as a `drop` message tells it. */
  drops: DropState[];
  server_time_ms: number;
  [field: string]: unknown;
}

export interface StreamMessage extends StreamState {
  type: 'stream';
}

export interface TickMessage {
  type: 'tick';
  drop: string;
  ms_left: number;
  server_time_ms: number;
  [field: string]: unknown;
}

export interface StateMessage {
  type: 'state';
  drop: string;
  state: DropPhase;
  server_time_ms: number;
  [field: string]: unknown;
}

export interface StockMessage {
  type: 'stock';
  drop: string;
  left: number;
  raised_cents?: number;
  supporters?: number;
  /** A drop with named variants: every variant's units left. */
  variants?: { id: string; left: number }[];
  [field: string]: unknown;
}

export interface OrderResultMessage {
  type: 'order_result';
  client_order_id: string;
  drop: string;
  status: OrderStatus;
  /** With `reserved` and `waitlisted`. */
  order_id?: string;
  /** With `reserved`. */
  qty?: number;
  hold_expires_at_ms?: number;
  /** With `waitlisted`: 1 is next. */
  position?: number;
  /** Text for people, where the server has one. */
  reason?: string;
  /** false on a `sold_out` answered at the edge: a retry is a fresh attempt. */
  recorded?: boolean;
  /** The variant's id, on a drop with named variants. */
  variant?: string;
  [field: string]: unknown;
}

export interface OrderUpdateMessage {
  type: 'order_update';
  order_id: string;
  client_order_id: string;
  drop: string;
  status: OrderUpdateStatus;
  /** With `reserved` (a waitlisted order got its units). */
  qty?: number;
  hold_expires_at_ms?: number;
  /** The variant's id, on a drop with named variants. */
  variant?: string;
  [field: string]: unknown;
}

export interface ErrorMessage {
  type: 'error';
  code: ServerErrorCode | (string & {});
  message: string;
  /** The offending message's type, client_order_id, order_id, or a subscribe's drop or stream id. */
  ref?: string;
  [field: string]: unknown;
}

export type ServerMessage =
  | WelcomeMessage | TimeMessage | DropMessage | TickMessage | StateMessage | StockMessage
  | StreamMessage | OrderResultMessage | OrderUpdateMessage | ErrorMessage;

// ---- messages to the server (what the client sends) ---------------------------------------------

export type ClientMessage =
  | { type: 'hello'; token: string }
  | { type: 'hello'; user: string }
  | { type: 'subscribe'; drop: string }
  | { type: 'unsubscribe'; drop: string }
  | { type: 'subscribe'; stream: string }
  | { type: 'unsubscribe'; stream: string }
  | { type: 'order'; drop: string; qty: number; client_order_id: string }
  | { type: 'confirm'; order_id: string }
  | { type: 'cancel'; order_id: string }
  | { type: 'time' };

// ---- the client's own events --------------------------------------------------------------------

/**
 * idle: before connect(); connecting: a socket is opening and signing in; live: welcomed;
 * waiting: lost, reconnecting after `delayMs`; closed: close() was called, or the server closed
 * with a code after which retrying cannot help (1008).
 */
export type ConnectionState = 'idle' | 'connecting' | 'live' | 'waiting' | 'closed';

export interface ConnectionEvent {
  state: ConnectionState;
  previous: ConnectionState;
  /** connecting, waiting: connection attempts since the last welcome (0: the first). */
  attempt?: number;
  /** waiting: how long until the next attempt. */
  delayMs?: number;
  /** waiting, closed: the close code and reason that ended the last connection. */
  code?: number;
  reason?: string;
  /** live: the user the server signed in. */
  user?: string;
  /** closed: the server's `error` before it closed (say, `unauthenticated`), if any. */
  error?: ErrorMessage | null;
}

/** A socket closed (by the server, the network, or a watchdog that heard nothing). */
export interface CloseEvent {
  code: number;
  reason: string;
  /** The last `error` message on that connection, if any. */
  error: ErrorMessage | null;
}

/** A followed drop changed: its state after the message that changed it. */
export interface DropChangeEvent {
  drop: string;
  state: DropState;
  cause: 'drop' | 'tick' | 'state' | 'stock';
}

/** A followed stream changed (or came in full at subscribe): its state now, and before. */
export interface StreamChangeEvent {
  stream: string;
  state: StreamState;
  /** null for the first one. */
  previous: StreamState | null;
}

/** What the client knows of an order (see FlashsaleClient.orderState). */
export interface OrderState {
  client_order_id: string;
  drop: string;
  /**
   * pending: asked, unanswered; retrying: answered busy, unavailable or rate_limited and to be
   * asked again; then the order_result status, then order_update ones.
   */
  status: 'pending' | 'retrying' | OrderStatus | OrderUpdateStatus;
  qty?: number;
  /** The variant's id, on a drop with named variants. */
  variant?: string;
  order_id?: string;
  hold_expires_at_ms?: number;
  position?: number;
  reason?: string;
  /** Answers busy, unavailable or rate_limited so far. */
  attempts?: number;
  recorded?: boolean;
}

/** An order answered busy, unavailable or rate_limited, asked again after `delay_ms`. */
export interface OrderRetryEvent {
  client_order_id: string;
  drop: string;
  /** 1 after the first such answer. */
  attempt: number;
  delay_ms: number;
  result: OrderResultMessage;
}

/** Every event: the server's messages under their own type, and the client's own. */
export interface FlashsaleEvents {
  welcome: WelcomeMessage;
  time: TimeMessage;
  drop: DropMessage;
  tick: TickMessage;
  state: StateMessage;
  stock: StockMessage;
  stream: StreamMessage;
  order_result: OrderResultMessage;
  order_update: OrderUpdateMessage;
  error: ErrorMessage;
  /** Every message from the server, those of types this client does not know included. */
  message: ServerMessage | { type: string; [field: string]: unknown };
  connection: ConnectionEvent;
  close: CloseEvent;
  dropchange: DropChangeEvent;
  streamchange: StreamChangeEvent;
  orderchange: OrderState;
  order_retry: OrderRetryEvent;
}

// ---- options --------------------------------------------------------------------------------------

/** Exponential backoff with full jitter: a delay drawn from 0 to min(maxMs, baseMs·2^n). */
export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
}

/** Reconnecting. Defaults: baseMs 500, maxMs 10000, busyMs 5000. */
export interface ReconnectOptions extends BackoffOptions {
  /** After close code 1013 (too slow, or too busy for a hello): at least this long, plus up to as much again. */
  busyMs?: number;
}

export interface RetryOptions extends BackoffOptions {
  /**
   * Sends of one order, confirm, cancel or subscribe in all before it gives up on busy,
   * unavailable or rate_limited answers (Infinity: never). Defaults: attempts 8, baseMs 250,
   * maxMs 8000. Re-sends after a reconnect do not count.
   */
  attempts?: number;
}

/** A WebSocket constructor: the browser's, Node's, or one with the same interface. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

interface CommonOptions {
  /** The server's WebSocket: `ws://host:port/ws` or `wss://…/ws`. */
  url: string | URL;
  /** Default: globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  reconnect?: ReconnectOptions;
  retry?: RetryOptions;
  /** How often the server's clock is measured again (a `time` round trip). Default 30000. */
  timeSyncIntervalMs?: number;
  /** A `time` request unanswered this long means a dead connection: a new one is made. Default 10000. */
  responseTimeoutMs?: number;
  /** The local clock (Unix ms). Default Date.now. */
  now?: () => number;
}

export type FlashsaleClientOptions = CommonOptions & (
  /** A viewer token (docs/protocol.md "Viewer tokens"); a function is asked at every sign-in. */
  | { token: string | (() => string | Promise<string>); user?: never }
  /** A name: only with a server in `auth.mode = "dev"`. */
  | { user: string | (() => string | Promise<string>); token?: never }
);

export interface OrderOptions {
  /** Default: a new random UUID. Give the same one to ask about the same order again. */
  clientOrderId?: string;
  /** This order's retry.attempts. */
  attempts?: number;
  /** The id of one of the drop's named variants (1-32 of [A-Za-z0-9_.-]). */
  variant?: string;
}

export interface WaitOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

// ---- the client -----------------------------------------------------------------------------------

export type Listener<T> = (event: T) => void;

export declare class FlashsaleClient {
  constructor(options: FlashsaleClientOptions);

  on<K extends keyof FlashsaleEvents>(type: K, listener: Listener<FlashsaleEvents[K]>): () => void;
  once<K extends keyof FlashsaleEvents>(type: K, listener: Listener<FlashsaleEvents[K]>): () => void;
  off<K extends keyof FlashsaleEvents>(type: K, listener: Listener<FlashsaleEvents[K]>): void;
  /** The next event of `type` for which `predicate` is true. */
  waitFor<K extends keyof FlashsaleEvents>(
    type: K, predicate?: (event: FlashsaleEvents[K]) => boolean, options?: WaitOptions,
  ): Promise<FlashsaleEvents[K]>;

  readonly state: ConnectionState;
  /** Signed in: messages go out now. */
  readonly live: boolean;
  /** The user the server signed in, once welcomed. */
  readonly user: string | null;

  /** Connects and signs in; resolves with the next welcome, rejects if the client closes first. */
  connect(): Promise<WelcomeMessage>;
  /** Closes for good; what still waits rejects with FlashsaleError `closed`. */
  close(code?: number, reason?: string): void;

  /** Follows a drop (across reconnects); resolves with its full state. */
  subscribe(drop: string): Promise<DropState>;
  unsubscribe(drop: string): void;
  /** A followed drop's current state (a copy). */
  drop(drop: string): DropState | undefined;
  readonly drops: string[];

  /**
   * Follows a live stream (across reconnects); resolves with its state, then `streamchange`
   * events. Rejects with `unknown_stream` for a stream that does not exist.
   */
  subscribeStream(stream: string): Promise<StreamState>;
  unsubscribeStream(stream: string): void;
  /** A followed stream's current state (a copy). */
  stream(stream: string): StreamState | undefined;
  readonly streams: string[];

  /** The server's time now (Unix ms). */
  now(): number;
  readonly clock: { offsetMs: number; roundTripMs: number | null; synced: boolean };
  /** Until the drop opens, on the server's clock: 0 once it has, null without a countdown. */
  msUntilOpen(drop: string): number | null;

  /**
   * Orders; resolves with the final order_result (rejects with `retries_exhausted` after too
   * many busy, unavailable or rate_limited answers, with `closed` if the client closes first).
   */
  order(drop: string, qty?: number, options?: OrderOptions): Promise<OrderResultMessage>;
  /** Pays for a reserved order: resolves with the order_update that answers it. */
  confirm(orderId: string): Promise<OrderUpdateMessage>;
  /** Cancels a reserved or waitlisted order: resolves with the order_update that answers it. */
  cancel(orderId: string): Promise<OrderUpdateMessage>;
  /** What this client knows of an order. */
  orderState(clientOrderId: string): OrderState | undefined;
  /** The next order_update of an order (say, a waitlisted one getting units). */
  nextUpdate(orderId: string, options?: WaitOptions): Promise<OrderUpdateMessage>;
}

export default FlashsaleClient;

export declare class FlashsaleError extends Error {
  constructor(code: string, message: string, details?: Record<string, unknown>);
  readonly name: 'FlashsaleError';
  readonly code: ServerErrorCode | ClientErrorCode | (string & {});
  /** The close code, when a close ended it. */
  readonly closeCode?: number;
  /** The order's, for an order that failed. */
  readonly clientOrderId?: string;
  /** The order's, for a confirm or cancel that failed. */
  readonly orderId?: string;
  readonly drop?: string;
  /** A stream subscription that failed. */
  readonly stream?: string;
  /** retries_exhausted: the last answer. */
  readonly result?: OrderResultMessage;
  /** The server's error message, when one caused it. */
  readonly error?: ErrorMessage;
}

/** The server's clock estimated from `time` round trips (the fastest one wins). */
export declare class ServerClock {
  constructor(now?: () => number);
  fromRoundTrip(serverTimeMs: number, sentAt: number): void;
  fromMessage(serverTimeMs: number): void;
  restart(): void;
  local(): number;
  now(): number;
  readonly synced: boolean;
  readonly offsetMs: number;
  readonly roundTripMs: number | null;
}

/** Full-jitter exponential backoff: from 0 to min(maxMs, baseMs·2^attempt). */
export declare function backoffDelay(attempt: number, options?: BackoffOptions, random?: () => number): number;
/** A new client_order_id. */
export declare function newClientOrderId(): string;

export declare const PROTOCOL_VERSION: 1;
export declare const RETRYABLE_ORDER_STATUSES: readonly RetryableOrderStatus[];
export declare const RECORDED_ORDER_STATUSES: readonly RecordedOrderStatus[];
export declare const TERMINAL_CLOSE_CODES: readonly number[];
