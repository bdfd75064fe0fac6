// The /admin dashboard's cluster panel (issue 15: "in a cluster, the nodes and their Redis lag") in
// headless chromium: a real redis-server and two parleyd nodes. The panel lists both nodes with their
// members, the lag chart appears, a node killed with SIGKILL turns dead or goes within the presence
// TTL, no console errors; a screenshot is a test artifact. On a single node the panel stays hidden
// (admin.test.mjs checks that).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startServer, launchBrowser, until, nodeClient, artifactPath, tmpDir, REPO } from './harness.mjs';

const KEY = 'dash-key-0123456789abcdef0123456789abcdef';
const TTL = 3;
let redis;
let alpha;
let beta;
let browser;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = tmpDir('parley-redis-');
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await until(() => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
    c.on('error', () => resolve(false));
  }), { timeout: 10000, what: 'redis-server to accept' });
  return { proc, url: `redis://127.0.0.1:${port}` };
}

before(async () => {
  redis = await startRedis();
  const keys = path.join(tmpDir('parley-admin-cl-'), 'keys');
  fs.writeFileSync(keys, `dashboard ${KEY}\n`, { mode: 0o600 });
  const node = (id) => startServer({
    extraArgs: ['--api-keys-file', keys, '--admin-root', path.join(REPO, 'web-admin'),
      '--cluster', redis.url, '--node-id', id, '--cluster-presence-ttl', String(TTL)],
  });
  alpha = await node('alpha');
  beta = await node('beta');
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (alpha) assert.equal(await alpha.stop(), 0, 'alpha exits 0 after SIGTERM');
  if (beta && beta.proc.exitCode === null && beta.proc.signalCode === null) await beta.stop();
  if (redis) redis.proc.kill('SIGKILL');
});

const rows = (page) => page.$$eval('#cluster-nodes tbody tr',
  (trs) => trs.map((tr) => ({ node: tr.dataset.node, dead: tr.className === 'dead', cells: [...tr.cells].map((c) => c.textContent) })));

test('the cluster panel lists the nodes, their members and the Redis lag', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const clients = [];
  try {
    await page.goto(`${alpha.adminUrl}/admin/`);
    await page.fill('#key', KEY);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#cluster:not([hidden])');
    // two users on beta, one on alpha
    for (const [srv, name] of [[beta, 'bob'], [beta, 'carol'], [alpha, 'alice']]) {
      const c = await nodeClient(srv, name);
      await c.join('lobby');
      clients.push(c);
    }
    await clients[0].publish('lobby', { hello: 1 }); // applied on alpha: a lag sample
    await until(async () => {
      const r = await rows(page);
      return r.length === 2 && r.some((x) => x.node === 'beta' && x.cells[2] === '2' && x.cells[1] === 'yes');
    }, { timeout: 10000, what: 'beta with 2 members in the panel' });
    const r = await rows(page);
    const a = r.find((x) => x.node === 'alpha');
    assert.deepEqual(a.cells.slice(0, 3), ['alpha (this node)', 'yes', '1']);
    assert.match(await page.textContent('#cluster-status'), /^Redis connected, publishing on, presence live, lag /);
    assert.equal(await page.isVisible('[data-chart=cluster]'), true, 'the lag chart is shown');
    // the lag of a local Redis is well under a millisecond to a few: a number, and sane
    const lag = await page.evaluate(() => window.parleyAdmin.last.cluster.lag_ms_max);
    assert.ok(typeof lag === 'number' && lag >= 0 && lag < 5000, `lag ${lag}`);
    const shot = artifactPath('admin-cluster-desktop.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`# screenshot: ${shot}`);

    // beta dies: within the TTL (+ the expiry sweep and a sample) it is dead or gone
    beta.proc.kill('SIGKILL');
    const t0 = Date.now();
    await until(async () => !(await rows(page)).some((x) => x.node === 'beta' && !x.dead),
      { timeout: (TTL + 3) * 1000, what: 'beta dead or gone' });
    assert.ok(Date.now() - t0 <= (TTL + 3) * 1000);
    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    for (const c of clients) { try { c.close(); } catch (e) { /* beta's are gone */ } }
    await context.close();
  }
});
