// parley.js with getToken(): hello with the token, refresh before exp, and the real parleyd
// closing a connection whose token expired (4001) versus keeping one that refreshed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Parley, startServer, tmpDir, until, sleep } from './harness.mjs';

const SECRET = 'a-browser-suite-secret-long-enough-0123456789abcdef';

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function mint(claims) {
  const h = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const p = b64url(JSON.stringify(claims));
  const sig = b64url(crypto.createHmac('sha256', SECRET).update(`${h}.${p}`).digest());
  return `${h}.${p}.${sig}`;
}

const nowS = () => Math.floor(Date.now() / 1000);

test('getToken: hello carries the token; refresh is sent refreshBefore ms ahead of exp', async () => {
  const sent = [];
  class FakeWS {
    constructor() {
      setTimeout(() => this.push({ type: 'welcome', session: '00', user: 'guest-1', limits: {} }), 1);
    }
    push(o) { if (this.onmessage) this.onmessage({ data: JSON.stringify(o) }); }
    send(text) {
      const f = JSON.parse(text);
      sent.push(f);
      setTimeout(() => this.push({ type: 'reply', id: f.id, ok: true, data: { user: 'ann' } }), 1);
    }
    close() {}
  }
  let calls = 0;
  // exp 3 s away, refresh 2 s ahead: the first refresh comes about 1 s after connecting.
  const getToken = async () => { calls++; return mint({ sub: 'ann', exp: nowS() + 3 }); };
  const c = new Parley('ws://x/ws', { WebSocket: FakeWS, getToken, refreshBefore: 2000, pingInterval: 0, name: 'ignored' });
  const refreshed = [];
  c.on('refresh', (e) => refreshed.push(e));
  await c.connect();
  assert.equal(c.user, 'ann');
  const hello = sent.find((f) => f.type === 'hello');
  assert.ok(hello.token && hello.name === undefined, JSON.stringify(hello));
  await until(() => refreshed.length >= 1, { timeout: 4000, what: 'a refresh' });
  const r = sent.find((f) => f.type === 'refresh');
  assert.equal(typeof r.token, 'string');
  assert.ok(calls >= 2);
  c.close();
});

test('the real parleyd closes an unrefreshed token with 4001 and keeps a refreshed one', async () => {
  const dir = tmpDir('parley-token-');
  const secretFile = path.join(dir, 'secret');
  fs.writeFileSync(secretFile, SECRET + '\n', { mode: 0o400 });
  const server = await startServer({ extraArgs: ['--auth', 'token', '--auth-secret-file', secretFile, '--token-grace', '1'] });
  try {
    // Without getToken refreshes: a token that expires in ~2 s, no refresh (refreshBefore 0
    // would refresh at exp; push it past the deadline instead).
    const stale = new Parley(server.wsUrl, {
      getToken: async () => mint({ sub: 'old', exp: nowS() + 2 }),
      refreshBefore: -60000, reconnect: false, pingInterval: 0,
    });
    const closes = [];
    stale.on('disconnect', (e) => closes.push(e));
    await stale.connect();
    assert.equal(stale.user, 'old');

    const fresh = new Parley(server.wsUrl, {
      getToken: async () => mint({ sub: 'new', exp: nowS() + 2 }),
      refreshBefore: 1500, reconnect: false, pingInterval: 0,
    });
    await fresh.connect();
    await fresh.join('lobby');

    await until(() => closes.length === 1, { timeout: 8000, what: 'the stale token closed' });
    assert.equal(closes[0].code, 4001);
    assert.equal(closes[0].reason, 'token expired');
    await sleep(2500); // fresh is now past its first token's exp + grace
    assert.equal(fresh.state, 'connected');
    assert.ok((await fresh.ping()).ts > 0);
    fresh.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
