// A consumer of the packed parley-client: run.mjs copies this script into a scratch project where
// `npm install` put the tarball, so `import 'parley-client'` below is the published artifact, not the
// source tree. It drives a real parleyd (PARLEYD) through join, publish, history, a parleyd restart
// with recovery, and a publish whose reply is lost with its connection (resent with its key,
// stored and delivered once).
//
//   node client.mjs ws       the `ws` package passed in as the WebSocket option (Node >= 20)
//   node client.mjs global   globalThis.WebSocket (Node 22, or Node 20 with --experimental-websocket)
//
// Prints one line per check and a summary; exits non-zero if any check failed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Parley, ParleyError, DEFAULTS } from 'parley-client';

const mode = process.argv[2] || 'ws';
const Impl = mode === 'ws' ? (await import('ws')).default : globalThis.WebSocket;
if (typeof Impl !== 'function') {
  console.error(`client.mjs: no WebSocket implementation for mode '${mode}'`);
  process.exit(2);
}

let passed = 0, failed = 0;
function ok(cond, what, detail) {
  if (cond) { passed++; console.log(`ok   ${mode}: ${what}`); return true; }
  failed++;
  console.log(`FAIL ${mode}: ${what}${detail !== undefined ? ' (' + JSON.stringify(detail) + ')' : ''}`);
  return false;
}
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, what, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (fn()) return true; await wait(10); }
  return ok(false, 'timed out waiting for ' + what);
}

// ------------------------------------------------------------------ parleyd
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-pkg-'));
let proc = null;
let log = '';
function startParleyd(port) {
  return new Promise((resolve, reject) => {
    proc = spawn(process.env.PARLEYD, ['--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const from = log.length;
    const timer = setTimeout(() => reject(new Error('parleyd did not listen within 10 s:\n' + log)), 10000);
    const onData = (d) => {
      log += d;
      const m = /msg=listening\b.*\bport=(\d+)/.exec(log.slice(from));
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    for (const s of [proc.stdout, proc.stderr]) { s.setEncoding('utf8'); s.on('data', onData); }
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`parleyd exited (${code}) before listening:\n${log}`)); });
  });
}
function stopParleyd() {
  const p = proc;
  proc = null;
  return new Promise((resolve) => {
    p.on('exit', (code, sig) => resolve(code ?? sig));
    p.kill('SIGTERM');
  });
}
// A port nothing listens on: where a "gated" client's connection attempts go, refused at once.
async function deadPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

// ------------------------------------------------------- a tapping WebSocket
// Wraps the real implementation (so both `ws` and the global one are exercised) to observe the
// frames the client sends, to hold its connections off while `gate.closed`, and to lose the reply
// to one chosen command as a dropped connection would.
function tapping(gate) {
  const tap = { sent: [], dropReplyOf: null, dropped: 0 };
  class TapWS {
    constructor(url) {
      this._real = new Impl(gate.closed ? gate.deadUrl : url);
      this.onmessage = this.onclose = this.onerror = null;
      this._real.onmessage = (ev) => {
        const text = String(ev.data);
        let f = null;
        try { f = JSON.parse(text); } catch (_) { /* not ours to judge */ }
        if (f && f.type === 'reply' && tap.dropReplyOf && tap.dropReplyOf(f)) {
          tap.dropReplyOf = null;
          tap.dropped++;
          // The server acted on the command; the client never hears of it.
          this._real.close(4000, 'test: reply lost');
          return;
        }
        if (this.onmessage) this.onmessage({ data: text });
      };
      this._real.onclose = (ev) => { if (this.onclose) this.onclose({ code: ev.code, reason: ev.reason }); };
      this._real.onerror = (ev) => { if (this.onerror) this.onerror(ev); };
    }
    send(text) { tap.sent.push(JSON.parse(text)); this._real.send(text); }
    close(code, reason) { this._real.close(code, reason); }
  }
  return { TapWS, tap };
}

// ------------------------------------------------------------------ the run
let exitCode = 1;
try {
  ok(typeof DEFAULTS === 'object' && DEFAULTS.timeout > 0, 'DEFAULTS exported');
  const port = await startParleyd(0);
  const url = `ws://127.0.0.1:${port}/ws`;
  const gate = { closed: false, deadUrl: `ws://127.0.0.1:${await deadPort()}/ws` };
  const A = tapping(gate);
  const fast = { minDelay: 50, maxDelay: 300, timeout: 8000, pingInterval: 0 };
  const ann = new Parley(url, { ...fast, name: 'ann', WebSocket: A.TapWS });
  const bob = new Parley(url, { ...fast, name: 'bob', WebSocket: Impl });
  const annGot = [];
  const bobGot = [];
  const rejoins = [];
  ann.on('message', (m, info) => annGot.push({ seq: m.seq, text: m.data?.text, replayed: info.replayed }));
  bob.on('message', (m) => bobGot.push({ seq: m.seq, text: m.data?.text }));
  ann.on('rejoin', (e) => rejoins.push(e));
  const errors = [];
  ann.on('error', (e) => errors.push(e.code));
  bob.on('error', (e) => errors.push(e.code));

  // connect, join, publish, history
  const c = await ann.connect();
  ok(c.user === 'ann' && ann.user === 'ann', 'connect + hello', c);
  await bob.connect();
  const j = await ann.join('pkg', { presence: true });
  ok(j.room === 'pkg' && j.seq === 0 && j.members === 1, 'join (fresh room)', j);
  const jb = await bob.join('pkg');
  ok(jb.members === 2, 'second member joins', jb);
  const p1 = await ann.publish('pkg', { text: 'one' });
  ok(p1.seq === 1, 'publish gets seq 1', p1);
  await until(() => bobGot.length === 1 && annGot.length === 1, 'delivery of seq 1');
  ok(bobGot[0]?.text === 'one' && annGot[0]?.seq === 1, 'publish delivered to both members', { annGot, bobGot });
  const h = await bob.history('pkg', { limit: 10 });
  ok(h.messages.length === 1 && h.messages[0].seq === 1 && h.messages[0].from === 'ann' &&
     h.messages[0].data.text === 'one' && h.more === false, 'history', h);
  await assertRejects(() => ann.leave('no-such-room'), 'not_member', 'server errors reject with ParleyError code');
  const keyed = A.tap.sent.filter((f) => f.type === 'publish').every((f) => typeof f.key === 'string' && f.key);

  // restart: ann is held off while bob publishes, then catches up with since
  gate.closed = true;
  const code = await stopParleyd();
  ok(code === 0, 'parleyd exits 0 on SIGTERM', code);
  await startParleyd(port);
  await until(() => bob.state === 'connected', 'bob reconnected after the restart');
  await until(() => ann.state === 'reconnecting', 'ann reconnecting');
  const p2 = await bob.publish('pkg', { text: 'two' });
  const p3 = await bob.publish('pkg', { text: 'three' });
  ok(p2.seq === 2 && p3.seq === 3, 'seqs continue after the restart', [p2, p3]);
  gate.closed = false;
  ann.reconnectNow();
  await until(() => ann.state === 'connected' && rejoins.length === 1, 'ann re-joined');
  ok(rejoins[0]?.room === 'pkg' && rejoins[0]?.recovered === true && rejoins[0]?.seq === 3,
     'rejoin after restart is recovered', rejoins);
  await bob.publish('pkg', { text: 'four' });
  await until(() => annGot.length >= 4, 'ann gets seq 4');
  await wait(100); // a duplicate would arrive right behind
  ok(JSON.stringify(annGot.map((m) => m.seq)) === '[1,2,3,4]', 'missed messages replayed once, in order', annGot);
  ok(annGot[1].replayed && annGot[2].replayed && !annGot[3].replayed && annGot[2].text === 'three',
     'replayed messages are marked; live ones are not', annGot);
  ok(ann.lastSeq('pkg') === 4, 'lastSeq', ann.lastSeq('pkg'));

  // idempotent retry: the reply to a publish is lost with its connection
  if (ok(keyed, 'persisted publishes carry an idempotency key', A.tap.sent.filter((f) => f.type === 'publish'))) {
    const before = annGot.length;
    A.tap.dropReplyOf = (f) => A.tap.sent.some((s) => s.id === f.id && s.type === 'publish');
    const p5 = await ann.publish('pkg', { text: 'five' });
    ok(A.tap.dropped === 1, 'the first reply was lost with the connection', A.tap.dropped);
    const sends = A.tap.sent.filter((s) => s.type === 'publish' && s.data?.text === 'five');
    ok(sends.length >= 2 && sends.every((s) => s.key === sends[0].key),
       'the publish was resent with the same key', sends);
    await until(() => bobGot.some((m) => m.text === 'five'), 'bob gets five');
    const h5 = await bob.history('pkg', { limit: 100 });
    const fives = h5.messages.filter((m) => m.data?.text === 'five');
    ok(fives.length === 1 && fives[0].seq === p5.seq, 'stored once, and the retry got its seq', { p5, fives });
    await wait(100);
    ok(bobGot.filter((m) => m.text === 'five').length === 1 &&
       annGot.slice(before).filter((m) => m.text === 'five').length === 1, 'delivered once', { annGot, bobGot });
    // The application's own retry with the key (what docs/client.md says to do after a timeout).
    const again = await bob.publish('pkg', { text: 'five' }, { key: sends[0].key });
    const h6 = await bob.history('pkg', { limit: 100 });
    ok(again.seq === p5.seq && h6.messages.filter((m) => m.data?.text === 'five').length === 1,
       'publishing again with the same key gets the same seq and stores nothing', { again, p5 });
  }

  ann.close();
  bob.close();
  await assertRejects(() => ann.ping(), 'closed', 'commands after close() reject with closed');
  ok(errors.length === 0, 'no error events', errors);
  const last = await stopParleyd();
  ok(last === 0, 'parleyd exits 0 at the end', last);
  exitCode = failed ? 1 : 0;
} catch (e) {
  failed++;
  console.log(`FAIL ${mode}: ${e && e.stack || e}`);
  if (log) console.log('--- parleyd log ---\n' + log);
} finally {
  if (proc) proc.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
}
console.log(`${mode}: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : exitCode);

async function assertRejects(fn, code, what) {
  try {
    await fn();
    ok(false, what, 'resolved');
  } catch (e) {
    ok(e instanceof ParleyError && e.code === code, what, { code: e.code, message: e.message });
  }
}
