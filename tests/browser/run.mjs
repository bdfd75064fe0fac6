// Entry point of the `browser` meson suite: checks the npm dependencies are installed, then runs
// node's test runner on the test files one at a time (each drives a real chromium + parleyd).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
if (!fs.existsSync(path.join(here, 'node_modules', 'playwright-core', 'package.json'))) {
  console.error('tests/browser/node_modules is missing: install the browser test dependencies with ' +
    'the README\'s test command (it runs `npm ci` in tests/browser; chromium comes from ' +
    '`apt-get install -y chromium`).');
  process.exit(1);
}
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromium)) {
  console.error(`${chromium} is missing: apt-get install -y chromium (see the README's test command)`);
  process.exit(1);
}
const files = fs.readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort();
// Node 20 has WebSocket behind a flag; the tests use it for their protocol-level clients.
const flags = typeof WebSocket === 'undefined' ? ['--experimental-websocket'] : [];
// PARLEY_TLS=1 (meson test browser_tls): the same suite against parleyd's own TLS, with a
// self-signed certificate; Node's WebSocket clients must accept it too.
const env = process.env.PARLEY_TLS === '1' ? { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: '0' } : process.env;
const r = spawnSync(process.execPath, [...flags, '--test', '--test-concurrency=1', ...files],
  { cwd: here, stdio: 'inherit', env });
process.exit(r.status ?? 1);
