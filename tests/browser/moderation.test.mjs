// Deleting messages in the chat page: "Delete" on one's own messages only, live removal on every
// page, tombstones in the history a page loads, and the library's `deleted` event and delete().

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openChat, messageTexts, say, until, nodeClient, artifactPath,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    const code = await server.stop();
    if (code !== 0) console.log(`# parleyd exited with ${code} after SIGTERM (expected 0)`);
  }
});

test('own messages offer Delete; deleting removes them live and from loaded history', async () => {
  const a = await openChat(browser, server, 'alice', 'mod');
  const b = await openChat(browser, server, 'bob', 'mod');
  try {
    await say(a.page, 'oops wrong room');
    await say(a.page, 'keep this one');
    // Two pages' messages have no order until the server has seen them: bob speaks after
    // alice's message reached him.
    await until(async () => (await messageTexts(b.page)).includes('keep this one'), { what: "alice's message on bob's page" });
    await say(b.page, 'bob was here');
    for (const p of [a.page, b.page]) {
      await until(async () => (await messageTexts(p)).length === 3, { what: 'three messages' });
    }
    // Delete is offered on alice's two messages on her page, on none of them on bob's.
    assert.equal(await a.page.$$eval('#message-list .msg.mine .msg-delete', (els) => els.length), 2);
    assert.equal(await a.page.$$eval('#message-list .msg:not(.mine) .msg-delete', (els) => els.length), 0);
    assert.equal(await b.page.$$eval('#message-list .msg .msg-delete', (els) => els.length), 1); // his own

    const target = a.page.locator('#message-list .msg', { hasText: 'oops wrong room' });
    await target.hover();
    await a.page.screenshot({ path: artifactPath('moderation-delete-hover.png') });
    await target.locator('.msg-delete').click();
    for (const p of [a.page, b.page]) {
      await until(async () => !(await messageTexts(p)).includes('oops wrong room'),
        { timeout: 5000, what: 'the deleted message to disappear' });
      assert.deepEqual(await messageTexts(p), ['keep this one', 'bob was here']);
    }
    // A page that loads the room afresh gets the tombstone in its history: still gone.
    await b.page.reload();   // the name is remembered (localStorage): straight back in
    await b.page.waitForSelector('body[data-conn="connected"]');
    await until(async () => (await messageTexts(b.page)).length === 2, { what: 'history after reload' });
    assert.deepEqual(await messageTexts(b.page), ['keep this one', 'bob was here']);
    assert.deepEqual(a.page.errors, []);
    assert.deepEqual(b.page.errors, []);
  } finally {
    await a.close();
    await b.close();
  }
});

test('parley.js: delete(), the deleted event, and tombstones in a replay', async () => {
  const alice = await nodeClient(server, 'alice2');
  const bob = await nodeClient(server, 'bob2');
  try {
    await alice.join('lib');
    await bob.join('lib');
    const deleted = [];
    bob.on('deleted', (ev) => deleted.push(ev));
    const { seq } = await alice.publish('lib', { text: 'gone soon' });
    await alice.publish('lib', { text: 'stays' });
    await assert.rejects(bob.delete('lib', seq), (e) => e.code === 'forbidden');
    assert.deepEqual(await alice.delete('lib', seq), { room: 'lib', seq });
    await until(() => deleted.length === 1, { what: 'deleted event' });
    assert.deepEqual(deleted[0], { room: 'lib', seq });
    await assert.rejects(alice.delete('lib', 999), (e) => e.code === 'not_found');

    // A join with since replays the tombstone as a `deleted` event, not as a message.
    const carol = await nodeClient(server, 'carol2');
    const msgs = [];
    const dels = [];
    carol.on('message', (m) => msgs.push(m));
    carol.on('deleted', (ev) => dels.push(ev));
    await carol.join('lib', { since: 0 });
    assert.deepEqual(msgs.map((m) => m.data.text), ['stays']);
    assert.deepEqual(dels.map((d) => [d.room, d.seq]), [['lib', seq]]);
    assert.equal(carol.lastSeq('lib'), seq + 1);
    carol.close();
  } finally {
    alice.close();
    bob.close();
  }
});
