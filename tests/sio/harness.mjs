// Shared helpers for the Socket.IO tests: start/stop the real parleyd, the real socket.io-client
// from npm, and a minimal native (/ws) client on Node's own WebSocket-less side (the `ws` package
// that socket.io-client depends on).
//
// Environment: PARLEYD, the path of the parleyd binary (required).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

let io, WebSocket;
try {
  ({ io } = await import('socket.io-client'));
  ({ WebSocket } = await import('ws'));
} catch (e) {
  throw new Error('socket.io-client is not installed: run `npm ci` in tests/sio');
}
export { io, WebSocket };

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** Polls fn until it returns a truthy value; bounded by timeout. */
export async function until(fn, { timeout = 10000, interval = 20, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(interval);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
}

/** Resolves with the first argument of the first emission of event (a `message` event's second
 * argument is its recovery offset). */
export function once(emitter, event, timeout = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} within ${timeout} ms`)), timeout);
    emitter.once(event, (...args) => { clearTimeout(t); resolve(args[0]); });
  });
}

/**
 * Starts parleyd on a free port and waits for its `msg=listening ... port=N` line.
 * Returns { port, url, log(), stop() }; stop() sends SIGTERM and resolves to the exit code.
 */
export async function startServer({ extraArgs = [], dataDir, port: wantPort = 0 } = {}) {
  const exe = process.env.PARLEYD;
  if (!exe) throw new Error('PARLEYD is not set (path of the parleyd binary)');
  dataDir = dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'parley-sio-'));
  const args = ['--host', '127.0.0.1', '--port', String(wantPort), '--data-dir', dataDir, '--log-level', 'info', '--admin-listen', 'off',
    ...extraArgs];
  const proc = spawn(exe, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('parleyd did not start:\n' + stderr)), 10000);
    proc.stderr.on('data', (d) => {
      stderr += d;
      const m = /msg=listening\b.*\bport=(\d+)/.exec(stderr);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => reject(new Error(`parleyd exited (${code}):\n${stderr}`)));
  });
  return {
    port, dataDir, proc,
    url: `http://127.0.0.1:${port}`,
    log: () => stderr,
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) { resolve(proc.exitCode); return; }
      proc.once('exit', (code, sig) => resolve(code === null ? sig : code));
      proc.kill('SIGTERM');
    }),
  };
}

/** A Socket.IO client with the given options; resolves once connected. */
export async function sio(srv, opts = {}) {
  const s = io(srv.url, { reconnection: false, forceNew: true, ...opts });
  await new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('connect_error', reject);
  });
  return s;
}

/** A native Parley client on /ws: frames queue up; next(pred) waits for a matching one. */
export async function native(srv, query = '') {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws${query}`);
  const frames = [];
  const waiters = [];
  ws.on('message', (d) => {
    frames.push(JSON.parse(String(d)));
    for (const w of waiters.splice(0)) w();
  });
  await once(ws, 'open');
  let id = 0;
  const c = {
    ws, frames,
    async next(pred = () => true, timeout = 10000) {
      const end = Date.now() + timeout;
      for (;;) {
        const i = frames.findIndex(pred);
        if (i >= 0) return frames.splice(i, 1)[0];
        if (Date.now() > end) throw new Error('no matching native frame; have ' + JSON.stringify(frames));
        await new Promise((r) => { waiters.push(r); setTimeout(r, 50); });
      }
    },
    async cmd(obj) {
      const myId = ++id;
      ws.send(JSON.stringify({ ...obj, id: myId }));
      return c.next((f) => f.type === 'reply' && f.id === myId);
    },
    close() { ws.close(); },
  };
  c.welcome = await c.next((f) => f.type === 'welcome');
  return c;
}
