// web-client/parley.js against a real cluster (docs/cluster.md): two parleyd nodes on a real
// redis-server. Redis is stopped, a persisted publish is made (the node answers `unavailable` at
// once), Redis is started again: the library keeps resending the publish with its key until the
// node accepts it, so the publish resolves once Redis is back, and the message is stored once, on
// both nodes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { startServer, nodeClient, sleep, tmpDir, until } from './harness.mjs';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

/** One inline command to redis; resolves to the first reply line (e.g. "+PONG"). */
function redisCmd(port, line) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.setTimeout(2000, () => { s.destroy(); reject(new Error('redis timeout')); });
    s.on('connect', () => s.write(line + '\r\n'));
    s.on('data', (d) => { buf += d; if (buf.includes('\r\n')) { s.end(); resolve(buf.split('\r\n')[0]); } });
    s.on('error', reject);
  });
}

class Redis {
  constructor(port, dir) { this.port = port; this.dir = dir; this.proc = null; }
  async start() {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--protected-mode', 'no',
      '--logfile', path.join(this.dir, 'redis.log')], { stdio: 'ignore' });
    this.exited = new Promise((r) => this.proc.on('exit', r));
    await until(async () => (await redisCmd(this.port, 'PING')) === '+PONG', { what: 'redis PING' });
  }
  async stop() {
    if (this.proc && this.proc.exitCode === null) { this.proc.kill('SIGTERM'); await this.exited; }
  }
}

async function metric(server, name) {
  const body = await (await fetch(`${server.adminUrl}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.split(' ').pop()) : NaN;
}

test('a keyed publish made while Redis is down resolves once Redis is back, stored once',
  { skip: haveRedis ? false : 'redis-server not installed (scripts/deps.sh --test)' }, async () => {
    const redis = new Redis(await freePort(), tmpDir('parley-redis-'));
    await redis.start();
    const nodes = [];
    try {
      for (const id of ['n1', 'n2']) {
        nodes.push(await startServer({ extraArgs: ['--cluster', `redis://127.0.0.1:${redis.port}`,
          '--node-id', id, '--cluster-timeout-ms', '2000', '--cluster-hold-ms', '2000'] }));
      }
      await until(() => nodes.every((n) => n.log().includes('msg=cluster_ready')), { what: 'cluster_ready' });
      const c = await nodeClient(nodes[0], 'ann');
      await c.join('retry');
      const first = await c.publish('retry', { n: 0 });
      assert.equal(first.seq, 1);

      await redis.stop();
      await until(() => nodes[0].log().includes('msg=cluster_redis_lost'), { what: 'the node to notice' });
      const before = await metric(nodes[0], 'parley_cluster_unavailable_total');
      let settled = null;
      const p = c.publish('retry', { n: 1 }, { timeout: 30000 }).then(
        (r) => { settled = { ok: r }; return r; }, (e) => { settled = { err: e }; throw e; });
      // refused with unavailable, and resent: the counter grows while the promise stays pending
      await until(async () => (await metric(nodes[0], 'parley_cluster_unavailable_total')) >= before + 2,
        { what: 'at least two refused attempts' });
      await sleep(300);
      assert.equal(settled, null, 'the publish settled while Redis was down');

      await redis.start();
      const r = await p;
      assert.equal(r.seq, 2);
      // stored once, under that seq, on both nodes
      for (const n of nodes) {
        const h = await nodeClient(n, 'reader');
        await h.join('retry');
        const page = await until(async () => {
          const d = await h.history('retry', { limit: 100 });
          return d.messages.length >= 2 ? d : null;
        }, { what: 'both messages in the history of ' + n.port });
        assert.deepEqual(page.messages.map((m) => [m.seq, m.data.n]), [[1, 0], [2, 1]]);
        h.close();
      }
      c.close();
    } finally {
      for (const n of nodes) assert.equal(await n.stop(), 0, 'parleyd exit status');
      await redis.stop();
    }
  });
