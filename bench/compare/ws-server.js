#!/usr/bin/env node
// Reference peer: the `ws` 8 library speaking the subset of Parley protocol v1 that
// parley-bench uses (welcome, join, leave, publish, ping -> message, reply, error), with
// Parley's room semantics: publish broadcasts to every member of the room, the publisher
// included (its copy before its reply). Nothing is stored, so there is no seq.
// Each broadcast is JSON-encoded once and the same Buffer is handed to every socket.
// Usage: node ws-server.js [--port N] [--host ADDR]   (prints msg=listening port=N on stderr)
'use strict';
const http = require('http');
const crypto = require('crypto');
const { WebSocketServer } = require('ws');

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const port = Number(arg('--port', '8081'));
const host = arg('--host', '127.0.0.1');

const rooms = new Map(); // room name -> Set of sockets
const ROOM_RE = /^[A-Za-z0-9_\-.:@]{1,128}$/;

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.writeHead(200); res.end('ok'); return; }
  res.writeHead(404); res.end();
});
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false, maxPayload: 65536 });

function reply(ws, id, data) {
  if (id !== undefined) ws.send(JSON.stringify({ type: 'reply', id, ok: true, data }));
}
function fail(ws, id, code, message) {
  const error = { code, message };
  ws.send(JSON.stringify(id !== undefined ? { type: 'reply', id, ok: false, error }
                                          : { type: 'error', error }));
}

wss.on('connection', (ws) => {
  ws.user = 'guest-' + crypto.randomBytes(8).toString('hex');
  ws.rooms = new Set();
  ws.send(JSON.stringify({
    type: 'welcome', session: crypto.randomBytes(8).toString('hex'), user: ws.user,
    server: 'ws-peer/0.1.0', limits: { max_message_size: 65536 },
  }));
  ws.on('message', (raw, isBinary) => {
    if (isBinary) { ws.close(1003); return; }
    let m;
    try { m = JSON.parse(raw); } catch (e) { fail(ws, undefined, 'bad_json', 'not JSON'); return; }
    if (!m || typeof m !== 'object' || Array.isArray(m)) { fail(ws, undefined, 'bad_json', 'not an object'); return; }
    const id = Number.isInteger(m.id) ? m.id : undefined;
    switch (m.type) {
      case 'hello':
        ws.user = String(m.name);
        reply(ws, id, { user: ws.user });
        break;
      case 'join': {
        if (typeof m.room !== 'string' || !ROOM_RE.test(m.room)) { fail(ws, id, 'bad_room', 'bad room'); return; }
        let set = rooms.get(m.room);
        if (!set) { set = new Set(); rooms.set(m.room, set); }
        set.add(ws);
        ws.rooms.add(m.room);
        reply(ws, id, { room: m.room, seq: 0, members: set.size });
        break;
      }
      case 'leave': {
        const set = rooms.get(m.room);
        if (!set || !set.has(ws)) { fail(ws, id, 'not_member', 'not a member'); return; }
        set.delete(ws);
        ws.rooms.delete(m.room);
        if (set.size === 0) rooms.delete(m.room);
        reply(ws, id, { room: m.room });
        break;
      }
      case 'publish': {
        const set = rooms.get(m.room);
        if (!set || !set.has(ws)) { fail(ws, id, 'not_member', 'not a member'); return; }
        if (!('data' in m)) { fail(ws, id, 'bad_request', 'data is required'); return; }
        // Encoded once; every member gets the same bytes.
        const out = Buffer.from(JSON.stringify({
          type: 'message', room: m.room, ts: Date.now(), from: ws.user, data: m.data,
        }));
        for (const peer of set) {
          if (peer.readyState === 1) peer.send(out, { binary: false });
        }
        reply(ws, id, {});
        break;
      }
      case 'ping':
        reply(ws, id, { ts: Date.now() });
        break;
      default:
        fail(ws, id, 'unknown_type', 'unknown type');
    }
  });
  ws.on('close', () => {
    for (const r of ws.rooms) {
      const set = rooms.get(r);
      if (set) { set.delete(ws); if (set.size === 0) rooms.delete(r); }
    }
  });
  ws.on('error', () => {});
});

server.listen(port, host, () => {
  process.stderr.write(`level=info msg=listening host=${host} port=${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
