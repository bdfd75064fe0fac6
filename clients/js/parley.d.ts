// Type declarations for parley.js (Parley protocol v1), written by hand.
// The JavaScript is web-client/parley.js, copied into the package when it is packed; keep this file
// in step with it (tests/package checks that every public method and option is declared here).

/** The connection states a `state` event reports. */
export type ParleyState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'closed';

/**
 * The part of a WebSocket parley.js uses. The browser's WebSocket, Node's (global from Node 22,
 * `--experimental-websocket` on Node 20) and the `ws` package's all fit.
 */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((ev: any) => any) | null;
  onclose: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
}

/** A WebSocket constructor: `new WS(url)`. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ParleyOptions {
  /** Sent with hello on every (re)connect; null stays a guest. Default null. */
  name?: string | null;
  /** ms a command may wait (queued and in flight) for its reply. Default 10000. */
  timeout?: number;
  /** Reconnect by itself after the socket drops. Default true. */
  reconnect?: boolean;
  /** First backoff delay in ms. Default 500. */
  minDelay?: number;
  /** Backoff ceiling in ms. Default 15000. */
  maxDelay?: number;
  /** ms of silence before the client pings; 0 never. Default 25000. */
  pingInterval?: number;
  /** WebSocket constructor. Default: globalThis.WebSocket (pass one in on Node 20, e.g. `ws`). */
  WebSocket?: WebSocketConstructor | null;
  /** Page size reloaded when a room's gap cannot be replayed. Default 50. */
  historyOnReset?: number;
  /** auth = token: returns a JWT; called on every (re)connect (sent with hello) and again
   *  refreshBefore ms ahead of the token's exp (sent with refresh). Default null. */
  getToken?: (() => Promise<string> | string) | null;
  /** ms before the token's exp to fetch a new one and send refresh. Default 30000. */
  refreshBefore?: number;
}

/** Server limits from the welcome frame. */
export interface ParleyLimits {
  max_message_size?: number;
  max_rooms?: number;
  max_name_length?: number;
  max_room_length?: number;
  send_queue_messages?: number;
  send_queue_bytes?: number;
  presence_window_ms?: number;
  history_page?: number;
  [key: string]: unknown;
}

export interface WelcomeFrame {
  type: 'welcome';
  session: string;
  user: string;
  server?: string;
  limits?: ParleyLimits;
  [key: string]: unknown;
}

/** A message in a room. Volatile messages (persist: false) have no seq. `data` is whatever JSON
 *  the publisher sent; narrow it with a type argument, e.g. Message<{ text: string }>. */
export interface Message<D = any> {
  type: 'message';
  room: string;
  seq?: number;
  ts: number;
  from: string;
  data: D;
  [key: string]: unknown;
}

export interface PresenceFrame {
  type: 'presence';
  room: string;
  joined?: string[];
  left?: string[];
}

export interface StateEvent {
  state: ParleyState;
  previous: ParleyState;
  /** While waiting to retry: ms until the next attempt. */
  delay?: number;
  /** While waiting to retry: Date.now() of the next attempt. */
  retryAt?: number;
  attempt?: number;
  /** The close code that caused the state change, when there was one. */
  code?: number;
}

export interface ReadyEvent {
  user: string | null;
  session: string | null;
  /** true after a reconnect (refresh presence lists then). */
  reconnect: boolean;
}

export interface ResetEvent {
  room: string;
  seq: number;
  messages: Message[];
  more: boolean;
  /** not_recovered: the server could not replay the gap; seq_lower: the room's seq went back. */
  reason: 'not_recovered' | 'seq_lower';
}

export interface RejoinEvent {
  room: string;
  seq: number;
  members: number;
  recovered: boolean;
}

export interface DisconnectEvent {
  code: number;
  reason: string;
  wasReady: boolean;
}

/** The listener type of every event `on()` accepts. */
export interface ParleyEvents {
  state: (ev: StateEvent) => void;
  welcome: (frame: WelcomeFrame) => void;
  ready: (ev: ReadyEvent) => void;
  message: (msg: Message, info: { replayed: boolean }) => void;
  presence: (frame: PresenceFrame) => void;
  reset: (ev: ResetEvent) => void;
  rejoin: (ev: RejoinEvent) => void;
  disconnect: (ev: DisconnectEvent) => void;
  /** A token from getToken() was accepted by refresh. */
  refresh: (ev: { exp: number | null }) => void;
  error: (err: ParleyError) => void;
}

export interface CommandOptions {
  /** ms this command may wait for its reply (default: the client's timeout). */
  timeout?: number;
}

export interface JoinOptions extends CommandOptions {
  /** Receive presence frames for the room. */
  presence?: boolean;
  /** Replay stored messages with seq > since before the reply. */
  since?: number;
}

export interface JoinReply {
  room: string;
  seq: number;
  members: number;
  /** Present when since was given: false if the gap could not be replayed. */
  recovered?: boolean;
}

export interface PublishOptions extends CommandOptions {
  /** false: volatile (no seq, not stored, never replayed). */
  persist?: boolean;
  /** false: not delivered back to this connection. */
  echo?: boolean;
  /** Reply only once the message is committed to disk. */
  durable?: boolean;
  /** Idempotency key (persisted publishes; default: a random one). A publish whose reply was lost
   *  is resent with it after a reconnect; the server stores it at most once. To retry a publish
   *  that rejected with `timeout`, pass that error's `key`. */
  key?: string;
}

export interface PublishReply {
  /** Absent for persist: false. */
  seq?: number;
  durable?: boolean;
}

export interface HistoryOptions extends CommandOptions {
  /** Messages with seq < before; default: the newest. */
  before?: number;
  limit?: number;
}

export interface HistoryReply {
  /** Oldest first. */
  messages: Message[];
  /** true when older messages exist. */
  more: boolean;
}

export interface PresenceReply {
  members: { user: string; conns: number }[];
}

/** A failed command: `.code` is the server's error code or a local one (timeout, disconnected, closed). */
export class ParleyError extends Error {
  constructor(code: string, message?: string, command?: object);
  code: string;
  /** The command that failed, when there was one. */
  command?: object;
  /** The room, for errors of background work that concern one (re-join, reload). */
  room?: string;
  /** For a persisted publish whose outcome is unknown (timeout, disconnected): its idempotency key,
   *  to retry it without a duplicate. */
  key?: string;
}

/** The default options. */
export const DEFAULTS: Readonly<Required<ParleyOptions>>;

export class Parley {
  /** url: the ws:// or wss:// URL of the /ws endpoint. */
  constructor(url: string, opts?: ParleyOptions);

  readonly url: string;
  readonly opts: Required<ParleyOptions>;
  /** The name sent with hello on (re)connect. */
  name: string | null;
  readonly state: ParleyState;
  /** The name the server knows us by. */
  readonly user: string | null;
  readonly session: string | null;
  readonly limits: ParleyLimits | null;

  /** Subscribes to an event; returns a function that unsubscribes. */
  on<K extends keyof ParleyEvents>(type: K, fn: ParleyEvents[K]): () => void;
  off<K extends keyof ParleyEvents>(type: K, fn: ParleyEvents[K]): void;
  once<K extends keyof ParleyEvents>(type: K, fn: ParleyEvents[K]): () => void;

  /** Opens the connection; resolves once welcome, hello and re-joins are done. */
  connect(): Promise<{ user: string | null; session: string | null }>;
  /** Closes for good: no reconnect; pending and queued commands reject with `closed`. */
  close(): void;
  /** Skips the current backoff wait. */
  reconnectNow(): void;

  hello(name: string): Promise<{ user: string }>;
  join(room: string, opts?: JoinOptions): Promise<JoinReply>;
  leave(room: string, opts?: CommandOptions): Promise<{ room: string }>;
  publish(room: string, data?: unknown, opts?: PublishOptions): Promise<PublishReply>;
  history(room: string, opts?: HistoryOptions): Promise<HistoryReply>;
  presence(room: string, opts?: CommandOptions): Promise<PresenceReply>;
  ping(opts?: CommandOptions): Promise<{ ts: number }>;
  /** The last seq seen in a room, or null. */
  lastSeq(room: string): number | null;
}

/** The exp claim (seconds since the epoch) of a JWT, or null; not verified. */
export declare function tokenExp(token: string): number | null;

export default Parley;
