// A page that loads socket.io-client's browser bundle (default options: polling, then the upgrade)
// chats with the native chat page in one room.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, launchBrowser, openChat, messageTexts, say, until, REPO, WEB_ROOT } from './harness.mjs';

const BUNDLE = path.join(REPO, 'tests', 'sio', 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js');

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>socket.io page</title>
<ul id="log"></ul>
<script src="socket.io.min.js"></script>
<script>
  const room = location.hash.slice(1);
  const socket = io({ auth: { name: 'sockpage' } });
  window.got = [];
  window.transport = () => socket.io.engine && socket.io.engine.transport.name;
  socket.on('message', (m) => {
    window.got.push(m.data && m.data.text);
    const li = document.createElement('li');
    li.textContent = m.from + ': ' + (m.data && m.data.text);
    document.getElementById('log').append(li);
  });
  socket.on('connect', async () => {
    const r = await socket.emitWithAck('join', { room, presence: true });
    document.body.dataset.joined = String(r.ok);
  });
  window.say = (text) => socket.emitWithAck('publish', { room, data: { text } });
</script>`;

let server, browser, webRoot;

before(async () => {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm ci in tests/sio`);
  // the web client, plus the Socket.IO page and bundle, served by parleyd
  webRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-sio-web-'));
  for (const f of fs.readdirSync(WEB_ROOT)) fs.copyFileSync(path.join(WEB_ROOT, f), path.join(webRoot, f));
  fs.copyFileSync(BUNDLE, path.join(webRoot, 'socket.io.min.js'));
  fs.writeFileSync(path.join(webRoot, 'sio.html'), PAGE);
  server = await startServer({ extraArgs: ['--web-root', webRoot] });
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) assert.equal(await server.stop(), 0, server.log());
});

test('a socket.io-client page and the native chat page in one room', async () => {
  const chat = await openChat(browser, server, 'nat', 'mixed');
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(`${server.url}/sio.html#mixed`);
    await page.waitForSelector('body[data-joined="true"]', { state: 'attached', timeout: 10000 });
    // the Socket.IO user shows up in the chat page's people list
    await chat.page.waitForSelector('#people-list .person[data-user="sockpage"]', { timeout: 5000 });
    // Socket.IO -> native
    const r = await page.evaluate(() => window.say('hello from socket.io'));
    assert.equal(r.ok, true);
    await chat.page.waitForSelector('.msg-text >> text="hello from socket.io"', { timeout: 5000 });
    // native -> Socket.IO
    await say(chat.page, 'hello from the chat page');
    await until(async () => (await page.evaluate(() => window.got)).includes('hello from the chat page'),
      { what: 'the chat page message on the socket.io page' });
    // The chat page shows its own message when the server echoes it: wait for that too.
    await chat.page.waitForSelector('.msg-text >> text="hello from the chat page"', { timeout: 5000 });
    assert.deepEqual(await messageTexts(chat.page), ['hello from socket.io', 'hello from the chat page']);
    await until(async () => (await page.evaluate(() => window.transport())) === 'websocket',
      { what: 'the upgrade to websocket' });
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await chat.close();
  }
});
