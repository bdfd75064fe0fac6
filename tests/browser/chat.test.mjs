// Browser tests of the chat page against the real parleyd: chatting, presence, typing,
// history after reload, XSS, and screenshots for a human to look at.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openChat, messageTexts, say, until, nodeClient, artifactPath, sleep,
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
    if (code !== 0) console.log(`# parleyd exited with ${code} after SIGTERM (expected 0)\n# ${server.log().split('\n').slice(-5).join('\n# ')}`);
  }
});

test('two pages with different names chat in both directions in real time', async () => {
  const a = await openChat(browser, server, 'alice', 'duo');
  const b = await openChat(browser, server, 'bob', 'duo');
  try {
    await say(a.page, 'hi bob');
    await b.page.waitForSelector('.msg-text >> text="hi bob"', { timeout: 5000 });
    await say(b.page, 'hello alice\nsecond line');
    await a.page.waitForSelector('.msg-text >> text=second line', { timeout: 5000 });

    for (const p of [a.page, b.page]) {
      assert.deepEqual(await messageTexts(p), ['hi bob', 'hello alice\nsecond line']);
      // Sender and a local time are shown with each message.
      const senders = await p.$$eval('#message-list .msg .msg-from', (els) => els.map((e) => e.textContent));
      assert.deepEqual(senders, ['alice', 'bob']);
      const times = await p.$$eval('#message-list .msg time', (els) => els.map((e) => e.textContent));
      assert.equal(times.length, 2);
      for (const t of times) assert.match(t, /^\d{1,2}:\d{2}/);
    }
    // Shift+Enter adds a line instead of sending.
    await a.page.fill('#message-input', 'line one');
    await a.page.press('#message-input', 'Shift+Enter');
    await a.page.keyboard.type('line two');
    assert.equal(await a.page.inputValue('#message-input'), 'line one\nline two');
    await a.page.press('#message-input', 'Enter');
    await b.page.waitForSelector('.msg-text >> text=line two', { timeout: 5000 });
    assert.equal(await a.page.inputValue('#message-input'), '');
    assert.deepEqual(a.page.errors, []);
    assert.deepEqual(b.page.errors, []);
  } finally {
    await a.close();
    await b.close();
  }
});

test('presence list and typing indicator appear and disappear', async () => {
  const a = await openChat(browser, server, 'carol', 'team');
  try {
    await a.page.waitForSelector('#people-list .person[data-user="carol"]', { timeout: 5000 });
    const b = await openChat(browser, server, 'dave', 'team');
    // Dave appears in Carol's list, and Dave's initial list (presence command) holds both.
    await a.page.waitForSelector('#people-list .person[data-user="dave"]', { timeout: 5000 });
    await b.page.waitForSelector('#people-list .person[data-user="carol"]', { timeout: 5000 });
    assert.equal(await a.page.textContent('#people-count'), '2');

    // Typing: shown while Dave types, gone when he clears the box.
    await b.page.click('#message-input');
    await b.page.keyboard.type('thinking');
    await a.page.waitForSelector('#typing >> text=dave is typing…', { timeout: 5000 });
    await b.page.fill('#message-input', '');
    await b.page.dispatchEvent('#message-input', 'input');
    await until(async () => (await a.page.textContent('#typing')) === '', { timeout: 5000, what: 'typing indicator to clear' });

    // Typing again, then sending: the message replaces the indicator.
    await b.page.keyboard.type('done');
    await a.page.waitForSelector('#typing >> text=dave is typing…', { timeout: 5000 });
    await b.page.press('#message-input', 'Enter');
    await a.page.waitForSelector('.msg-text >> text="done"', { timeout: 5000 });
    await until(async () => (await a.page.textContent('#typing')) === '', { timeout: 5000, what: 'typing indicator to clear after send' });
    // The typing notes are volatile: they are not in the message list.
    assert.deepEqual(await messageTexts(a.page), ['done']);

    // Dave leaves (closes his page): he disappears from Carol's list.
    await b.close();
    await until(async () => !(await a.page.$('#people-list .person[data-user="dave"]')),
      { timeout: 10000, what: 'dave to leave the presence list' });
    assert.equal(await a.page.textContent('#people-count'), '1');
  } finally {
    await a.close();
  }
});

test('reloading the page shows the room history; scrolling up loads older pages', async () => {
  const room = 'archive';
  const pub = await nodeClient(server, 'feeder');
  try {
    await pub.join(room);
    // 130 stored messages: more than two history pages of 50.
    for (let i = 1; i <= 130; i++) await pub.publish(room, { text: `old ${i}` });
    const a = await openChat(browser, server, 'erin', room);
    try {
      await a.page.waitForSelector('.msg-text >> text="old 130"', { timeout: 10000 });
      await say(a.page, 'after the backlog');
      await a.page.waitForSelector('.msg-text >> text="after the backlog"');
      await a.page.reload();
      await a.page.waitForSelector('body[data-conn="connected"]');
      await a.page.waitForSelector('.msg-text >> text="after the backlog"', { timeout: 10000 });
      let texts = await messageTexts(a.page);
      assert.equal(texts[texts.length - 1], 'after the backlog');
      assert.equal(texts[texts.length - 2], 'old 130');
      assert.ok(texts.length < 131, `first view should be one page, got ${texts.length} messages`);
      // The view is pinned to the bottom after load.
      const gap = await a.page.$eval('#messages', (s) => s.scrollHeight - s.scrollTop - s.clientHeight);
      assert.ok(gap < 60, `view should start at the bottom (gap ${gap})`);

      // Scroll to the top repeatedly: older pages load until the start of the room.
      for (let i = 0; i < 10; i++) {
        await a.page.$eval('#messages', (s) => { s.scrollTop = 0; s.dispatchEvent(new Event('scroll')); });
        await sleep(300);
        texts = await messageTexts(a.page);
        if (texts[0] === 'old 1') break;
      }
      const want = [];
      for (let i = 1; i <= 130; i++) want.push(`old ${i}`);
      want.push('after the backlog');
      assert.deepEqual(texts, want);
      assert.match(await a.page.textContent('#history-status'), /start of #archive/);
    } finally {
      await a.close();
    }
  } finally {
    pub.close();
  }
});

test('a new message keeps the view at the bottom unless the reader scrolled up', async () => {
  const room = 'scroll';
  const pub = await nodeClient(server, 'talker');
  try {
    await pub.join(room);
    const a = await openChat(browser, server, 'frank', room, { viewport: { width: 800, height: 500 } });
    try {
      // Published live, so the list overflows the view without needing history.
      for (let i = 1; i <= 40; i++) await pub.publish(room, { text: `msg ${i}` });
      await a.page.waitForSelector('.msg-text >> text="msg 40"');
      await pub.publish(room, { text: 'live 1' });
      await a.page.waitForSelector('.msg-text >> text="live 1"');
      await until(() => a.page.$eval('#messages', (s) => s.scrollHeight - s.scrollTop - s.clientHeight < 60),
        { timeout: 3000, what: 'view pinned to bottom' });
      // Reader scrolls up a little (not to the top, which would load history).
      await a.page.$eval('#messages', (s) => { s.scrollTop = s.scrollHeight - s.clientHeight - 300; s.dispatchEvent(new Event('scroll')); });
      const before = await a.page.$eval('#messages', (s) => s.scrollTop);
      await pub.publish(room, { text: 'live 2' });
      await a.page.waitForSelector('.msg-text >> text="live 2"');
      const afterTop = await a.page.$eval('#messages', (s) => s.scrollTop);
      assert.equal(afterTop, before, 'view must stay where the reader left it');
      await a.page.waitForSelector('#jump:not([hidden])');
      await a.page.click('#jump');
      await until(() => a.page.$eval('#messages', (s) => s.scrollHeight - s.scrollTop - s.clientHeight < 60),
        { timeout: 3000, what: 'jump to bottom' });
    } finally {
      await a.close();
    }
  } finally {
    pub.close();
  }
});

test('unread counts and deep links', async () => {
  const a = await openChat(browser, server, 'gina', 'one');
  const pub = await nodeClient(server, 'hal');
  try {
    await pub.join('two');
    // Deep link: changing the hash joins and shows the room.
    await a.page.evaluate(() => { location.hash = '#two'; });
    await a.page.waitForSelector('.room-item[data-room="two"][aria-current="page"]');
    await a.page.click('.room-item[data-room="one"]');
    await a.page.waitForSelector('.room-item[data-room="one"][aria-current="page"]');
    await pub.publish('two', { text: 'ping 1' });
    await pub.publish('two', { text: 'ping 2' });
    await a.page.waitForSelector('.room-item[data-room="two"] .badge >> text="2"', { timeout: 5000 });
    await a.page.click('.room-item[data-room="two"]');
    await a.page.waitForSelector('.msg-text >> text="ping 2"');
    assert.equal(await a.page.$('.room-item[data-room="two"] .badge'), null);
    // Leaving removes the room from the list.
    await a.page.click('#leave-room');
    await a.page.waitForSelector('.room-item[data-room="two"]', { state: 'detached' });
  } finally {
    pub.close();
    await a.close();
  }
});

test('user text is rendered as text and runs nothing', async () => {
  const xss = '<img src=x onerror=alert(1)>';
  const evilName = '<b onmouseover=alert(2)>mal</b>';
  const a = await openChat(browser, server, 'ivy', 'safe');
  const b = await openChat(browser, server, evilName, 'safe');
  try {
    await say(b.page, xss);
    await a.page.waitForSelector('#message-list .msg-text', { timeout: 5000 });
    await sleep(500); // give a broken page the time to fire onerror
    for (const p of [a.page, b.page]) {
      assert.deepEqual(await messageTexts(p), [xss]);
      assert.equal(await p.$$eval('#message-list img, #people-list img, #message-list b, #people-list b', (e) => e.length), 0);
      const from = await p.$eval('#message-list .msg-from', (e) => e.textContent);
      assert.equal(from, evilName);
      await p.hover('#message-list .msg-from');
      assert.deepEqual(p.dialogs, [], 'no dialog may fire');
    }
    await a.page.waitForSelector(`#people-list .person-name >> text="${evilName}"`);
    // The typed string round-trips into the room title via the deep link too.
    assert.deepEqual(a.page.errors, []);
  } finally {
    await a.close();
    await b.close();
  }
});

test('screenshots of the chat page (desktop and phone)', async () => {
  const room = 'design';
  const pub = await nodeClient(server, 'Maya Chen');
  const pub2 = await nodeClient(server, 'Jonas');
  try {
    await pub.join(room);
    await pub2.join(room);
    await pub.publish(room, { text: 'Morning all! The new onboarding flow is live on staging.' });
    await pub2.publish(room, { text: 'Nice. I will run through it after standup.' });
    await pub2.publish(room, { text: 'Any known issues?' });
    await pub.publish(room, { text: 'Only one: the avatar upload is slow on big images. Tracking it in #perf.' });
    const a = await openChat(browser, server, 'Sam', room);
    try {
      await a.page.evaluate(() => { location.hash = '#perf'; });
      await a.page.waitForSelector('.room-item[data-room="perf"][aria-current="page"]');
      await a.page.evaluate(() => { location.hash = '#design'; });
      await a.page.waitForSelector('.room-item[data-room="design"][aria-current="page"]');
      await say(a.page, 'Thanks Maya, I can take a look at the image resizing this afternoon.');
      await a.page.waitForSelector('.msg-text >> text=image resizing');
      await pub2.publish(room, { typing: true }, { persist: false });
      await a.page.waitForSelector('#typing >> text=Jonas is typing…');
      await a.page.screenshot({ path: artifactPath('chat-desktop.png') });
      await a.page.setViewportSize({ width: 390, height: 780 });
      await sleep(300);
      await a.page.screenshot({ path: artifactPath('chat-phone.png') });
      await a.page.click('#open-sidebar');
      await sleep(400);
      await a.page.screenshot({ path: artifactPath('chat-phone-rooms.png') });
      await a.page.keyboard.press('Escape');
      // At phone width nothing overflows sideways.
      const overflow = await a.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than a phone screen`);
    } finally {
      await a.close();
    }
    // The name picker a first-time visitor sees.
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p = await ctx.newPage();
    await p.goto(`${server.url}/#design`);
    await p.waitForSelector('#name-input');
    await p.screenshot({ path: artifactPath('welcome.png') });
    await ctx.close();
  } finally {
    pub.close();
    pub2.close();
  }
});
