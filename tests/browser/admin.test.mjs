// The /admin dashboard (issue 15) in headless chromium: served on the admin listener only, login
// with an API key, live charts fed by GET /api/admin/feed, top-room tables, room search and
// disconnecting a user through the API. Screenshots at desktop and phone sizes are test artifacts.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, launchBrowser, until, nodeClient, artifactPath, tmpDir, REPO, sleep } from './harness.mjs';

const KEY = 'dash-key-0123456789abcdef0123456789abcdef';
let server;
let browser;

before(async () => {
  const dir = tmpDir('parley-admin-');
  const keys = path.join(dir, 'keys');
  fs.writeFileSync(keys, `dashboard ${KEY}\n`, { mode: 0o600 });
  server = await startServer({
    extraArgs: ['--api-keys-file', keys, '--admin-root', path.join(REPO, 'web-admin')],
  });
  assert.ok(server.adminPort, 'msg=admin_listening with a port in the log');
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    const code = await server.stop();
    assert.equal(code, 0, 'parleyd exits 0 after SIGTERM');
  }
});

/** A page in its own context; console errors and page errors are recorded. */
async function openAdmin(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  page.on('dialog', (d) => d.accept().catch(() => {}));
  await page.goto(`${server.adminUrl}/admin/`);
  return { page, close: () => context.close() };
}

async function login(page, key) {
  await page.fill('#key', key);
  await page.click('#login button[type=submit]');
}

test('/admin is on the admin listener only: the public listener answers 404', async () => {
  // (with PARLEY_TLS the public listener is https with a self-signed certificate: run.mjs lets
  // Node accept it, and the browser context below ignores it)
  const pub = await fetch(`${server.url}/admin/`);
  assert.equal(pub.status, 404);
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const p = await ctx.newPage();
  const r = await p.goto(`${server.url}/admin/`);
  assert.equal(r.status(), 404, 'GET /admin/ on the public listener');
  const r2 = await p.goto(`${server.url}/admin/admin.js`);
  assert.equal(r2.status(), 404, 'GET /admin/admin.js on the public listener');
  await ctx.close();
  const a = await fetch(`${server.adminUrl}/admin/`);
  assert.equal(a.status, 200);
  assert.match(await a.text(), /Parley admin/);
});

test('login is required; a wrong key is refused', async () => {
  const { page, close } = await openAdmin();
  try {
    assert.ok(await page.isVisible('#login'), 'the login form is shown');
    assert.ok(await page.isHidden('#dash'), 'no dashboard before login');
    await login(page, 'not-the-key');
    await until(async () => (await page.textContent('#login-error')) === 'wrong API key', { what: 'the refusal' });
    assert.ok(await page.isHidden('#dash'));
    // nothing of the feed without a key or ticket
    const r = await fetch(`${server.adminUrl}/api/admin/feed`);
    assert.equal(r.status, 401);
  } finally {
    await close();
  }
});

test('charts move with traffic; tables, room search, disconnect; no console errors; screenshots', async () => {
  const { page, close } = await openAdmin();
  const clients = [];
  let pumping = true;
  try {
    await login(page, KEY);
    await page.waitForSelector('#dash:not([hidden])');
    await until(async () => (await page.textContent('#status')) === 'live', { what: 'the feed to be live' });
    await until(() => page.evaluate(() => (window.parleyAdmin?.samples || 0) >= 2), { what: 'two samples' });
    // a single node: no cluster panel, no lag chart (admin-cluster.test.mjs: a cluster)
    assert.equal(await page.isHidden('#cluster'), true, 'the cluster panel is hidden');
    assert.equal(await page.isHidden('[data-chart=cluster]'), true, 'the lag chart is hidden');

    // traffic: three users in "busy", one publishing several messages a second
    for (const name of ['alice', 'bob', 'carol']) {
      const c = await nodeClient(server, name);
      await c.join('busy');
      clients.push(c);
    }
    const bobClosed = new Promise((resolve) => clients[1].on('disconnect', resolve));
    const pump = (async () => {
      let i = 0;
      while (pumping) {
        clients[0].publish('busy', { text: `tick ${i++}` }, { persist: true }).catch(() => {});
        await sleep(50);
      }
    })();

    // the messages chart gets non-zero points, the connections chart shows 3
    await until(() => page.evaluate(() => {
      const s = window.parleyAdmin?.last;
      return s && s.connections === 3 && s.deliveries_out_s > 0 && s.msgs_in_s > 0;
    }), { timeout: 15000, what: 'a sample with traffic' });
    const sizes = await page.evaluate(() => window.parleyAdmin.samples);
    await until(() => page.evaluate((n) => window.parleyAdmin.samples >= n + 2, sizes), { what: 'more samples' });
    // the drawn series: uPlot's data behind the "messages" chart holds the non-zero rates
    const maxDeliveries = await page.evaluate(() => {
      const el = document.querySelector('[data-chart="messages"] .u-legend');
      return el ? Math.max(...window.parleyAdminCharts.messages.data[2].filter((v) => v != null)) : -1;
    });
    assert.ok(maxDeliveries > 0, `deliveries/s plotted (max ${maxDeliveries})`);

    // tables: "busy" tops both
    await until(async () => (await page.textContent('#top-members tbody')).includes('busy'), { what: 'top by members' });
    await until(async () => (await page.textContent('#top-rate tbody')).includes('busy'), { what: 'top by rate' });

    // screenshots with live data (desktop)
    await sleep(1500);
    for (const [name, fullPage] of [['admin-desktop-1280x800.png', false], ['admin-desktop-full.png', true]]) {
      const desk = artifactPath(name);
      await page.screenshot({ path: desk, fullPage });
      console.log(`# screenshot: ${desk}`);
    }

    // room search: members and the last messages
    await page.fill('#room', 'busy');
    await page.click('#search button');
    await page.waitForSelector('#room-view:not([hidden])');
    await until(async () => (await page.$$eval('#members tbody tr', (r) => r.length)) === 3, { what: 'three members' });
    await until(async () => (await page.textContent('#messages')).includes('tick'), { what: 'last messages' });

    pumping = false;
    await pump;

    // disconnect bob: his client sees the close, the member list loses him
    await page.click('#members button[data-user="bob"]');
    const ev = await Promise.race([bobClosed, sleep(5000).then(() => null)]);
    assert.ok(ev, 'bob\'s client saw the close');
    assert.equal(ev.code, 4000);
    await until(async () => !(await page.textContent('#members tbody')).includes('bob'), { what: 'bob gone from the list' });

    assert.deepEqual(page.errors, [], 'no console errors');

    // phone size
    const phone = await openAdmin({ width: 390, height: 844 });
    try {
      await login(phone.page, KEY);
      await phone.page.waitForSelector('#dash:not([hidden])');
      await until(() => phone.page.evaluate(() => (window.parleyAdmin?.samples || 0) >= 3), { what: 'phone samples' });
      await phone.page.fill('#room', 'busy');
      await phone.page.click('#search button');
      await phone.page.waitForSelector('#room-view:not([hidden])');
      // nothing wider than the screen
      const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling on a phone (overflow ${overflow}px)`);
      await phone.page.evaluate(() => window.scrollTo(0, 0));
      for (const [name, fullPage] of [['admin-phone-390x844.png', false], ['admin-phone-full.png', true]]) {
        const ph = artifactPath(name);
        await phone.page.screenshot({ path: ph, fullPage });
        console.log(`# screenshot: ${ph}`);
      }
      await phone.page.evaluate(() => document.getElementById('room-view').scrollIntoView());
      const room = artifactPath('admin-phone-room.png');
      await phone.page.screenshot({ path: room });
      console.log(`# screenshot: ${room}`);
      assert.deepEqual(phone.page.errors, [], 'no console errors (phone)');
    } finally {
      await phone.close();
    }
  } finally {
    pumping = false;
    for (const c of clients) c.close();
    await close();
  }
});
