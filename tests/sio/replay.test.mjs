// A recovery replay longer than the Engine.IO outgoing queue (1024 packets): the real socket.io-client
// gets every missed message once and in order, over long-polling (the replay is fed as the client
// polls), over WebSocket, and with default options (polling, then the upgrade, possibly mid-replay).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, native, once, until, sleep, io } from './harness.mjs';

const QUEUE_MAX = 1024;
let srv;
before(async () => {
  srv = await startServer({ extraArgs: ['--rate-messages', '100000', '--rate-burst', '100000'] });
});
after(async () => { assert.equal(await srv.stop(), 0, srv.log()); });

function cut(s) {
  const t = s.io.engine.transport;
  if (t.name === 'websocket') t.ws.terminate();
  else s.io.engine.close();
}

/** Publishes data from..to into room from the native client n, pipelined; resolves once all are stored. */
async function publishMany(n, room, from, to) {
  let id = 1000000 + from;
  for (let i = from; i <= to; i++) n.ws.send(JSON.stringify({ type: 'publish', id: ++id, room, data: i, echo: false }));
  const last = id;
  await n.next((f) => f.type === 'reply' && f.id === last, 30000);
  n.frames.length = 0;
}

const cases = [
  [['polling'], 3000],
  [['websocket'], 3000],
  [['polling', 'websocket'], 3000], // default options
  [['polling'], QUEUE_MAX],
  [['polling'], QUEUE_MAX + 1],
];

for (const [transports, missed] of cases) {
  test(`recovered after missing ${missed} messages (${transports})`, async () => {
    const room = `big-${transports.join('-')}-${missed}`;
    const n = await native(srv);
    assert.equal((await n.cmd({ type: 'join', room })).ok, true);
    const s = io(srv.url, { transports, forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100,
      auth: { name: 'late' } });
    await once(s, 'connect');
    const got = [];
    let disconnects = 0;
    s.on('message', (m) => got.push(m.data));
    s.on('disconnect', () => disconnects++);
    assert.equal((await s.emitWithAck('join', { room })).ok, true);
    await publishMany(n, room, 1, 1);
    await until(() => got.length === 1, { what: 'the first' });
    const disconnected = once(s, 'disconnect');
    const sid = s.io.engine.id;
    s.io.reconnection(false); // reconnect below, once the missed messages are stored
    cut(s);
    await disconnected;
    // Publish only once parleyd has seen the cut: else the messages go to the old session, which a
    // client that stopped reading cannot take (over polling: "queue full").
    await until(() => srv.log().includes(`sid=${sid} reason=`), { what: 'parleyd to see the cut' });
    await publishMany(n, room, 2, missed + 1);
    const connected = once(s, 'connect', 20000);
    s.connect();
    await connected;
    if (s.recovered !== true) // what parleyd said about the sessions, for the failure
      console.error(srv.log().split('\n').filter((l) => /msg=sio_/.test(l)).slice(-30).join('\n'));
    assert.equal(s.recovered, true);
    await until(() => got.length >= missed + 1, { timeout: 30000, what: `the ${missed} missed` });
    await publishMany(n, room, missed + 2, missed + 2);
    await until(() => got.length >= missed + 2, { what: 'a live one after' });
    await sleep(100);
    assert.equal(got.length, missed + 2);
    assert.deepEqual(got, Array.from({ length: missed + 2 }, (_, i) => i + 1));
    assert.equal(disconnects, 1, 'the recovered session stayed up');
    s.close();
    n.close();
  });
}

// Live messages held behind a replay, past the Engine.IO queue's default bound: with
// --send-queue-messages 3000 a polling client may be 3,000 live messages behind while it catches up.
// They go to it a slice at a time as it polls (docs/socketio.md "Long replays"), never into the
// queue at once (1,024 packets by default: "queue full" for a client that did nothing wrong).
test('3000 live messages held behind a polling replay, --send-queue-messages 3000', async () => {
  const big = await startServer({ extraArgs: ['--rate-messages', '100000', '--rate-burst', '100000',
    '--send-queue-messages', '3000'] });
  try {
    const room = 'held-3000';
    const replay = 4000, live = 3000;
    const n = await native(big);
    assert.equal((await n.cmd({ type: 'join', room })).ok, true);
    await publishMany(n, room, 1, replay);
    const s = io(big.url, { transports: ['polling'], forceNew: true, reconnection: false,
      auth: { name: 'late' } });
    await once(s, 'connect');
    const got = [];
    let disconnects = 0;
    s.on('message', (m) => got.push(m.data));
    s.on('disconnect', () => disconnects++);
    const acked = s.emitWithAck('join', { room, since: 0 });
    await until(() => got.length > 0, { what: 'the replay to start' });
    await publishMany(n, room, replay + 1, replay + live);
    const ack = await acked;
    assert.equal(ack.ok, true);
    assert.equal(ack.data.recovered, true);
    await until(() => got.length >= replay + live, { timeout: 30000, what: `all ${replay + live}` });
    await sleep(100);
    assert.deepEqual(got, Array.from({ length: replay + live }, (_, i) => i + 1));
    assert.equal(disconnects, 0, 'the session stayed up');
    assert.ok(!big.log().includes('slow_consumer'), 'no slow-consumer close');
    s.close();
    n.close();
  } catch (e) {
    console.error(big.log().split('\n').filter((l) => !/msg=(connect|disconnect) /.test(l)).slice(-30).join('\n'));
    throw e;
  } finally {
    assert.equal(await big.stop(), 0, big.log());
  }
});
