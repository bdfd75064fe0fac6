// socket.io-client v4 with default options: HTTP long-polling first, then the upgrade to WebSocket.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sio, native, once, until, io } from './harness.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { assert.equal(await srv.stop(), 0, srv.log()); });

test('default options: polling, then upgraded to websocket', async () => {
  const s = io(srv.url, { reconnection: false, forceNew: true, auth: { name: 'poll' } });
  const welcome = once(s, 'welcome');
  const transports = [];
  s.io.on('open', () => {
    transports.push(s.io.engine.transport.name);
    s.io.engine.on('upgrade', (t) => transports.push(t.name));
  });
  await once(s, 'connect');
  assert.equal((await welcome).user, 'poll');
  const r = await s.emitWithAck('join', { room: 'pr' });
  assert.equal(r.ok, true);
  await until(() => s.io.engine.transport.name === 'websocket', { what: 'the upgrade' });
  assert.deepEqual(transports, ['polling', 'websocket']);
  const got = once(s, 'message');
  assert.equal((await s.emitWithAck('publish', { room: 'pr', data: 'after upgrade' })).ok, true);
  assert.equal((await got).data, 'after upgrade');
  s.close();
});

test('polling only: join, publish, acks, messages', async () => {
  const s = await sio(srv, { transports: ['polling'], auth: { name: 'p2' } });
  assert.equal(s.io.engine.transport.name, 'polling');
  assert.equal((await s.emitWithAck('join', { room: 'po' })).ok, true);
  const got = [];
  s.on('message', (m) => got.push(m.data));
  for (let i = 0; i < 20; i++) s.emit('publish', { room: 'po', data: i });
  await until(() => got.length === 20, { what: '20 messages' });
  assert.deepEqual(got, [...Array(20).keys()]);
  const h = await s.emitWithAck('history', { room: 'po', limit: 5 });
  assert.deepEqual(h.data.messages.map((m) => m.data), [15, 16, 17, 18, 19]);
  s.close();
});

test('a polling client and a native client in one room', async () => {
  const n = await native(srv);
  assert.equal((await n.cmd({ type: 'join', room: 'mixp' })).ok, true);
  const s = await sio(srv, { transports: ['polling'], auth: { name: 'pp' } });
  assert.equal((await s.emitWithAck('join', { room: 'mixp' })).ok, true);
  const got = once(s, 'message');
  await n.cmd({ type: 'publish', room: 'mixp', data: 'to poller' });
  assert.equal((await got).data, 'to poller');
  assert.equal((await s.emitWithAck('publish', { room: 'mixp', data: 'from poller' })).ok, true);
  const m = await n.next((f) => f.type === 'message' && f.data === 'from poller');
  assert.equal(m.from, 'pp');
  s.close();
  n.close();
});

test('a polling session is released when the client disconnects', async () => {
  const s = io(srv.url, { transports: ['polling'], reconnection: false, forceNew: true });
  const w = await once(s, 'welcome');
  s.disconnect(); // 41, then the client closes the Engine.IO session
  await until(() => new RegExp(`msg=disconnect session=${w.session} `).test(srv.log()),
    { what: 'the session to be released' });
});
