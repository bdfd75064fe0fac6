// parley.js — client library for the Parley protocol v1 (ES module, no dependencies).
//
// One Parley object owns one logical session that survives dropped connections:
//
//   connect ──► welcome ──► hello(name) ──► re-join every room (since = last seq seen)
//      ▲                                                   │
//      │  backoff with jitter                              ▼
//   reconnecting ◄───────── socket closed ◄────────── connected (commands flow)
//
// Why the re-join carries `since`: the server then replays, before the join reply, every stored
// message with seq > since, so the application sees each message exactly once and in order
// across a reconnect. Live messages with seq <= the last seen one are dropped as a guard.
// When the server cannot fill the gap (`recovered:false`) the room's latest history page is
// loaded and a `reset` event tells the UI to re-render that room from scratch.
//
// Commands issued while the connection is down wait (up to their timeout) and are sent once
// the session is back; commands in flight when the socket drops are rejected with code
// `disconnected`, because whether the server acted on them is unknown. Persisted publishes are
// the exception: each carries a random idempotency `key`, so one that had no reply is sent
// again, with the same key, after the rooms are re-joined; the server stores and delivers it at
// most once and answers with the first one's seq.
//
// A room is reset (history reloaded, `reset` event) when its re-join is not recovered or its
// seq went below the last one seen (the server lost messages it had delivered, or its store
// was replaced): new messages are then shown from the new position instead of being dropped
// as already seen.

const STATES = ['idle', 'connecting', 'connected', 'reconnecting', 'offline', 'closed'];

/** Error raised for a failed command: `.code` is the server's error code (or a local one:
 *  `timeout`, `disconnected`, `closed`), `.message` its human text. */
export class ParleyError extends Error {
  constructor(code, message, command) {
    super(message || code);
    this.name = 'ParleyError';
    this.code = code;
    this.command = command;
  }
}

/** The exp claim (seconds since the epoch) of a JWT, or null. Not verified: only used to
 *  schedule the refresh (the server verifies). */
export function tokenExp(token) {
  try {
    const p = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(p + '='.repeat((4 - (p.length % 4)) % 4))).exp;
    return typeof exp === 'number' ? exp : null;
  } catch (_) {
    return null;
  }
}

/** Default options; every one can be overridden in `new Parley(url, opts)`. */
export const DEFAULTS = {
  name: null,              // sent with hello on every (re)connect; null stays a guest
  timeout: 10000,          // ms a command may wait (queued + in flight) for its reply
  reconnect: true,         // reconnect by itself after the socket drops
  minDelay: 500,           // first backoff delay, ms
  maxDelay: 15000,         // backoff ceiling, ms
  pingInterval: 25000,     // ms of silence before the client pings (0: never)
  WebSocket: null,         // WebSocket constructor (default: globalThis.WebSocket)
  historyOnReset: 50,      // page size reloaded when a room is not recovered
  getToken: null,          // async () => JWT: authenticate with it (auth = token) and refresh it
  refreshBefore: 30000,    // ms before the token's exp to fetch a new one and send refresh
};

// 128 random bits as 32 hex digits: unique enough that two publishes never share a key.
function randomKey() {
  const b = new Uint8Array(16);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export class Parley {
  /** url: ws:// or wss:// URL of the /ws endpoint. */
  constructor(url, opts = {}) {
    this.url = url;
    this.opts = { ...DEFAULTS, ...opts };
    this.name = this.opts.name;
    this.state = 'idle';
    this.user = null;          // name the server knows us by (from welcome / hello reply)
    this.session = null;
    this.limits = null;
    this.rooms = new Map();    // room -> { presence, lastSeq, resetting, buffer }
    this._ws = null;
    this._nextId = 1;
    this._pending = new Map(); // id -> { resolve, reject, timer, cmd }
    this._queue = [];          // commands waiting for the session to be ready
    this._resend = [];         // keyed publishes cut off by a disconnect, sent after re-joins
    this._listeners = new Map();
    this._attempt = 0;
    this._retryTimer = null;
    this._pingTimer = null;
    this._openTimer = null;
    this._refreshTimer = null;
    this._ready = false;
    this._everReady = false;
    this._connectWaiters = [];
    this._closedByUser = false;
    this._onOnline = () => { if (this.state === 'offline' && !this._closedByUser) this.reconnectNow(); };
    this._onOffline = () => { if (!this._closedByUser && this.state !== 'connected') this._setState('offline'); };
    if (typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this._onOnline);
      globalThis.addEventListener('offline', this._onOffline);
    }
  }

  // ---------------------------------------------------------------- events

  /** Subscribe to an event; returns a function that unsubscribes. Events: state, welcome,
   *  ready, message, presence, reset, rejoin, refresh (token refreshed), error. */
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    const set = this._listeners.get(type);
    if (set) set.delete(fn);
  }

  once(type, fn) {
    const off = this.on(type, (...args) => { off(); fn(...args); });
    return off;
  }

  _emit(type, ...args) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      // A throwing listener must not break the protocol state machine.
      try { fn(...args); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }

  _setState(state, info = {}) {
    if (!STATES.includes(state)) throw new Error('bad state ' + state);
    const previous = this.state;
    if (previous === state && !info.delay) return;
    this.state = state;
    this._emit('state', { state, previous, ...info });
  }

  // ------------------------------------------------------------ connection

  /** Opens the connection. Resolves once the session is ready (welcome, hello, rooms
   *  re-joined); keeps retrying in the background until then (if reconnect is on). */
  connect() {
    this._closedByUser = false;
    const p = new Promise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
    if (this._ready) {
      this._settleConnect(null);
    } else if (!this._ws && !this._retryTimer) {
      this._open();
    }
    return p;
  }

  /** Closes for good (no reconnect). Pending and queued commands are rejected. */
  close() {
    this._closedByUser = true;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._dropSocket(1000, 'client closed');
    this._failAll('closed', 'connection closed by the client');
    this._settleConnect(new ParleyError('closed', 'connection closed by the client'));
    this._setState('closed');
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this._onOnline);
      globalThis.removeEventListener('offline', this._onOffline);
    }
  }

  /** Skips the current backoff wait and tries to connect now. */
  reconnectNow() {
    if (this._closedByUser || this._ready) return;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (!this._ws) this._open();
  }

  _open() {
    const WS = this.opts.WebSocket || globalThis.WebSocket;
    if (!WS) throw new Error('no WebSocket implementation available');
    this._setState(this._everReady ? 'reconnecting' : 'connecting', { attempt: this._attempt });
    let ws;
    try {
      ws = new WS(this.url);
    } catch (e) {
      this._scheduleRetry(e);
      return;
    }
    this._ws = ws;
    // A connect that hangs (packets dropped, no RST) would otherwise wait on the browser's own
    // timeout, which can be minutes.
    clearTimeout(this._openTimer);
    this._openTimer = setTimeout(() => {
      if (this._ws === ws && !this.session) this._onClose(4000, 'connect timeout');
    }, this.opts.timeout);
    this.session = null;
    ws.onmessage = (ev) => this._onFrame(ev.data);
    ws.onclose = (ev) => { if (this._ws === ws) this._onClose(ev.code, ev.reason); };
    ws.onerror = () => { /* onclose follows and carries the code */ };
  }

  // Detaches the current socket so its late events are ignored, then closes it.
  _dropSocket(code, reason) {
    const ws = this._ws;
    this._ws = null;
    this._ready = false;
    clearTimeout(this._pingTimer);
    clearTimeout(this._openTimer);
    clearTimeout(this._refreshTimer);
    if (!ws) return;
    ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(code, reason); } catch (_) { /* already closing */ }
  }

  _onClose(code, reason) {
    const wasReady = this._ready;
    this._dropSocket();
    this._failInFlight('disconnected', `connection lost (${code}${reason ? ' ' + reason : ''})`,
      this.opts.reconnect && !this._closedByUser);
    this._emit('disconnect', { code, reason, wasReady });
    if (this._closedByUser) return;
    // 4003: banned. Reconnecting would only be refused again until the ban ends.
    if (!this.opts.reconnect || code === 4003) {
      this._failAll('disconnected', 'connection lost');
      this._settleConnect(new ParleyError('disconnected', 'connection lost'));
      this._setState('closed', { code });
      return;
    }
    this._scheduleRetry(null, code);
  }

  _scheduleRetry(err, code) {
    if (this._closedByUser) return;
    // Equal jitter: half the exponential delay is fixed, half random, so many clients dropped
    // by one server restart do not come back in lockstep.
    const base = Math.min(this.opts.maxDelay, this.opts.minDelay * 2 ** Math.min(this._attempt, 16));
    const delay = Math.round(base / 2 + Math.random() * base / 2);
    this._attempt++;
    const offline = typeof navigator !== 'undefined' && navigator.onLine === false;
    this._setState(offline ? 'offline' : (this._everReady ? 'reconnecting' : 'connecting'),
      { delay, retryAt: Date.now() + delay, attempt: this._attempt, code });
    this._retryTimer = setTimeout(() => { this._retryTimer = null; this._open(); }, delay);
  }

  _settleConnect(err) {
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) err ? w.reject(err) : w.resolve({ user: this.user, session: this.session });
  }

  // Session setup after welcome: hello, then every room again. Runs on first connect too.
  async _setup(ws) {
    const isReconnect = this._everReady;
    try {
      if (this.opts.getToken) {
        // auth = token: the token names the user (this.name is not sent).
        const token = await this.opts.getToken();
        if (this._ws !== ws) return;
        const r = await this._send({ type: 'hello', token }, ws);
        this.user = r.user;
        this._armRefresh(ws, token);
      } else if (this.name != null && this.name !== this.user) {
        const r = await this._send({ type: 'hello', name: this.name }, ws);
        this.user = r.user;
      }
    } catch (e) {
      if (this._ws !== ws) return;
      // A bad name is the application's problem, not a reason to stay offline.
      this._emit('error', e);
    }
    const rejoins = [];
    // Only rooms whose join succeeded before; joins still queued are sent after setup.
    for (const [room, st] of this.rooms) if (st.joined) rejoins.push(this._rejoin(ws, room, st));
    await Promise.all(rejoins);
    if (this._ws !== ws) return;
    // Publishes that had no reply go again, same key, now that their rooms are joined, and
    // before anything queued later so each room's order is kept.
    const resend = this._resend;
    this._resend = [];
    this._ready = true;
    this._everReady = true;
    this._attempt = 0;
    this._setState('connected');
    this._emit('ready', { user: this.user, session: this.session, reconnect: isReconnect });
    this._settleConnect(null);
    this._armPing();
    const queue = this._queue;
    this._queue = [];
    for (const q of resend) this._dispatch(q);
    for (const q of queue) this._dispatch(q);
  }

  async _rejoin(ws, room, st) {
    const cmd = { type: 'join', room, presence: st.presence };
    if (st.lastSeq != null) cmd.since = st.lastSeq;
    let r;
    try {
      try {
        r = await this._send(cmd, ws);
      } catch (e) {
        // A server without catch-up: join plainly and treat the gap as not recovered.
        if (e.code !== 'unsupported' || cmd.since == null || this._ws !== ws) throw e;
        delete cmd.since;
        r = { ...(await this._send(cmd, ws)), recovered: false };
      }
    } catch (e) {
      if (this._ws !== ws) return;
      if (e.code === 'timeout') {
        // Going on without the room would silently lose its messages: start over instead.
        this._onClose(4000, 'rejoin timeout');
        return;
      }
      if (e.code !== 'disconnected') {
        // The server refused the room itself (bad_room, too_many_rooms): forget it.
        this.rooms.delete(room);
      }
      this._emit('error', Object.assign(e, { room }));
      return;
    }
    // A seq below the last one we saw: the server lost messages it had delivered (or its store
    // was replaced). Treat it like recovered:false, or every new message up to the old
    // position would be dropped as already seen.
    const wentBack = st.lastSeq != null && r.seq < st.lastSeq;
    const recovered = st.lastSeq == null || (r.recovered !== false && !wentBack);
    this._emit('rejoin', { room, seq: r.seq, members: r.members, recovered });
    if (!recovered) {
      // Do not await: the reload must not hold up the session becoming ready for other rooms.
      this._reloadRoom(ws, room, st, r.seq, wentBack ? 'seq_lower' : 'not_recovered');
    } else if (st.lastSeq == null || r.seq > st.lastSeq) {
      st.lastSeq = Math.max(st.lastSeq ?? 0, r.seq);
    }
  }

  // recovered:false: messages were lost to us. Live messages that arrive while the page loads
  // are buffered so the UI sees `reset` first and then the newer messages, in order.
  async _reloadRoom(ws, room, st, seq, reason) {
    const oldLast = st.lastSeq;
    st.resetting = true;
    st.buffer = [];
    st.lastSeq = seq;
    let page = { messages: [], more: false };
    try {
      if (seq > 0) {
        page = await this._send({ type: 'history', room, before: seq + 1, limit: this.opts.historyOnReset }, ws);
      }
    } catch (e) {
      if (this._ws !== ws) {
        // Connection lost mid-reload: keep the old position so the next re-join is again
        // not recovered and the reload happens then; nothing was shown from this attempt.
        st.resetting = false;
        st.buffer = null;
        st.lastSeq = oldLast;
        return;
      }
      // No page to show: keep what the UI has rather than blanking the room.
      this._emit('error', Object.assign(e, { room }));
      st.resetting = false;
      const kept = st.buffer;
      st.buffer = null;
      for (const m of kept) this._deliver(m, st, false);
      return;
    }
    st.resetting = false;
    const buffered = st.buffer;
    st.buffer = null;
    if (this.rooms.get(room) !== st) return;
    this._emit('reset', { room, seq, messages: page.messages, more: page.more, reason });
    for (const m of buffered) this._deliver(m, st, false);
  }

  // Token lifetime: the server closes with 4001 "token expired" at exp + its grace. Ask
  // getToken() for a new token refreshBefore ms ahead of exp and send it with refresh; on a
  // failure try again (at most every 5 s) until the server's deadline. A reconnect starts over
  // with a fresh token from getToken().
  _armRefresh(ws, token) {
    clearTimeout(this._refreshTimer);
    const exp = tokenExp(token);
    if (exp == null || this._ws !== ws) return;
    const delay = Math.max(1000, exp * 1000 - Date.now() - this.opts.refreshBefore);
    this._refreshTimer = setTimeout(() => this._refresh(ws, token), Math.min(delay, 2 ** 31 - 1));
  }

  async _refresh(ws, old) {
    try {
      const token = await this.opts.getToken();
      if (this._ws !== ws) return;
      await this._send({ type: 'refresh', token }, ws);
      this._emit('refresh', { exp: tokenExp(token) });
      this._armRefresh(ws, token);
    } catch (e) {
      if (this._ws !== ws) return;
      this._emit('error', e);
      clearTimeout(this._refreshTimer);
      this._refreshTimer = setTimeout(() => this._refresh(ws, old), 5000);
    }
  }

  _armPing() {
    clearTimeout(this._pingTimer);
    if (!this.opts.pingInterval || !this._ready) return;
    const ws = this._ws;
    this._pingTimer = setTimeout(async () => {
      if (this._ws !== ws || !this._ready) return;
      try {
        await this._send({ type: 'ping' }, ws);
      } catch (e) {
        // No answer: the TCP connection is probably half-open. Start over.
        if (this._ws === ws && e.code === 'timeout') this._onClose(4000, 'ping timeout');
      }
    }, this.opts.pingInterval);
  }

  // ---------------------------------------------------------------- frames

  _onFrame(text) {
    let f;
    try { f = JSON.parse(text); } catch (_) { return; }
    if (!f || typeof f !== 'object') return;
    this._armPing();
    switch (f.type) {
      case 'welcome':
        clearTimeout(this._openTimer);
        this.session = f.session;
        this.limits = f.limits || null;
        this.user = f.user;
        this._emit('welcome', f);
        this._setup(this._ws);
        break;
      case 'reply': {
        const p = this._pending.get(f.id);
        if (!p) return;
        this._pending.delete(f.id);
        clearTimeout(p.timer);
        if (f.ok) p.resolve(f.data ?? {});
        else p.reject(new ParleyError(f.error?.code || 'internal', f.error?.message, p.cmd));
        break;
      }
      case 'message': {
        const st = this.rooms.get(f.room);
        if (!st) return; // left already; late delivery
        if (st.resetting) { st.buffer.push(f); return; }
        this._deliver(f, st, !this._ready);
        break;
      }
      case 'deleted':
        // A stored message was deleted: the application drops its copy of (room, seq).
        if (this.rooms.has(f.room)) this._emit('deleted', { room: f.room, seq: f.seq });
        break;
      case 'presence':
        if (this.rooms.has(f.room)) this._emit('presence', f);
        break;
      case 'error':
        this._emit('error', new ParleyError(f.error?.code || 'internal', f.error?.message));
        break;
      default:
        break; // unknown frame types are ignored: newer servers may add some
    }
  }

  // Guard: each stored message reaches the application once, in seq order.
  _deliver(m, st, replayed) {
    if (typeof m.seq === 'number') {
      if (st.lastSeq != null && m.seq <= st.lastSeq) return;
      st.lastSeq = m.seq;
    }
    // A tombstone (a deleted message in a replay) counts for the seq, but is no message.
    if (m.deleted) return this._emit('deleted', { room: m.room, seq: m.seq, replayed });
    this._emit('message', m, { replayed });
  }

  // ------------------------------------------------------------- commands

  // Sends one command on a given socket and returns the reply promise. Used by setup, which
  // must bypass the queue of user commands that waits for setup to finish.
  _send(cmd, ws, timeout = this.opts.timeout) {
    return new Promise((resolve, reject) => {
      const id = this._nextId++;
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new ParleyError('timeout', `no reply to ${cmd.type} within ${timeout} ms`, cmd));
      }, timeout);
      this._pending.set(id, { resolve, reject, timer, cmd, deadline: Date.now() + timeout });
      try {
        ws.send(JSON.stringify({ ...cmd, id }));
      } catch (e) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(new ParleyError('disconnected', 'socket not open', cmd));
      }
    });
  }

  // User-facing command: sent now when ready, else queued until the session is back.
  _command(cmd, timeout = this.opts.timeout) {
    if (this._closedByUser || this.state === 'closed') {
      return Promise.reject(new ParleyError('closed', 'connection closed', cmd));
    }
    return new Promise((resolve, reject) => {
      const q = { cmd, resolve, reject, deadline: Date.now() + timeout, timer: null };
      if (this._ready) return this._dispatch(q);
      q.timer = setTimeout(() => {
        const i = this._queue.indexOf(q);
        if (i >= 0) this._queue.splice(i, 1);
        reject(new ParleyError('timeout', `not connected: ${cmd.type} not sent within ${timeout} ms`, cmd));
      }, timeout);
      this._queue.push(q);
    });
  }

  _dispatch(q) {
    clearTimeout(q.timer);
    const left = Math.max(1, q.deadline - Date.now());
    this._send(q.cmd, this._ws, left).then(q.resolve, (e) => {
      // A cluster whose Redis is unreachable or restoring (docs/cluster.md) answers
      // `unavailable`: a keyed publish is sent again, with the same key, until its deadline
      // (100 ms doubling to 2 s, with jitter); the key makes it stored at most once.
      if (e.code === 'unavailable' && q.cmd.type === 'publish' && q.cmd.key != null) {
        q.tries = (q.tries || 0) + 1;
        const delay = Math.min(2000, 100 * 2 ** (q.tries - 1)) * (0.75 + Math.random() / 2);
        if (Date.now() + delay < q.deadline) {
          q.timer = setTimeout(() => {
            if (this._ready) this._dispatch(q);
            else this._queue.push(q);
          }, delay);
          return;
        }
      }
      q.reject(e);
    });
  }

  _failInFlight(code, message, resend = false) {
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      if (resend && p.cmd.type === 'publish' && p.cmd.key != null) {
        this._queueResend(p);
        continue;
      }
      p.reject(new ParleyError(code, message, p.cmd));
    }
    this._pending.clear();
  }

  // A keyed publish without a reply: sent again after the re-joins, until its own deadline.
  // Timing out here leaves it unknown whether it was published; the error carries the key so
  // the application can retry it without a duplicate.
  _queueResend(p) {
    const q = { cmd: p.cmd, resolve: p.resolve, reject: p.reject, deadline: p.deadline, timer: null };
    q.timer = setTimeout(() => {
      const i = this._resend.indexOf(q);
      if (i >= 0) this._resend.splice(i, 1);
      const e = new ParleyError('timeout', 'no reply to publish before the connection came back', q.cmd);
      e.key = q.cmd.key;
      q.reject(e);
    }, Math.max(1, p.deadline - Date.now()));
    this._resend.push(q);
  }

  _failAll(code, message) {
    this._failInFlight(code, message);
    const resend = this._resend;
    this._resend = [];
    for (const q of resend) {
      clearTimeout(q.timer);
      q.reject(Object.assign(new ParleyError(code, message, q.cmd), { key: q.cmd.key }));
    }
    const queue = this._queue;
    this._queue = [];
    for (const q of queue) {
      clearTimeout(q.timer);
      q.reject(new ParleyError(code, message, q.cmd));
    }
  }

  /** Sets the user name (kept for reconnects). Resolves to { user }. */
  async hello(name) {
    const previous = this.name;
    this.name = name;
    try {
      if (!this._ready) {
        // Setup sends hello with this.name when the connection comes back.
        await this._waitReady();
        if (this.user === name) return { user: name };
      }
      const r = await this._command({ type: 'hello', name });
      this.user = r.user;
      return r;
    } catch (e) {
      // Keep reconnecting under the last name the server accepted, not a refused one.
      if (this.name === name) this.name = previous;
      throw e;
    }
  }

  _waitReady(timeout = this.opts.timeout) {
    if (this._ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { off(); reject(new ParleyError('timeout', 'not connected')); }, timeout);
      const off = this.on('ready', () => { clearTimeout(t); off(); resolve(); });
    });
  }

  /** Joins a room. opts: { presence: bool, since: seq }. Resolves to { room, seq, members,
   *  recovered? }. The room is re-joined by itself after every reconnect. */
  async join(room, opts = {}) {
    const presence = !!opts.presence;
    const cmd = { type: 'join', room, presence };
    if (opts.since != null) cmd.since = opts.since;
    // Track the room before the reply so messages replayed ahead of it (since) are delivered.
    let st = this.rooms.get(room);
    const fresh = !st;
    if (fresh) {
      st = { presence, lastSeq: opts.since ?? null, joined: false, resetting: false, buffer: null };
      this.rooms.set(room, st);
    }
    try {
      const r = await this._command(cmd, opts.timeout);
      st.presence = presence;
      st.joined = true;
      if (st.lastSeq == null || r.seq > st.lastSeq) st.lastSeq = r.seq;
      return r;
    } catch (e) {
      if (fresh && this.rooms.get(room) === st && e.code !== 'disconnected' && e.code !== 'timeout') {
        this.rooms.delete(room);
      }
      throw e;
    }
  }

  /** Leaves a room; it is no longer re-joined. Resolves to { room }. */
  leave(room, opts = {}) {
    this.rooms.delete(room);
    return this._command({ type: 'leave', room }, opts.timeout);
  }

  /** Publishes JSON data to a room. opts: { persist, echo, durable, timeout, key }. Resolves
   *  to { seq } ({} for persist:false). A persisted publish carries an idempotency key (opts.key,
   *  else a random one): if the connection drops before the reply, it is sent again with the
   *  same key after the reconnect, and the server stores it at most once. */
  publish(room, data, opts = {}) {
    const cmd = { type: 'publish', room, data: data === undefined ? null : data };
    if (opts.persist === false) cmd.persist = false;
    else cmd.key = opts.key ?? randomKey();
    if (opts.echo === false) cmd.echo = false;
    if (opts.durable) cmd.durable = true;
    return this._command(cmd, opts.timeout);
  }

  /** One page of stored messages, oldest first. opts: { before, limit }. Resolves to
   *  { messages, more }. */
  history(room, opts = {}) {
    const cmd = { type: 'history', room };
    if (opts.before != null) cmd.before = opts.before;
    if (opts.limit != null) cmd.limit = opts.limit;
    return this._command(cmd, opts.timeout);
  }

  /** Deletes a stored message (your own; a moderator's token allows any). Resolves to
   *  { room, seq } once it is gone from disk; the room then gets a `deleted` event. */
  delete(room, seq, opts = {}) {
    return this._command({ type: 'delete', room, seq }, opts.timeout);
  }

  /** Users now in the room. Resolves to { members: [{ user, conns }] }. */
  presence(room, opts = {}) {
    return this._command({ type: 'presence', room }, opts.timeout);
  }

  /** Round trip to the server. Resolves to { ts } (server clock, ms). */
  ping(opts = {}) {
    return this._command({ type: 'ping' }, opts.timeout);
  }

  /** Last seq seen in a room (null if none yet). */
  lastSeq(room) {
    return this.rooms.get(room)?.lastSeq ?? null;
  }
}

export default Parley;
