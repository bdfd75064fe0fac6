// app.js — the Parley chat page. Plain DOM, no framework, no build step.
//
// Rule for this file: anything a user typed (names, room names, message text) reaches the DOM
// through textContent or attributes set with setAttribute/dataset, never through innerHTML.

import { Parley } from './parley.js';

const $ = (id) => document.getElementById(id);

const PAGE = 50;                 // history page size
const TYPING_SEND_MS = 3000;     // resend "typing" at most this often
const TYPING_SHOW_MS = 6000;     // hide someone's typing note after this much silence
const GROUP_MS = 5 * 60 * 1000;  // consecutive messages by one sender within this are grouped
const ROOM_RE = /^[A-Za-z0-9_.:@-]{1,128}$/;
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

const ERROR_WORDS = {
  bad_name: 'That name can’t be used. Use 1–32 characters without control characters.',
  bad_room: 'Room names may use letters, digits and _ - . : @ (at most 128).',
  not_member: 'You are not in that room any more.',
  too_many_rooms: 'You have joined as many rooms as the server allows. Leave one first.',
  too_large: 'That message is too large to send.',
  overloaded: 'The server is busy. Please try again in a moment.',
  storage_failed: 'The server cannot save messages right now.',
  timeout: 'The server did not answer in time.',
  disconnected: 'The connection dropped before the server answered.',
  unsupported: 'The server does not support that yet.',
  closed: 'The connection is closed.',
  internal: 'Something went wrong on the server.',
};

// ------------------------------------------------------------------ state

const saved = {
  get name() { return localStorage.getItem('parley.name') || ''; },
  set name(v) { localStorage.setItem('parley.name', v); },
  get rooms() {
    try { return JSON.parse(localStorage.getItem('parley.rooms') || '[]').filter((r) => ROOM_RE.test(r)); } catch (_) { return []; }
  },
  set rooms(v) { localStorage.setItem('parley.rooms', JSON.stringify(v)); },
};

let client = null;
let me = '';
let active = null;              // name of the room on screen
const rooms = new Map();        // room name -> view state (see newRoom)
let typingSent = { room: null, at: 0 };
let countdown = null;

function newRoom(name) {
  return {
    name,
    messages: [],        // sorted by seq, each a message frame
    seqs: new Set(),
    more: false,         // older history exists
    loadingOlder: false,
    historyReady: false,
    unread: 0,
    members: new Map(),  // user -> conns
    typing: new Map(),   // user -> timer
    pinned: true,        // view follows new messages
    scrollTop: null,     // remembered when switching rooms
    joined: false,
  };
}

// ------------------------------------------------------------------ helpers

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function words(err) {
  if (!err) return 'Unknown error.';
  return ERROR_WORDS[err.code] || err.message || String(err);
}

function toast(text, kind = 'error') {
  const t = el('div', 'toast toast-' + kind, text);
  $('toasts').append(t);
  setTimeout(() => t.classList.add('hide'), 5000);
  setTimeout(() => t.remove(), 5600);
  while ($('toasts').children.length > 4) $('toasts').firstChild.remove();
}

// A stable, pleasant colour per name: FNV-1a over the code points, picked from a palette.
const HUES = [212, 262, 330, 12, 36, 150, 176, 290, 95, 195];
function hue(name) {
  let h = 0x811c9dc5;
  for (const ch of name) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
  return HUES[h % HUES.length];
}

function avatar(name, cls = 'avatar') {
  const a = el('span', cls, [...name][0]?.toUpperCase() || '?');
  a.style.setProperty('--h', hue(name));
  a.setAttribute('aria-hidden', 'true');
  return a;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });

function dayLabel(ts) {
  const d = new Date(ts);
  const today = new Date();
  const yest = new Date(Date.now() - 864e5);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yest.toDateString()) return 'Yesterday';
  return dayFmt.format(d);
}

function isChat(m) {
  return !(m.data && typeof m.data === 'object' && 'typing' in m.data && !('text' in m.data));
}

function textOf(m) {
  const d = m.data;
  if (d && typeof d === 'object' && typeof d.text === 'string') return d.text;
  if (typeof d === 'string') return d;
  return JSON.stringify(d);
}

// ------------------------------------------------------------------ connection state

function showConn(ev) {
  document.body.dataset.conn = ev.state;
  clearInterval(countdown);
  countdown = null;
  const banner = $('banner');
  const retry = $('retry-now');
  const label = {
    idle: 'Not connected', connecting: 'Connecting…', connected: 'Connected',
    reconnecting: 'Reconnecting…', offline: 'Offline', closed: 'Disconnected',
  }[ev.state];
  $('conn-text').textContent = label;
  if (ev.state === 'connected' || ev.state === 'idle') {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  banner.dataset.kind = ev.state;
  retry.hidden = !(ev.delay > 0);
  const tick = () => {
    let t;
    if (ev.state === 'offline') t = 'You are offline. Parley will reconnect when the network is back.';
    else if (ev.state === 'closed') t = 'Disconnected.';
    else if (ev.state === 'connecting' && !ev.delay) t = 'Connecting…';
    else {
      const left = ev.retryAt ? Math.max(0, Math.ceil((ev.retryAt - Date.now()) / 1000)) : 0;
      t = left > 0 ? `Connection lost. Reconnecting in ${left} s…` : 'Connection lost. Reconnecting…';
    }
    $('banner-text').textContent = t;
  };
  tick();
  if (ev.retryAt) countdown = setInterval(tick, 250);
  banner.dataset.retryAt = ev.retryAt || '';
}

// ------------------------------------------------------------------ room list

function saveRooms() {
  saved.rooms = [...rooms.keys()];
}

function renderRoomList() {
  const list = $('room-list');
  list.replaceChildren();
  for (const r of rooms.values()) {
    const li = el('li');
    const b = el('button', 'room-item');
    b.type = 'button';
    b.dataset.room = r.name;
    if (r.name === active) b.setAttribute('aria-current', 'page');
    b.append(el('span', 'hash', '#'), el('span', 'room-item-name', r.name));
    if (r.unread > 0) {
      const badge = el('span', 'badge', r.unread > 99 ? '99+' : String(r.unread));
      badge.setAttribute('aria-label', `${r.unread} unread`);
      b.append(badge);
    }
    b.addEventListener('click', () => { location.hash = '#' + r.name; closeSidebar(); });
    li.append(b);
    list.append(li);
  }
  const total = [...rooms.values()].reduce((n, r) => n + r.unread, 0);
  // On a phone the room list is hidden: a dot on its button says another room has news.
  $('open-sidebar').classList.toggle('has-unread', total > 0);
  document.title = (total ? `(${total}) ` : '') + (active ? `#${active} · Parley` : 'Parley');
}

// ------------------------------------------------------------------ messages

function messageNode(m, prev) {
  const li = el('li', 'msg');
  if (m.seq != null) li.dataset.seq = m.seq;
  const ts = m.ts || Date.now();
  const grouped = prev && prev.from === m.from && ts - (prev.ts || 0) < GROUP_MS &&
    new Date(prev.ts).toDateString() === new Date(ts).toDateString();
  if (grouped) li.classList.add('cont');
  if (m.from === me) li.classList.add('mine');
  const time = el('time', 'msg-time', timeFmt.format(ts));
  time.dateTime = new Date(ts).toISOString();
  time.title = fullFmt.format(ts);
  if (!grouped) {
    li.append(avatar(m.from || '?'));
    const body = el('div', 'msg-body');
    const head = el('div', 'msg-head');
    head.append(el('span', 'msg-from', m.from || '?'), time);
    body.append(head, el('div', 'msg-text', textOf(m)));
    li.append(body);
  } else {
    const gutter = el('span', 'msg-gutter');
    gutter.append(time);
    const body = el('div', 'msg-body');
    body.append(el('div', 'msg-text', textOf(m)));
    li.append(gutter, body);
  }
  return li;
}

function dayNode(ts) {
  const li = el('li', 'day');
  li.append(el('span', null, dayLabel(ts)));
  return li;
}

function renderMessages(r) {
  const list = $('message-list');
  const nodes = [];
  let prev = null;
  for (const m of r.messages) {
    if (!prev || new Date(prev.ts).toDateString() !== new Date(m.ts).toDateString()) nodes.push(dayNode(m.ts));
    nodes.push(messageNode(m, prev));
    prev = m;
  }
  list.replaceChildren(...nodes);
  $('empty').hidden = !(r.historyReady && r.messages.length === 0);
  renderHistoryStatus(r);
}

function renderHistoryStatus(r) {
  const s = $('history-status');
  if (r.loadingOlder) s.textContent = 'Loading older messages…';
  else if (r.historyReady && !r.more && r.messages.length) s.textContent = `This is the start of #${r.name}.`;
  else s.textContent = '';
}

function appendMessageNode(r, m) {
  const prev = r.messages[r.messages.length - 2] || null;
  const list = $('message-list');
  if (!prev || new Date(prev.ts).toDateString() !== new Date(m.ts).toDateString()) list.append(dayNode(m.ts));
  list.append(messageNode(m, prev));
  $('empty').hidden = true;
}

// Adds messages to a room (deduplicated by seq). Returns 'append' when they all went after the
// last one, 'merge' when the order had to be rebuilt, or null when nothing was new.
function addMessages(r, msgs) {
  const fresh = msgs.filter((m) => m.seq == null || !r.seqs.has(m.seq));
  if (!fresh.length) return null;
  for (const m of fresh) if (m.seq != null) r.seqs.add(m.seq);
  const lastSeq = r.messages.length ? r.messages[r.messages.length - 1].seq : null;
  const inOrder = fresh.every((m, i) => m.seq == null ||
    ((lastSeq == null || m.seq > lastSeq) && (i === 0 || fresh[i - 1].seq == null || m.seq > fresh[i - 1].seq)));
  r.messages.push(...fresh);
  if (inOrder) return 'append';
  r.messages.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
  return 'merge';
}

function scroller() { return $('messages'); }

function atBottom() {
  const s = scroller();
  return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
}

function toBottom() {
  const s = scroller();
  s.scrollTop = s.scrollHeight;
  $('jump').hidden = true;
}

function onMessage(m) {
  const r = rooms.get(m.room);
  if (!r) return;
  if (!isChat(m)) return onTyping(r, m);
  stopTyping(r, m.from);
  const how = addMessages(r, [m]);
  if (!how) return;
  const mine = m.from === me;
  if (r.name !== active || document.hidden) {
    if (!mine) r.unread++;
    renderRoomList();
  }
  if (r.name !== active) return;
  const pinned = r.pinned || mine;
  if (how === 'append') appendMessageNode(r, m);
  else renderMessages(r);
  if (pinned) toBottom();
  else $('jump').hidden = false;
}

async function loadLatest(r, seq) {
  if (seq === 0) {
    r.historyReady = true;
    r.more = false;
    if (r.name === active) renderMessages(r);
    return;
  }
  try {
    const opts = { limit: PAGE };
    if (seq != null) opts.before = seq + 1;
    const page = await client.history(r.name, opts);
    r.more = page.more;
    addMessages(r, page.messages);
  } catch (e) {
    toast(`Could not load the history of #${r.name}: ${words(e)}`);
  }
  r.historyReady = true;
  if (r.name === active) {
    renderMessages(r);
    toBottom();
    fillView(r);
  }
}

// Loads one older page; keeps the message under the reader's eyes where it was.
async function loadOlder(r) {
  if (!r.more || r.loadingOlder || !r.messages.length) return;
  const oldest = r.messages.find((m) => m.seq != null);
  if (!oldest) return;
  r.loadingOlder = true;
  if (r.name === active) renderHistoryStatus(r);
  try {
    const page = await client.history(r.name, { before: oldest.seq, limit: PAGE });
    r.more = page.more;
    if (r.name === active) {
      const s = scroller();
      const fromBottom = s.scrollHeight - s.scrollTop;
      addMessages(r, page.messages);
      r.loadingOlder = false;
      renderMessages(r);
      s.scrollTop = s.scrollHeight - fromBottom;
    } else {
      addMessages(r, page.messages);
    }
  } catch (e) {
    toast(`Could not load older messages: ${words(e)}`);
  } finally {
    r.loadingOlder = false;
    if (r.name === active) renderHistoryStatus(r);
  }
}

// If the first page does not fill the screen, there is no scrollbar to pull: load more now.
async function fillView(r) {
  for (let i = 0; i < 5 && r.more && r.name === active; i++) {
    const s = scroller();
    if (s.scrollHeight > s.clientHeight + 40) break;
    await loadOlder(r);
  }
}

// ------------------------------------------------------------------ presence & typing

function renderPeople(r) {
  const list = $('people-list');
  list.replaceChildren();
  if (!r) { $('people-count').textContent = '0'; $('room-meta').textContent = ''; return; }
  const names = [...r.members.keys()].sort((a, b) => (a === me ? -1 : b === me ? 1 : a.localeCompare(b)));
  for (const name of names) {
    const li = el('li', 'person');
    li.dataset.user = name;
    li.append(avatar(name, 'avatar avatar-sm'), el('span', 'person-name', name));
    if (name === me) li.append(el('span', 'you', 'you'));
    if (r.typing.has(name)) li.append(el('span', 'person-typing', 'typing…'));
    list.append(li);
  }
  $('people-count').textContent = String(names.length);
  $('room-meta').textContent = names.length === 1 ? '1 person here' : `${names.length} people here`;
}

async function loadPresence(r) {
  try {
    const p = await client.presence(r.name);
    r.members = new Map(p.members.map((x) => [x.user, x.conns]));
  } catch (e) {
    if (e.code !== 'disconnected') toast(`Could not load who is in #${r.name}: ${words(e)}`);
  }
  if (r.name === active) renderPeople(r);
}

function onPresence(p) {
  const r = rooms.get(p.room);
  if (!r) return;
  for (const u of p.left || []) { r.members.delete(u); stopTyping(r, u); }
  for (const u of p.joined || []) if (!r.members.has(u)) r.members.set(u, 1);
  if (r.name === active) renderPeople(r);
}

function onTyping(r, m) {
  if (!m.from || m.from === me) return;
  clearTimeout(r.typing.get(m.from));
  if (m.data.typing) {
    r.typing.set(m.from, setTimeout(() => stopTyping(r, m.from), TYPING_SHOW_MS));
  } else {
    r.typing.delete(m.from);
  }
  if (r.name === active) { renderTyping(r); renderPeople(r); }
}

function stopTyping(r, user) {
  if (!r.typing.has(user)) return;
  clearTimeout(r.typing.get(user));
  r.typing.delete(user);
  if (r.name === active) { renderTyping(r); renderPeople(r); }
}

function renderTyping(r) {
  const who = r ? [...r.typing.keys()] : [];
  const t = $('typing');
  t.replaceChildren();
  if (!who.length) return;
  let text;
  if (who.length === 1) text = `${who[0]} is typing…`;
  else if (who.length === 2) text = `${who[0]} and ${who[1]} are typing…`;
  else text = `${who.length} people are typing…`;
  const dots = el('span', 'dots');
  dots.append(el('i'), el('i'), el('i'));
  dots.setAttribute('aria-hidden', 'true');
  t.append(dots, el('span', null, text));
}

function sendTyping(on) {
  // Typing notes are only worth something now: never queue them through a reconnect.
  if (!active || !client || client.state !== 'connected') return;
  const now = Date.now();
  if (on) {
    if (typingSent.room === active && now - typingSent.at < TYPING_SEND_MS) return;
    typingSent = { room: active, at: now };
  } else {
    if (!typingSent.room) return;
    typingSent = { room: null, at: 0 };
  }
  // Volatile: never stored, no seq, not echoed to this tab.
  client.publish(active, { typing: on }, { persist: false, echo: false, timeout: 3000 }).catch(() => {});
}

// ------------------------------------------------------------------ rooms

async function joinRoom(name, { activate = false } = {}) {
  if (!ROOM_RE.test(name)) {
    toast(`“${name}” is not a valid room name. ${ERROR_WORDS.bad_room}`);
    return;
  }
  let r = rooms.get(name);
  if (!r) {
    r = newRoom(name);
    rooms.set(name, r);
    saveRooms();
  }
  if (activate) showRoom(name);
  renderRoomList();
  if (r.joined) return;
  r.joined = 'pending';
  for (let tries = 0; ; tries++) {
    try {
      const res = await client.join(name, { presence: true });
      r.joined = true;
      await Promise.all([loadLatest(r, res.seq), loadPresence(r)]);
      return;
    } catch (e) {
      if ((e.code === 'disconnected' || e.code === 'timeout') && tries < 3 && rooms.get(name) === r) continue;
      r.joined = false;
      toast(`Could not join #${name}: ${words(e)}`);
      if (!['disconnected', 'timeout'].includes(e.code)) removeRoom(name);
      return;
    }
  }
}

function removeRoom(name) {
  rooms.delete(name);
  saveRooms();
  if (active === name) {
    const next = rooms.keys().next().value;
    if (next) location.hash = '#' + next;
    else { history.replaceState(null, '', location.pathname); showRoom(null); }
  }
  renderRoomList();
}

async function leaveRoom(name) {
  if (!name) return;
  removeRoom(name);
  try {
    await client.leave(name);
  } catch (e) {
    if (e.code !== 'not_member') toast(`Could not leave #${name}: ${words(e)}`);
  }
}

function showRoom(name) {
  const prev = active && rooms.get(active);
  if (prev) prev.scrollTop = prev.pinned ? null : scroller().scrollTop;
  active = name;
  const r = name && rooms.get(name);
  document.body.classList.toggle('no-room', !r);
  $('room-name').textContent = r ? '# ' + r.name : 'No room';
  $('message-input').disabled = !r;
  $('send').disabled = !r;
  $('leave-room').disabled = !r;
  $('message-input').placeholder = r ? `Message #${r.name}` : 'Join a room to chat';
  $('jump').hidden = true;
  if (!r) {
    $('message-list').replaceChildren();
    $('history-status').textContent = '';
    $('empty').hidden = true;
    renderPeople(null);
    renderTyping(null);
    renderRoomList();
    return;
  }
  r.unread = 0;
  renderMessages(r);
  if (r.scrollTop == null) { toBottom(); r.pinned = true; } else scroller().scrollTop = r.scrollTop;
  renderPeople(r);
  renderTyping(r);
  renderRoomList();
}

function roomFromHash() {
  const h = decodeURIComponent(location.hash.replace(/^#/, ''));
  return h || null;
}

// ------------------------------------------------------------------ start-up

function validName(n) {
  const len = [...n].length;
  if (len < 1 || len > 32) return 'Use 1 to 32 characters.';
  if (CONTROL_RE.test(n)) return 'Control characters are not allowed.';
  return null;
}

function askName(current) {
  $('welcome').hidden = false;
  $('app').inert = true;
  const input = $('name-input');
  input.value = current || '';
  $('name-error').hidden = true;
  input.focus();
  input.select();
}

$('name-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const name = $('name-input').value.trim();
  const bad = validName(name);
  const err = $('name-error');
  if (bad) { err.textContent = bad; err.hidden = false; return; }
  if (client) {
    try {
      const res = await client.hello(name);
      me = res.user;
    } catch (e) {
      err.textContent = words(e);
      err.hidden = false;
      return;
    }
    saved.name = me;
    showMe();
  } else {
    saved.name = name;
    me = name;
    start();
  }
  $('welcome').hidden = true;
  $('app').inert = false;
  $('message-input').focus();
});

function showMe() {
  $('me-name').textContent = me;
  $('me-avatar').replaceWith(Object.assign(avatar(me), { id: 'me-avatar' }));
  const r = active && rooms.get(active);
  if (r) { renderMessages(r); renderPeople(r); }
}

function start() {
  $('app').hidden = false;
  showMe();
  const url = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/ws';
  client = new Parley(url, { name: me });
  window.parley = client; // handy in the console
  client.on('state', showConn);
  client.on('message', onMessage);
  client.on('presence', onPresence);
  client.on('error', (e) => toast(e.room ? `#${e.room}: ${words(e)}` : words(e)));
  client.on('ready', (ev) => {
    if (ev.user && ev.user !== me) { me = ev.user; showMe(); }
    if (!ev.reconnect) return;
    // Presence changed while we were away: take a fresh snapshot of every room.
    for (const r of rooms.values()) {
      if (r.joined === true) {
        loadPresence(r);
        if (!r.historyReady) loadLatest(r, null);
      }
    }
  });
  client.on('reset', (ev) => {
    // The server could not replay everything we missed: start the room over from its latest page.
    const r = rooms.get(ev.room);
    if (!r) return;
    r.messages = [];
    r.seqs = new Set();
    addMessages(r, ev.messages);
    r.more = ev.more;
    r.historyReady = true;
    if (r.name === active) { renderMessages(r); toBottom(); }
    toast(ev.reason === 'seq_lower'
      ? `The server lost recent messages of #${ev.room} (it restarted); showing what it has.`
      : `Could not catch up on everything in #${ev.room}; showing the latest.`, 'info');
  });
  client.connect().catch(() => {});

  let target = roomFromHash();
  const list = saved.rooms;
  if (!target) target = list[0] || 'lobby';
  if (!ROOM_RE.test(target)) {
    toast(`“${target}” is not a valid room name. ${ERROR_WORDS.bad_room}`);
    target = list[0] || 'lobby';
  }
  if (location.hash !== '#' + target) history.replaceState(null, '', '#' + target);
  joinRoom(target, { activate: true });
  for (const name of list) if (name !== target) joinRoom(name);
}

// ------------------------------------------------------------------ UI wiring

window.addEventListener('hashchange', () => {
  if (!client) return;
  const name = roomFromHash();
  if (name && name !== active) joinRoom(name, { activate: true });
});

$('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('join-input').value.trim().replace(/^#/, '');
  if (!name) return;
  if (!ROOM_RE.test(name)) { toast(`“${name}” is not a valid room name. ${ERROR_WORDS.bad_room}`); return; }
  $('join-input').value = '';
  location.hash = '#' + name;
  closeSidebar();
});

$('leave-room').addEventListener('click', () => leaveRoom(active));
$('rename').addEventListener('click', () => askName(me));

const input = $('message-input');

function autosize() {
  input.style.height = 'auto';
  input.style.height = Math.min(input.scrollHeight, 180) + 'px';
}

input.addEventListener('input', () => {
  autosize();
  sendTyping(input.value.trim().length > 0);
});

input.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $('composer').requestSubmit();
  }
});

$('composer').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const text = input.value;
  if (!text.trim() || !active) return;
  const room = active;
  input.value = '';
  autosize();
  sendTyping(false);
  const r = rooms.get(room);
  if (r) r.pinned = true;
  try {
    // Waits through a reconnect: the message goes out when the connection is back.
    await client.publish(room, { text }, { timeout: 30000 });
  } catch (e) {
    toast(`Message not sent: ${words(e)}`);
    if (!input.value) { input.value = text; autosize(); }
  }
});

scroller().addEventListener('scroll', () => {
  const r = active && rooms.get(active);
  if (!r) return;
  r.pinned = atBottom();
  if (r.pinned) $('jump').hidden = true;
  if (scroller().scrollTop < 120) loadOlder(r);
}, { passive: true });

$('jump').addEventListener('click', () => {
  const r = rooms.get(active);
  if (r) r.pinned = true;
  toBottom();
});

$('retry-now').addEventListener('click', () => client && client.reconnectNow());

document.addEventListener('visibilitychange', () => {
  if (document.hidden) return;
  const r = active && rooms.get(active);
  if (r && r.unread) { r.unread = 0; renderRoomList(); }
});

function openSidebar() { document.body.classList.add('sidebar-open'); }
function closeSidebar() { document.body.classList.remove('sidebar-open'); }
$('open-sidebar').addEventListener('click', (ev) => { ev.stopPropagation(); openSidebar(); });
document.addEventListener('click', (ev) => {
  // Tapping the dimmed page beside the drawer closes it.
  if (document.body.classList.contains('sidebar-open') && !$('sidebar').contains(ev.target)) closeSidebar();
});
$('close-sidebar').addEventListener('click', closeSidebar);

$('toggle-people').addEventListener('click', () => {
  const open = $('toggle-people').getAttribute('aria-expanded') !== 'true';
  document.body.classList.toggle('people-open', open);
  document.body.classList.toggle('people-closed', !open);
  $('toggle-people').setAttribute('aria-expanded', String(open));
});

document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape') { closeSidebar(); document.body.classList.remove('people-open'); }
});

// The People panel starts open on wide screens and closed on phones.
$('toggle-people').setAttribute('aria-expanded', String(!matchMedia('(max-width: 760px)').matches));

// Go.
me = saved.name;
if (me && !validName(me)) start();
else askName('');
