// socket.io-client v4 with transports: ['websocket'] against parleyd's /socket.io/.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sio, native, once, until, sleep, io } from './harness.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { assert.equal(await srv.stop(), 0, srv.log()); });

const WS = { transports: ['websocket'] };

test('connects, gets welcome, engine transport is websocket', async () => {
  const s = io(srv.url, { ...WS, reconnection: false, forceNew: true, auth: { name: 'alice' } });
  const welcome = once(s, 'welcome');
  await once(s, 'connect');
  assert.equal(s.io.engine.transport.name, 'websocket');
  const w = await welcome;
  assert.equal(w.user, 'alice');
  assert.match(w.session, /^[0-9a-f]{16}$/);
  assert.equal(typeof w.limits.max_message_size, 'number');
  assert.ok(!('type' in w));
  s.close();
});

test('join, publish with acks: native reply shapes without type/id', async () => {
  const s = await sio(srv, { ...WS, auth: { name: 'bob' } });
  const j = await s.emitWithAck('join', { room: 'r1' });
  assert.deepEqual(Object.keys(j).sort(), ['data', 'ok']);
  assert.equal(j.ok, true);
  assert.equal(j.data.room, 'r1');
  assert.equal(typeof j.data.seq, 'number');
  const got = once(s, 'message');
  const p = await s.emitWithAck('publish', { room: 'r1', data: { text: 'hi' } });
  assert.equal(p.ok, true);
  const m = await got;
  assert.equal(m.room, 'r1');
  assert.equal(m.from, 'bob');
  assert.deepEqual(m.data, { text: 'hi' });
  assert.equal(typeof m.seq, 'number');
  assert.ok(!('type' in m));
  const h = await s.emitWithAck('history', { room: 'r1' });
  assert.equal(h.ok, true);
  assert.deepEqual(h.data.messages.map((x) => x.data), [{ text: 'hi' }]);
  const pr = await s.emitWithAck('presence', { room: 'r1' });
  assert.equal(pr.ok, true);
  const l = await s.emitWithAck('leave', { room: 'r1' });
  assert.deepEqual(l, { ok: true, data: { room: 'r1' } });
  s.close();
});

test('errors: not_member, unknown event, bad argument, error event without ack', async () => {
  const s = await sio(srv, WS);
  assert.deepEqual(await s.emitWithAck('publish', { room: 'nope', data: 1 }),
    { ok: false, error: { code: 'not_member', message: 'join the room first' } });
  const u = await s.emitWithAck('frobnicate', { room: 'x' });
  assert.equal(u.ok, false);
  assert.equal(u.error.code, 'unknown_type');
  const b = await s.emitWithAck('join', 'lobby');
  assert.equal(b.error.code, 'bad_request');
  const k = await s.emitWithAck('join', { room: 'x', type: 'publish' });
  assert.equal(k.error.code, 'bad_request');
  const br = await s.emitWithAck('join', { room: 'bad room!' });
  assert.equal(br.error.code, 'bad_room');
  const err = once(s, 'error');
  s.emit('leave', { room: 'never' });
  const e = await err;
  assert.equal(e.code, 'not_member');
  s.close();
});

test('hello renames, as native', async () => {
  const s = await sio(srv, WS);
  const r = await s.emitWithAck('hello', { name: 'carol' });
  assert.deepEqual(r, { ok: true, data: { user: 'carol' } });
  s.close();
});

test('a native client and a Socket.IO client in one room', async () => {
  const n = await native(srv);
  assert.equal((await n.cmd({ type: 'hello', name: 'nat' })).ok, true);
  assert.equal((await n.cmd({ type: 'join', room: 'mixed', presence: true })).ok, true);
  const s = await sio(srv, { ...WS, auth: { name: 'sock' } });
  const pres = once(s, 'presence');
  assert.equal((await s.emitWithAck('join', { room: 'mixed', presence: true })).ok, true);
  // native sees the Socket.IO user join
  await n.next((f) => f.type === 'presence' && (f.joined || []).includes('sock'));
  const p = await pres;
  assert.equal(p.room, 'mixed');
  // Socket.IO -> native
  assert.equal((await s.emitWithAck('publish', { room: 'mixed', data: 'from sio' })).ok, true);
  const nm = await n.next((f) => f.type === 'message' && f.data === 'from sio');
  assert.equal(nm.from, 'sock');
  // native -> Socket.IO
  const got = once(s, 'message');
  await n.cmd({ type: 'publish', room: 'mixed', data: { x: [1, 2] } });
  let m = await got;
  while (m.data === 'from sio') m = await once(s, 'message');
  assert.deepEqual(m.data, { x: [1, 2] });
  assert.equal(m.from, 'nat');
  // history both ways
  const h = await s.emitWithAck('history', { room: 'mixed' });
  assert.deepEqual(h.data.messages.map((x) => x.data), ['from sio', { x: [1, 2] }]);
  const nh = await n.cmd({ type: 'history', room: 'mixed' });
  assert.deepEqual(nh.data.messages.map((x) => x.data), ['from sio', { x: [1, 2] }]);
  s.close();
  await n.next((f) => f.type === 'presence' && (f.left || []).includes('sock'));
  n.close();
});

test('other namespaces get CONNECT_ERROR "Invalid namespace"', async () => {
  const s = io(srv.url + '/admin', { ...WS, reconnection: false, forceNew: true });
  const e = await once(s, 'connect_error');
  assert.equal(e.message, 'Invalid namespace');
  s.close();
});

test('one fan-out rendition serves many Socket.IO members', async () => {
  const socks = await Promise.all([1, 2, 3, 4, 5].map(() => sio(srv, WS)));
  for (const s of socks) assert.equal((await s.emitWithAck('join', { room: 'fan' })).ok, true);
  const got = socks.map((s) => once(s, 'message'));
  await socks[0].emitWithAck('publish', { room: 'fan', data: 42 });
  for (const m of await Promise.all(got)) assert.equal(m.data, 42);
  for (const s of socks) s.close();
});
