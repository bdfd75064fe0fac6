#!/usr/bin/env node
// Reference peer: Socket.IO 4 (websocket transport only) with Parley's room semantics.
// Events (the contract with parley-bench --protocol socketio, see bench/sio.c):
//   client -> server  "join"    {room} (or "room")     ack: {room, members}
//   client -> server  "publish" {room, data}           ack (if asked): {} or {error}
//   server -> client  "message" {room, from, data}     to every member, publisher included
// io.to(room).emit() encodes the packet once for all members (Socket.IO's adapter).
// Usage: node socketio-server.js [--port N] [--host ADDR]  (prints msg=listening port=N on stderr)
'use strict';
const http = require('http');
const { Server } = require('socket.io');

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const port = Number(arg('--port', '8082'));
const host = arg('--host', '127.0.0.1');
const ROOM_RE = /^[A-Za-z0-9_\-.:@]{1,128}$/;

const httpServer = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.writeHead(200); res.end('ok'); return; }
  res.writeHead(404); res.end();
});
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 65536,
});

io.on('connection', (socket) => {
  socket.on('join', (arg, ack) => {
    // {room} (parleyd's mapping, what parley-bench sends) or a bare room name
    const room = arg && typeof arg === 'object' ? arg.room : arg;
    if (typeof room !== 'string' || !ROOM_RE.test(room)) {
      if (typeof ack === 'function') ack({ error: 'bad_room' });
      return;
    }
    socket.join(room);
    if (typeof ack === 'function') {
      const set = io.sockets.adapter.rooms.get(room);
      ack({ room, members: set ? set.size : 0 });
    }
  });
  socket.on('publish', (msg, ack) => {
    if (!msg || typeof msg.room !== 'string' || !socket.rooms.has(msg.room)) {
      if (typeof ack === 'function') ack({ error: 'not_member' });
      return;
    }
    io.to(msg.room).emit('message', { room: msg.room, from: socket.id, data: msg.data });
    if (typeof ack === 'function') ack({});
  });
});

httpServer.listen(port, host, () => {
  process.stderr.write(`level=info msg=listening host=${host} port=${httpServer.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
