// Connection state recovery as socket.io-client >= 4.6 does it (pid and offset in the CONNECT auth).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, native, once, until, sleep, io } from './harness.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { assert.equal(await srv.stop(), 0, srv.log()); });

/** Cuts the client's connection without a goodbye (no 41, no close frame). */
function cut(s) {
  const t = s.io.engine.transport;
  if (t.name === 'websocket') t.ws.terminate();
  else s.io.engine.close();
}

for (const transports of [['websocket'], ['polling']]) {
  test(`recovered after a network cut, missed messages once and in order (${transports})`, async () => {
    const room = `rec-${transports[0]}`;
    const n = await native(srv);
    assert.equal((await n.cmd({ type: 'join', room })).ok, true);
    const s = io(srv.url, { transports, forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100,
      auth: { name: 'rita' } });
    await once(s, 'connect');
    assert.equal(s.recovered, false);
    const got = [];
    s.on('message', (m) => got.push(m.data));
    assert.equal((await s.emitWithAck('join', { room })).ok, true);
    for (let i = 1; i <= 2; i++) await n.cmd({ type: 'publish', room, data: i });
    await until(() => got.length === 2, { what: 'the first two' });
    const disconnected = once(s, 'disconnect');
    cut(s);
    await disconnected;
    // published while the client is away
    for (let i = 3; i <= 5; i++) await n.cmd({ type: 'publish', room, data: i });
    await once(s, 'connect');
    assert.equal(s.recovered, true);
    await until(() => got.length >= 5, { what: 'the missed messages' });
    await n.cmd({ type: 'publish', room, data: 6 });
    await until(() => got.length >= 6, { what: 'a live one after' });
    await sleep(100);
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
    // still a member, as before the cut
    assert.equal((await s.emitWithAck('publish', { room, data: 'back' })).ok, true);
    s.close();
    n.close();
  });
}

test('a client that left (disconnect()) is not recovered', async () => {
  const s = io(srv.url, { transports: ['websocket'], forceNew: true, reconnection: false });
  await once(s, 'connect');
  assert.equal((await s.emitWithAck('join', { room: 'left' })).ok, true);
  s.disconnect();
  await sleep(100);
  s.connect();
  await once(s, 'connect');
  assert.equal(s.recovered, false);
  s.close();
});

test('not recovered after the server restarts', async () => {
  const first = await startServer();
  const port = first.port;
  const s = io(first.url, { transports: ['websocket'], forceNew: true, reconnectionDelay: 50,
    reconnectionDelayMax: 100 });
  await once(s, 'connect');
  assert.equal((await s.emitWithAck('join', { room: 'rs' })).ok, true);
  const d = once(s, 'disconnect');
  assert.equal(await first.stop(), 0, first.log());
  await d;
  const second = await startServer({ port, dataDir: first.dataDir });
  await once(s, 'connect', 15000);
  assert.equal(s.recovered, false);
  s.close();
  assert.equal(await second.stop(), 0, second.log());
});

test('recovery off: no pid, never recovered', async () => {
  const off = await startServer({ extraArgs: ['--sio-recovery', '0'] });
  const s = io(off.url, { transports: ['websocket'], forceNew: true, reconnectionDelay: 50 });
  await once(s, 'connect');
  cut(s);
  await once(s, 'disconnect');
  await once(s, 'connect');
  assert.ok(!s.recovered); // no pid: undefined, as with a server without recovery
  s.close();
  assert.equal(await off.stop(), 0, off.log());
});

test('a guest (no auth) is recovered, with its name', async () => {
  const room = 'rec-guest';
  const n = await native(srv);
  assert.equal((await n.cmd({ type: 'join', room })).ok, true);
  const s = io(srv.url, { transports: ['websocket'], forceNew: true, reconnectionDelay: 50,
    reconnectionDelayMax: 100 });
  const w1 = await once(s, 'welcome');
  assert.match(w1.user, /^guest-/);
  const got = [];
  s.on('message', (m) => got.push(m.data));
  assert.equal((await s.emitWithAck('join', { room })).ok, true);
  await n.cmd({ type: 'publish', room, data: 'a' });
  await until(() => got.length === 1, { what: 'the first' });
  const welcome2 = new Promise((resolve) => s.once('disconnect', () => s.once('welcome', resolve)));
  cut(s);
  await sleep(100);
  await n.cmd({ type: 'publish', room, data: 'b' });
  const w2 = await welcome2;
  assert.equal(s.recovered, true);
  assert.equal(w2.user, w1.user);
  await until(() => got.length === 2, { what: 'the missed one' });
  assert.deepEqual(got, ['a', 'b']);
  s.close();
  n.close();
});

for (const transports of [['websocket'], ['polling']]) {
  test(`binary messages missed during a cut come back as Buffers, in order (${transports})`, async () => {
    const room = `rec-bin-${transports[0]}`;
    const n = await native(srv);
    assert.equal((await n.cmd({ type: 'join', room })).ok, true);
    const pub = io(srv.url, { transports: ['websocket'], forceNew: true, auth: { name: 'pub' } });
    await once(pub, 'connect');
    assert.equal((await pub.emitWithAck('join', { room })).ok, true);
    const s = io(srv.url, { transports, forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100,
      auth: { name: 'bina' } });
    await once(s, 'connect');
    const got = [];
    s.on('message', (m) => got.push(m.data));
    assert.equal((await s.emitWithAck('join', { room })).ok, true);
    assert.equal((await pub.emitWithAck('publish', { room, data: { i: 1, b: Buffer.from([1]) } })).ok, true);
    await until(() => got.length === 1, { what: 'the first' });
    const disconnected = once(s, 'disconnect');
    cut(s);
    await disconnected;
    // while away: Buffers from Socket.IO (two attachments in one), a native wrapper, plain text
    assert.equal((await pub.emitWithAck('publish', { room, data: { i: 2, b: Buffer.from([0, 255]) } })).ok, true);
    assert.equal((await pub.emitWithAck('publish',
      { room, data: { i: 3, b: [Buffer.from('x'), Buffer.alloc(0)] } })).ok, true);
    assert.equal((await n.cmd({ type: 'publish', room, data: { i: 4, b: { $base64: 'AQID' } } })).ok, true);
    assert.equal((await n.cmd({ type: 'publish', room, data: { i: 5, b: 'text' } })).ok, true);
    await once(s, 'connect');
    assert.equal(s.recovered, true);
    await until(() => got.length >= 5, { what: 'the missed messages' });
    await sleep(100);
    assert.deepEqual(got.map((d) => d.i), [1, 2, 3, 4, 5]);
    assert.ok(Buffer.isBuffer(got[1].b) && Buffer.isBuffer(got[2].b[0]) && Buffer.isBuffer(got[2].b[1]));
    assert.deepEqual([...got[1].b], [0, 255]);
    assert.equal(got[2].b[0].toString(), 'x');
    assert.equal(got[2].b[1].length, 0);
    assert.ok(Buffer.isBuffer(got[3].b));
    assert.deepEqual([...got[3].b], [1, 2, 3]);
    assert.equal(got[4].b, 'text');
    for (const c of [s, pub]) c.close();
    n.close();
  });
}
