// Browser test of a crash: parleyd is killed with SIGKILL while a chat page is open and restarts on
// the same data dir and port. The server lost the messages it had delivered but not yet written
// (and the seqs it had handed out are never handed out again), so the page must reset the room,
// then show every message published after the restart, and its own message that was cut off by
// the crash, each exactly once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openChat, messageTexts, say, until, nodeClient, tmpDir, sleep,
} from './harness.mjs';

let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

test('a page stays open across kill -9 and a restart, then shows new messages, none twice', async () => {
  const dataDir = tmpDir('parley-data-');
  // A long flush interval: only the durable message is on disk when the server dies.
  let server = await startServer({ dataDir, extraArgs: ['--flush-interval-ms', '10000'] });
  const port = server.port;
  const room = 'crashy';
  const a = await openChat(browser, server, 'kim', room);
  try {
    const pub = await nodeClient(server, 'lee');
    await pub.join(room);
    await pub.publish(room, { text: 'kept' }, { durable: true });
    await pub.publish(room, { text: 'lost 1' });
    await pub.publish(room, { text: 'lost 2' });
    await a.page.waitForSelector('.msg-text >> text="lost 2"');
    assert.deepEqual(await messageTexts(a.page), ['kept', 'lost 1', 'lost 2']);
    const seenBefore = await a.page.evaluate((r) => window.parley.lastSeq(r), room);
    assert.equal(seenBefore, 3);
    pub.close();

    // The page sends a message the server will never answer: it is frozen, then killed.
    server.proc.kill('SIGSTOP');
    await say(a.page, 'typed before the crash');
    await sleep(300); // into the kernel's socket buffer
    await server.kill9();
    await a.page.waitForSelector('body[data-conn="reconnecting"]', { timeout: 5000 });
    await until(() => a.page.$eval('#banner', (b) => Number(b.dataset.retryAt || 0) - Date.now() > 2500),
      { timeout: 20000, interval: 100, what: 'a reconnect delay > 2.5 s' });

    server = await startServer({ port, dataDir });
    const pub2 = await nodeClient(server, 'lee');
    const j = await pub2.join(room);
    assert.ok(j.seq > seenBefore, `seq after the crash (${j.seq}) must be above every seq seen (${seenBefore})`);
    const r1 = await pub2.publish(room, { text: 'after 1' });
    assert.ok(r1.seq > seenBefore);
    assert.equal(await a.page.getAttribute('body', 'data-conn'), 'reconnecting', 'page reconnected too early for this test');

    await a.page.click('#retry-now');
    await a.page.waitForSelector('body[data-conn="connected"]', { timeout: 15000 });
    await a.page.waitForSelector('.msg-text >> text="after 1"', { timeout: 10000 });
    await a.page.waitForSelector('.msg-text >> text="typed before the crash"', { timeout: 10000 });
    await pub2.publish(room, { text: 'after 2' });
    await a.page.waitForSelector('.msg-text >> text="after 2"', { timeout: 5000 });
    await sleep(300); // anything delivered twice would be here by now
    // The room was reset to what the server has: the lost messages are gone, the new ones shown
    // once, the cut-off message resent (same key) once.
    const expected = ['kept', 'after 1', 'typed before the crash', 'after 2'];
    assert.deepEqual(await messageTexts(a.page), expected);
    const last = await a.page.evaluate((r) => window.parley.lastSeq(r), room);
    assert.ok(last > r1.seq, `page lastSeq ${last}`);

    // The server stored each once: a fresh page shows the same list.
    await a.page.reload();
    await a.page.waitForSelector('.msg-text >> text="after 2"', { timeout: 10000 });
    assert.deepEqual(await messageTexts(a.page), expected);
    pub2.close();
    assert.deepEqual(a.page.errors, []);
  } finally {
    await a.close();
    await server.stop();
  }
});
