// socket.io-client v4: token auth and refusal, binary data both ways, namespaces.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, sio, native, once, io } from './harness.mjs';

const SECRET = 'a-node-test-secret-that-is-long-enough-0123456789';
const b64u = (b) => Buffer.from(b).toString('base64url');
function token(sub, ttl = 300) {
  const h = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const p = b64u(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + ttl }));
  const mac = crypto.createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${mac}`;
}

let open, authed;
before(async () => {
  open = await startServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-sio-secret-'));
  const file = path.join(dir, 'secret');
  fs.writeFileSync(file, SECRET + '\n', { mode: 0o400 });
  authed = await startServer({ extraArgs: ['--auth', 'token', '--auth-secret-file', file] });
});
after(async () => {
  assert.equal(await open.stop(), 0, open.log());
  assert.equal(await authed.stop(), 0, authed.log());
});

for (const transports of [['polling', 'websocket'], ['websocket']]) {
  test(`token auth accepted (${transports.join('+')})`, async () => {
    const s = io(authed.url, { transports, reconnection: false, forceNew: true, auth: { token: token('tina') } });
    const w = await once(s, 'welcome');
    assert.equal(w.user, 'tina');
    assert.equal((await s.emitWithAck('join', { room: 'sec' })).ok, true);
    s.close();
  });

  test(`bad token refused with connect_error (${transports.join('+')})`, async () => {
    const s = io(authed.url, { transports, reconnection: false, forceNew: true, auth: { token: 'nope' } });
    const e = await once(s, 'connect_error');
    assert.equal(e.data.code, 'unauthenticated');
    assert.ok(e.message.length > 0);
    assert.equal(s.connected, false);
    s.close();
  });
}

test('no token on a token server: connect_error', async () => {
  const s = io(authed.url, { reconnection: false, forceNew: true, auth: { name: 'x' } });
  const e = await once(s, 'connect_error');
  assert.equal(e.data.code, 'unauthenticated');
  s.close();
});

test('binary: Buffer from Socket.IO -> wrapper for native -> Buffer for Socket.IO, and history', async () => {
  const bytes = Buffer.from([0, 1, 2, 250, 255]);
  const n = await native(open);
  assert.equal((await n.cmd({ type: 'join', room: 'bin' })).ok, true);
  const a = await sio(open, { auth: { name: 'a' } });
  const b = await sio(open, { transports: ['polling'], auth: { name: 'b' } });
  for (const s of [a, b]) assert.equal((await s.emitWithAck('join', { room: 'bin' })).ok, true);
  const gotB = once(b, 'message');
  const r = await a.emitWithAck('publish', { room: 'bin', data: { name: 'x.bin', bytes } });
  assert.equal(r.ok, true);
  const m = await gotB;
  assert.ok(Buffer.isBuffer(m.data.bytes), 'a Buffer again');
  assert.deepEqual([...m.data.bytes], [...bytes]);
  assert.equal(m.data.name, 'x.bin');
  const nm = await n.next((f) => f.type === 'message');
  assert.deepEqual(nm.data, { name: 'x.bin', bytes: { $base64: bytes.toString('base64') } });
  // native wrapper -> Buffer
  const got2 = once(a, 'message');
  await n.cmd({ type: 'publish', room: 'bin', data: [{ $base64: 'AQID' }] });
  let m2 = await got2;
  while (!Array.isArray(m2.data)) m2 = await once(a, 'message');
  assert.ok(Buffer.isBuffer(m2.data[0]));
  assert.deepEqual([...m2.data[0]], [1, 2, 3]);
  // history brings the Buffers back too
  const h = await b.emitWithAck('history', { room: 'bin' });
  assert.ok(Buffer.isBuffer(h.data.messages[0].data.bytes));
  for (const s of [a, b]) s.close();
  n.close();
});

test('invalid namespace over polling', async () => {
  const s = io(open.url + '/custom', { reconnection: false, forceNew: true });
  const e = await once(s, 'connect_error');
  assert.equal(e.message, 'Invalid namespace');
  s.close();
});

test('a server shutdown with a polling session open: the client is disconnected, parleyd exits 0', async () => {
  const srv = await startServer();
  const s = await sio(srv, { transports: ['polling'] });
  const d = once(s, 'disconnect');
  const stopped = srv.stop();
  await d; // "transport close" ("1" on the held GET) or "transport error" (the socket went first)
  assert.equal(await stopped, 0, srv.log());
  s.close();
});
