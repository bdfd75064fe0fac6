// Shared helpers for the browser suite: start/stop the real parleyd, drive Debian's chromium
// through playwright-core, and a Node-side protocol client (web-client/parley.js itself).
//
// Environment:
//   PARLEYD            path of the parleyd binary (required)
//   PARLEY_WEB_ROOT    web client directory (default: <repo>/web-client)
//   PARLEY_ARTIFACTS   where screenshots go (default: <repo>/tests/artifacts, git-ignored)
//   CHROMIUM           browser binary (default: /usr/bin/chromium)
//   PARLEY_TLS=1       parleyd serves https/wss itself (--tls-cert/--tls-key) with a self-signed
//                      certificate made by openssl; chromium runs with --ignore-certificate-errors
//                      and Node's clients with NODE_TLS_REJECT_UNAUTHORIZED=0 (run.mjs sets it)

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');
export const WEB_ROOT = process.env.PARLEY_WEB_ROOT || path.join(REPO, 'web-client');
export const ARTIFACTS = process.env.PARLEY_ARTIFACTS || path.join(REPO, 'tests', 'artifacts');

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  throw new Error('playwright-core is not installed: run `npm ci` in tests/browser (see README, "Tests")');
}

const { Parley } = await import(pathToFileURL(path.join(WEB_ROOT, 'parley.js')).href);
export { Parley };

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** Polls fn (sync or async) until it returns a truthy value; bounded by timeout. */
export async function until(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(interval);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
}

export function tmpDir(prefix = 'parley-browser-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const TLS = process.env.PARLEY_TLS === '1';
let tlsFiles = null;

/** A self-signed certificate for 127.0.0.1/localhost, made once per process. */
function tlsArgs() {
  if (!TLS) return [];
  if (!tlsFiles) {
    const dir = tmpDir('parley-tls-');
    tlsFiles = { cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
      '-subj', '/CN=localhost', '-keyout', tlsFiles.key, '-out', tlsFiles.cert,
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl could not make a test certificate:\n${r.stderr}`);
  }
  return ['--tls-cert', tlsFiles.cert, '--tls-key', tlsFiles.key];
}

/**
 * Starts parleyd and waits for its `msg=listening ... port=N` line on stderr.
 * Returns { port, url, wsUrl, log(), stop() }; stop() sends SIGTERM and resolves to the exit code.
 */
export async function startServer({ port = 0, dataDir, extraArgs = [] } = {}) {
  const exe = process.env.PARLEYD;
  if (!exe) throw new Error('PARLEYD is not set (path of the parleyd binary)');
  if (!fs.existsSync(exe)) throw new Error(`PARLEYD=${exe} does not exist`);
  dataDir = dataDir || tmpDir('parley-data-');
  // --admin-listen: an ephemeral admin port, never the default 9180 (parallel runs would collide)
  const args = ['--host', '127.0.0.1', '--port', String(port), '--admin-listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--web-root', WEB_ROOT, '--log-level', 'info', ...tlsArgs(), ...extraArgs];
  const proc = spawn(exe, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig)));
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`parleyd did not log msg=listening within 20 s:\n${stderr}`)), 20000);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19)); // keep the tail only
      const m = /msg=listening\b[^\n]*\bport=(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`parleyd exited (${code}) before listening:\n${stderr}`)); });
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
  const p = await listening;
  // the admin listener logs first (server.c): its port is in the log by now
  const am = /msg=admin_listening\b[^\n]*\bport=(\d+)/.exec(stderr);
  const server = {
    proc, port: p, dataDir,
    adminPort: am ? Number(am[1]) : null,
    adminUrl: am ? `http://127.0.0.1:${am[1]}` : null,
    url: `${TLS ? 'https' : 'http'}://127.0.0.1:${p}`,
    wsUrl: `${TLS ? 'wss' : 'ws'}://127.0.0.1:${p}/ws`,
    log: () => stderr,
    exitCode: null,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      server.exitCode = await exited;
      clearTimeout(t);
      return server.exitCode;
    },
    /** A crash: SIGKILL, no shutdown. Resolves once the process is gone. */
    async kill9() {
      proc.kill('SIGKILL');
      server.exitCode = await exited;
      return server.exitCode;
    },
  };
  return server;
}

/** Launches headless chromium (Debian's) with a fresh profile (playwright makes a temporary
 *  --user-data-dir for every launch and removes it on close). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...(TLS ? ['--ignore-certificate-errors'] : [])],
    timeout: 60000,
  });
}

/**
 * Opens the chat page as `name` in its own browser context (own localStorage) at /#room and
 * waits until it is connected with the room on screen. Every dialog is recorded and dismissed.
 */
export async function openChat(browser, server, name, room = 'lobby', { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.dialogs = [];
  page.errors = [];
  page.on('dialog', (d) => { page.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(`${server.url}/#${room}`);
  await page.fill('#name-input', name);
  await page.press('#name-input', 'Enter');
  await waitConnected(page);
  await page.waitForSelector(`.room-item[data-room="${room}"][aria-current="page"]`);
  return { page, context, close: () => context.close() };
}

export function waitConnected(page, timeout = 15000) {
  return page.waitForSelector('body[data-conn="connected"]', { timeout });
}

/** Texts of the messages on screen, in display order. */
export function messageTexts(page) {
  return page.$$eval('#message-list .msg .msg-text', (els) => els.map((e) => e.textContent));
}

/** Sends a chat message through the UI: type it and press Enter. */
export async function say(page, text) {
  await page.fill('#message-input', text);
  await page.press('#message-input', 'Enter');
}

/** A protocol client in Node (the library under test, on Node's WebSocket). */
export async function nodeClient(server, name) {
  if (typeof WebSocket === 'undefined') {
    throw new Error('global WebSocket missing: run node with --experimental-websocket (Node 20)');
  }
  const c = new Parley(server.wsUrl, { name, reconnect: false, pingInterval: 0 });
  await c.connect();
  return c;
}

export function artifactPath(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}
