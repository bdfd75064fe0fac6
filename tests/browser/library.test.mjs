// web-client/parley.js on its own, against a scripted fake WebSocket (no server, no browser):
// reply matching, errors, timeouts, and the reconnect rules (re-join with since, the seq
// guard, recovered:false -> reset).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Parley } from './harness.mjs';

// A fake socket whose server side is a function the test supplies: serve(frame, sock).
function fakeServer(serve) {
  const sockets = [];
  class FakeWS {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = false;
      sockets.push(this);
      setTimeout(() => this.push({ type: 'welcome', session: '00', user: 'guest-1', limits: {} }), 1);
    }
    send(text) {
      if (this.closed) throw new Error('closed');
      const f = JSON.parse(text);
      this.sent.push(f);
      setTimeout(() => serve(f, this), 1);
    }
    push(obj) { if (!this.closed && this.onmessage) this.onmessage({ data: JSON.stringify(obj) }); }
    reply(f, data) { this.push({ type: 'reply', id: f.id, ok: true, data }); }
    fail(f, code, message) { this.push({ type: 'reply', id: f.id, ok: false, error: { code, message } }); }
    close() { this.closed = true; }
    // Server side hang-up.
    drop(code = 1001) { this.closed = true; if (this.onclose) this.onclose({ code, reason: '' }); }
  }
  return { FakeWS, sockets };
}

const fast = { minDelay: 10, maxDelay: 20, pingInterval: 0, timeout: 1000 };
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, ms = 2000) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (fn()) return; await wait(5); }
  throw new Error('timed out');
}

test('replies resolve by id; errors carry code and message; timeouts reject', async () => {
  const { FakeWS } = fakeServer((f, s) => {
    if (f.type === 'hello') s.reply(f, { user: f.name });
    else if (f.type === 'leave') s.fail(f, 'not_member', 'not in room');
    // ping: never answered
  });
  const c = new Parley('ws://x/ws', { ...fast, WebSocket: FakeWS, name: 'ann', timeout: 200 });
  await c.connect();
  assert.equal(c.user, 'ann');
  await assert.rejects(c.leave('r'), (e) => e.code === 'not_member' && e.message === 'not in room');
  await assert.rejects(c.ping(), (e) => e.code === 'timeout');
  c.close();
  await assert.rejects(c.ping(), (e) => e.code === 'closed');
});

test('reconnect re-sends hello and re-joins with since; replayed messages arrive once, in order', async () => {
  let seq = 0;
  const stored = [];
  const { FakeWS, sockets } = fakeServer((f, s) => {
    if (f.type === 'hello') return s.reply(f, { user: f.name });
    if (f.type === 'join') {
      if (f.since != null) for (const m of stored) if (m.seq > f.since) s.push(m);
      // A duplicate of an already seen message, as a misbehaving server might send: dropped.
      if (f.since != null) s.push(stored[0]);
      return s.reply(f, { room: f.room, seq, members: 1, ...(f.since != null ? { recovered: true } : {}) });
    }
  });
  const c = new Parley('ws://x/ws', { ...fast, WebSocket: FakeWS, name: 'bo' });
  const got = [];
  const states = [];
  c.on('message', (m) => got.push(m.seq));
  c.on('state', (e) => states.push(e.state));
  await c.connect();
  const add = (n) => { for (let i = 0; i < n; i++) stored.push({ type: 'message', room: 'r', seq: ++seq, ts: 0, from: 'x', data: null }); };
  add(2);
  const r = await c.join('r', { presence: true });
  assert.equal(r.seq, 2);
  add(1);
  sockets[0].push(stored[2]); // live message 3
  await until(() => got.length === 1);
  sockets[0].drop(1001);
  add(3); // 4, 5, 6 published while away
  await until(() => c.state === 'connected' && sockets.length === 2);
  const join = sockets[1].sent.find((f) => f.type === 'join');
  assert.deepEqual([join.room, join.since, join.presence], ['r', 3, true]);
  assert.equal(sockets[1].sent[0].type, 'hello');
  assert.deepEqual(got, [3, 4, 5, 6]);
  assert.ok(states.includes('reconnecting'));
  assert.equal(c.lastSeq('r'), 6);
  c.close();
});

test('recovered:false reloads the latest page and emits reset before newer messages', async () => {
  const msg = (seq) => ({ type: 'message', room: 'r', seq, ts: 0, from: 'x', data: { text: String(seq) } });
  const { FakeWS, sockets } = fakeServer((f, s) => {
    if (f.type === 'hello') return s.reply(f, { user: f.name });
    if (f.type === 'join') return s.reply(f, { room: f.room, seq: f.since != null ? 2000 : 1, members: 1, recovered: f.since == null });
    if (f.type === 'history') {
      assert.equal(f.before, 2001);
      // A live message overtakes the history reply: it must come after the reset.
      s.push(msg(2001));
      setTimeout(() => s.reply(f, { messages: [msg(1999), msg(2000)], more: true }), 5);
    }
  });
  const c = new Parley('ws://x/ws', { ...fast, WebSocket: FakeWS, name: 'cy' });
  const events = [];
  c.on('message', (m) => events.push('m' + m.seq));
  c.on('reset', (e) => events.push('reset:' + e.messages.map((m) => m.seq).join(',')));
  await c.connect();
  await c.join('r');
  sockets[0].drop(1006);
  await until(() => events.length === 2);
  assert.deepEqual(events, ['reset:1999,2000', 'm2001']);
  assert.equal(c.lastSeq('r'), 2001);
  c.close();
});

test('commands issued while disconnected are sent after the session is back', async () => {
  const { FakeWS, sockets } = fakeServer((f, s) => {
    if (f.type === 'hello') return s.reply(f, { user: f.name });
    if (f.type === 'join') return s.reply(f, { room: f.room, seq: 0, members: 1, recovered: true });
    if (f.type === 'publish') return s.reply(f, { seq: 1 });
  });
  const c = new Parley('ws://x/ws', { ...fast, WebSocket: FakeWS, name: 'di' });
  await c.connect();
  await c.join('r');
  sockets[0].drop(1001);
  const p = c.publish('r', { text: 'queued' });
  const r = await p;
  assert.deepEqual(r, { seq: 1 });
  const s2 = sockets[sockets.length - 1].sent.map((f) => f.type);
  // hello and the re-join come before the queued publish.
  assert.deepEqual(s2, ['hello', 'join', 'publish']);
  c.close();
});

test('a connection that never says welcome is dropped and retried', async () => {
  const sockets = [];
  class SilentWS {
    constructor() { this.closed = false; sockets.push(this); }
    send() {}
    close() { this.closed = true; }
  }
  const c = new Parley('ws://x/ws', { ...fast, WebSocket: SilentWS, timeout: 50 });
  c.connect().catch(() => {});
  await until(() => sockets.length >= 3);
  assert.ok(sockets[0].closed);
  assert.equal(c.state, 'connecting');
  c.close();
  assert.equal(c.state, 'closed');
});

test('a persisted publish cut off by a disconnect is sent again, same key, after the re-join', async () => {
  let answer = false;
  const { FakeWS, sockets } = fakeServer((f, s) => {
    if (f.type === 'hello') return s.reply(f, { user: f.name });
    if (f.type === 'join') return s.reply(f, { room: f.room, seq: 0, members: 1, ...(f.since != null ? { recovered: true } : {}) });
    if (f.type === 'publish' && answer) return s.reply(f, { seq: 1 });
    // the first copy: the server took it, but the reply is lost with the connection
  });
  const c = new Parley('ws://x/ws', { ...fast, WebSocket: FakeWS, name: 'ed', timeout: 3000 });
  await c.connect();
  await c.join('r');
  const p = c.publish('r', { text: 'once' });
  await until(() => sockets[0].sent.some((f) => f.type === 'publish'));
  const first = sockets[0].sent.find((f) => f.type === 'publish');
  assert.match(first.key, /^[0-9a-f]{32}$/);
  answer = true;
  sockets[0].drop(1006);
  assert.deepEqual(await p, { seq: 1 });
  const s2 = sockets[1].sent;
  assert.deepEqual(s2.map((f) => f.type), ['hello', 'join', 'publish']);
  assert.equal(s2[2].key, first.key);
  assert.deepEqual(s2[2].data, { text: 'once' });
  // every publish has its own key; a volatile one has none
  const p2 = c.publish('r', 2);
  const p3 = c.publish('r', 3, { persist: false });
  await Promise.all([p2, p3]);
  const [k2, k3] = sockets[1].sent.slice(3).map((f) => f.key);
  assert.match(k2, /^[0-9a-f]{32}$/);
  assert.notEqual(k2, first.key);
  assert.equal(k3, undefined);
  c.close();
});

test('a keyed publish still unanswered at its deadline rejects with timeout and its key', async () => {
  const { FakeWS, sockets } = fakeServer((f, s) => {
    if (f.type === 'hello') return s.reply(f, { user: f.name });
    if (f.type === 'join' && sockets.length === 1) return s.reply(f, { room: f.room, seq: 0, members: 1 });
    // after the drop the server never answers the re-join: the publish waits, then times out
  });
  const c = new Parley('ws://x/ws', { ...fast, WebSocket: FakeWS, name: 'fa', timeout: 300 });
  await c.connect();
  await c.join('r');
  const p = c.publish('r', 1, { key: 'my-key' });
  await until(() => sockets[0].sent.some((f) => f.type === 'publish'));
  sockets[0].drop(1006);
  await assert.rejects(p, (e) => e.code === 'timeout' && e.key === 'my-key');
  c.close();
});

test('a join reply whose seq went below the last seen resets the room and shows new messages', async () => {
  const msg = (seq, text) => ({ type: 'message', room: 'r', seq, ts: 0, from: 'x', data: { text } });
  const { FakeWS, sockets } = fakeServer((f, s) => {
    if (f.type === 'hello') return s.reply(f, { user: f.name });
    // The store behind the second connection lost everything after seq 2.
    if (f.type === 'join') return s.reply(f, { room: f.room, seq: f.since != null ? 2 : 10, members: 1, recovered: true });
    if (f.type === 'history') {
      assert.equal(f.before, 3);
      s.reply(f, { messages: [msg(1, 'a'), msg(2, 'b')], more: false });
    }
  });
  const c = new Parley('ws://x/ws', { ...fast, WebSocket: FakeWS, name: 'gu' });
  const events = [];
  c.on('message', (m) => events.push('m' + m.seq));
  c.on('reset', (e) => events.push(`reset:${e.reason}:` + e.messages.map((m) => m.seq).join(',')));
  await c.connect();
  await c.join('r');
  assert.equal(c.lastSeq('r'), 10);
  sockets[0].drop(1006);
  await until(() => events.length === 1);
  sockets[1].push(msg(3, 'new')); // below the old high mark of 10: must not be dropped
  await until(() => events.length === 2);
  assert.deepEqual(events, ['reset:seq_lower:1,2', 'm3']);
  assert.equal(c.lastSeq('r'), 3);
  c.close();
});
