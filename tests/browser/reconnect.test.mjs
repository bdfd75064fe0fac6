// Browser test of reconnection: parleyd restarts (same port, same data dir) under an open page.
// The page must show that it is reconnecting, then show every message published while it was
// away exactly once, in order (re-join with `since`).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openChat, messageTexts, say, until, nodeClient, tmpDir, artifactPath, sleep,
} from './harness.mjs';

let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

test('a page survives a server restart and sees missed messages exactly once, in order', async () => {
  const dataDir = tmpDir('parley-data-');
  let server = await startServer({ dataDir });
  const port = server.port;
  const room = 'resilient';
  const a = await openChat(browser, server, 'kim', room);
  try {
    const pub = await nodeClient(server, 'lee');
    await pub.join(room);
    await pub.publish(room, { text: 'before 1' });
    await say(a.page, 'before 2');
    await a.page.waitForSelector('.msg-text >> text="before 2"');
    await a.page.waitForSelector('.msg-text >> text="before 1"');
    pub.close();

    // Cut the page's connection: stop the server (close 1001) ...
    const code = await server.stop();
    assert.equal(code, 0, `parleyd should exit 0 on SIGTERM:\n${server.log().split('\n').slice(-8).join('\n')}`);
    await a.page.waitForSelector('body[data-conn="reconnecting"]', { timeout: 5000 });
    assert.match(await a.page.textContent('#banner-text'), /Reconnecting/);
    assert.match(await a.page.textContent('#conn-text'), /Reconnecting/);
    await a.page.screenshot({ path: artifactPath('chat-reconnecting.png') });

    // ... and wait until the page's next attempt is a few seconds away, so the messages below
    // are published while it is still away (it must then catch up through join `since`).
    await until(() => a.page.$eval('#banner', (b) => Number(b.dataset.retryAt || 0) - Date.now() > 2500),
      { timeout: 20000, interval: 100, what: 'a reconnect delay > 2.5 s' });
    server = await startServer({ port, dataDir });
    const pub2 = await nodeClient(server, 'lee');
    await pub2.join(room);
    const missed = [];
    for (let i = 1; i <= 5; i++) {
      missed.push(`while away ${i}`);
      await pub2.publish(room, { text: `while away ${i}` });
    }
    // Still away at this point (the retry is seconds ahead).
    assert.equal(await a.page.getAttribute('body', 'data-conn'), 'reconnecting', 'page reconnected too early for this test');

    await a.page.waitForSelector('body[data-conn="connected"]', { timeout: 30000 });
    await a.page.waitForSelector('.msg-text >> text="while away 5"', { timeout: 10000 });
    await pub2.publish(room, { text: 'after' });
    await a.page.waitForSelector('.msg-text >> text="after"', { timeout: 5000 });
    assert.deepEqual(await messageTexts(a.page), ['before 1', 'before 2', ...missed, 'after']);
    assert.equal(await a.page.isHidden('#banner'), true);

    // The library's own view agrees: nothing was delivered twice.
    const last = await a.page.evaluate((r) => window.parley.lastSeq(r), room);
    assert.equal(last, 8);

    // And a reload (fresh history) shows the same list.
    await a.page.reload();
    await a.page.waitForSelector('.msg-text >> text="after"', { timeout: 10000 });
    assert.deepEqual(await messageTexts(a.page), ['before 1', 'before 2', ...missed, 'after']);
    pub2.close();
    assert.deepEqual(a.page.errors, []);
  } finally {
    await a.close();
    await server.stop();
  }
});

test('a message typed while reconnecting is sent once the connection is back', async () => {
  const dataDir = tmpDir('parley-data-');
  let server = await startServer({ dataDir });
  const port = server.port;
  const room = 'patient';
  const a = await openChat(browser, server, 'max', room);
  try {
    await server.stop();
    await a.page.waitForSelector('body[data-conn="reconnecting"]', { timeout: 5000 });
    await say(a.page, 'sent from the tunnel');
    server = await startServer({ port, dataDir });
    // A witness in the room counts what arrives.
    const pub = await nodeClient(server, 'ned');
    await pub.join(room);
    const seen = [];
    pub.on('message', (m) => { if (m.seq != null) seen.push(m.data && m.data.text); });
    // "Retry now" skips the backoff wait, unless the page's own backoff timer already
    // reconnected (then the button is gone): a DOM click, so that race cannot time out.
    await a.page.evaluate(() => {
      if (document.body.dataset.conn !== 'connected') document.querySelector('#retry-now')?.click();
    });
    await a.page.waitForSelector('body[data-conn="connected"]', { timeout: 15000 });
    await a.page.waitForSelector('.msg-text >> text="sent from the tunnel"', { timeout: 10000 });
    await until(() => seen.length >= 1, { timeout: 5000, what: 'the witness to get the message' });
    await sleep(300);
    assert.deepEqual(seen, ['sent from the tunnel']);
    assert.deepEqual(await messageTexts(a.page), ['sent from the tunnel']);
    pub.close();
  } finally {
    await a.close();
    await server.stop();
  }
});
