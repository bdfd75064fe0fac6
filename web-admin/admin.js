// The /admin dashboard (served by parleyd on the admin listener only). No build step: plain
// script, uPlot vendored under vendor/uplot. The API key stays in this tab (sessionStorage) and is
// sent only as an Authorization header; the live feed (an EventSource, which cannot send headers)
// is opened with a one-time ticket from POST /api/admin/ticket.
'use strict';
(function () {
  const WINDOW = 15 * 60; // seconds of history kept in the charts
  const $ = (id) => document.getElementById(id);
  let key = sessionStorage.getItem('parley-admin-key') || '';
  let es = null, retry = null, samples = 0;

  const fmt = (n) => n == null ? '-' : n >= 1e9 ? (n / 1e9).toFixed(1) + 'G' : n >= 1e6 ? (n / 1e6).toFixed(1) + 'M' :
    n >= 1e4 ? (n / 1e3).toFixed(1) + 'k' : n >= 100 ? String(Math.round(n)) : String(Math.round(n * 10) / 10);

  // ---- the API ----
  async function api(method, path, body) {
    const r = await fetch(path, {
      method, headers: { Authorization: 'Bearer ' + key, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined, cache: 'no-store',
    });
    let j = null;
    try { j = await r.json(); } catch (e) { /* not JSON */ }
    if (r.status === 401) { logout('the API key was refused'); throw new Error('unauthorized'); }
    if (!j || !j.ok) throw new Error(j && j.error ? j.error.message : 'HTTP ' + r.status);
    return j.data;
  }

  // ---- charts ----
  const COLORS = ['#2f6fed', '#e8833a', '#3ca66b', '#c93a3a', '#8a5cd6'];
  const CHARTS = [
    { id: 'connections', title: 'Connections', series: [['connections', (s) => s.connections]] },
    { id: 'messages', title: 'Messages in/s and deliveries out/s', series: [['in/s', (s) => s.msgs_in_s], ['deliveries/s', (s) => s.deliveries_out_s]] },
    { id: 'bytes', title: 'Bytes out/s', series: [['bytes/s', (s) => s.bytes_out_s]] },
    { id: 'sendq', title: 'Send-queue depth (connections per bucket)', series: ['0', '1-9', '10-99', '100-999', '1000+'].map((b) => [b, (s) => s.sendq_depth[b]]) },
    { id: 'trouble', title: 'Slow-consumer closes, rate-limited, refused upgrades (/s)', series: [['slow closes', (s) => s.slow_closes_s], ['rate-limited', (s) => s.rate_limited_s], ['refused upgrades', (s) => s.refused_upgrades_s]] },
    { id: 'storage', title: 'Storage writer: queue depth, commit ms', series: [['queue', (s) => s.storage.queue_depth], ['commit ms', (s) => s.storage.commit_ms]] },
    { id: 'cache', title: 'History cache bytes', series: [['bytes', (s) => s.cache_bytes]] },
    // in a cluster only (the card stays hidden on a single node)
    { id: 'cluster', title: 'Cluster: Redis lag (ms, worst shard) and nodes alive', cluster: true,
      series: [['lag ms', (s) => (s.cluster ? s.cluster.lag_ms_max : null)],
        ['nodes alive', (s) => (s.cluster ? s.cluster.nodes.filter((n) => n.alive).length : null)]] },
  ];
  const charts = {};

  function chartWidth(el) { return Math.max(200, el.clientWidth - 4); }

  function makeCharts() {
    const box = $('charts');
    for (const c of CHARTS) {
      const card = document.createElement('div');
      card.className = 'card';
      card.dataset.chart = c.id;
      if (c.cluster) card.hidden = true;
      box.appendChild(card);
      const data = [[], ...c.series.map(() => [])];
      const opts = {
        title: c.title, width: chartWidth(card), height: 180,
        series: [{}, ...c.series.map(([label], i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false }))],
        // x: wall-clock HH:MM:SS (uPlot's default shows milliseconds over a short window)
        axes: [{ space: 70, values: (u, vals) => vals.map((v) => new Date(v * 1000).toTimeString().slice(0, 8)) },
          { size: 56, values: (u, vals) => vals.map(fmt) }],
        scales: { x: { time: true } },
        legend: { live: false },
      };
      charts[c.id] = { def: c, data, card, plot: new uPlot(opts, data, card) };
      window.parleyAdminCharts = charts; // for tests and the console
    }
    window.addEventListener('resize', () => {
      for (const c of Object.values(charts)) c.plot.setSize({ width: chartWidth(c.card), height: 180 });
    });
  }

  function addSample(s) {
    samples++;
    const t = s.t / 1000;
    for (const c of Object.values(charts)) {
      c.data[0].push(t);
      c.def.series.forEach(([, get], i) => { const v = get(s); c.data[i + 1].push(v == null ? null : v); });
      while (c.data[0].length && c.data[0][0] < t - WINDOW) c.data.forEach((a) => a.shift());
      c.plot.setData(c.data);
    }
    $('t-conns').textContent = fmt(s.connections);
    $('t-in').textContent = fmt(s.msgs_in_s);
    $('t-out').textContent = fmt(s.deliveries_out_s);
    $('t-bytes').textContent = fmt(s.bytes_out_s);
    $('t-sq').textContent = fmt(s.storage.queue_depth);
    $('t-cache').textContent = fmt(s.cache_bytes);
    fillTop('top-members', s.top_members, (r) => [r.members, r.connections]);
    fillTop('top-rate', s.top_rate, (r) => [r.msgs_s]);
    fillCluster(s.cluster);
    window.parleyAdmin = { samples, last: s };
  }

  // The nodes of a cluster and this node's Redis state; hidden on a single node.
  function fillCluster(cl) {
    $('cluster').hidden = !cl;
    if (charts.cluster && charts.cluster.card.hidden === !!cl) {
      charts.cluster.card.hidden = !cl;
      charts.cluster.plot.setSize({ width: chartWidth(charts.cluster.card), height: 180 });
    }
    if (!cl) return;
    $('cluster-self').textContent = '(this node: ' + cl.node_id + ')';
    $('cluster-status').textContent = 'Redis ' + (cl.redis_connected ? 'connected' : 'unreachable') +
      ', publishing ' + (cl.publishing ? 'on' : 'off') + ', presence ' + (cl.presence_connected ? 'live' : 'frozen') +
      ', lag ' + fmt(cl.lag_ms_max) + ' ms';
    $('cluster-nodes').querySelector('tbody').replaceChildren(...cl.nodes.map((n) => {
      const tr = document.createElement('tr');
      tr.dataset.node = n.id;
      tr.className = n.alive ? '' : 'dead';
      for (const v of [n.id + (n.self ? ' (this node)' : ''), n.alive ? 'yes' : 'no', fmt(n.members),
        n.self ? '-' : n.last_heard_s.toFixed(1) + ' s']) {
        const td = document.createElement('td'); td.textContent = v; tr.appendChild(td);
      }
      return tr;
    }));
  }

  function roomLink(name) {
    const a = document.createElement('a');
    a.textContent = name;
    a.addEventListener('click', () => { $('room').value = name; showRoom(name); });
    return a;
  }

  function fillTop(id, rows, cols) {
    const tb = $(id).querySelector('tbody');
    if (!rows.length) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 3; td.className = 'empty'; td.textContent = 'no rooms';
      tr.appendChild(td);
      tb.replaceChildren(tr);
      return;
    }
    tb.replaceChildren(...rows.map((r) => {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.appendChild(roomLink(r.room));
      tr.appendChild(td);
      for (const v of cols(r)) { const d = document.createElement('td'); d.textContent = fmt(v); tr.appendChild(d); }
      return tr;
    }));
  }

  // ---- the live feed ----
  async function openFeed() {
    clearTimeout(retry);
    if (es) { es.close(); es = null; }
    let t;
    try { t = await api('POST', '/api/admin/ticket'); } catch (e) {
      if (key) { setStatus('feed: ' + e.message); retry = setTimeout(openFeed, 3000); }
      return;
    }
    es = new EventSource('/api/admin/feed?ticket=' + encodeURIComponent(t.ticket));
    es.onopen = () => setStatus('live', true);
    es.onmessage = (ev) => addSample(JSON.parse(ev.data));
    es.onerror = () => {
      // a ticket opens one stream: a dropped stream needs a new one
      setStatus('feed lost, reconnecting');
      if (es) es.close();
      es = null;
      if (key) retry = setTimeout(openFeed, 2000);
    };
  }

  function setStatus(text, live) {
    $('status').textContent = text;
    $('status').classList.toggle('live', !!live);
  }

  // ---- a room ----
  async function showRoom(room) {
    $('room-error').textContent = '';
    try {
      const q = encodeURIComponent(room);
      const [p, h] = await Promise.all([api('GET', '/api/presence?room=' + q), api('GET', '/api/history?room=' + q + '&limit=20')]);
      $('room-name').textContent = room;
      $('members').querySelector('tbody').replaceChildren(...p.members.map((m) => {
        const tr = document.createElement('tr');
        const u = document.createElement('td'); u.textContent = m.user;
        const n = document.createElement('td'); n.textContent = m.conns;
        const b = document.createElement('td');
        const btn = document.createElement('button');
        btn.className = 'danger'; btn.textContent = 'disconnect'; btn.dataset.user = m.user;
        btn.addEventListener('click', () => disconnect(m.user, room));
        b.appendChild(btn);
        tr.append(u, n, b);
        return tr;
      }));
      $('messages').replaceChildren(...h.messages.map((m) => {
        const li = document.createElement('li');
        const ts = document.createElement('span'); ts.className = 'ts'; ts.textContent = new Date(m.ts).toLocaleTimeString() + ' ';
        const from = document.createElement('span'); from.className = 'from'; from.textContent = m.from + ': ';
        const text = document.createElement('span');
        // the chat page's messages are {"text": ...}; anything else is shown as JSON
        const d = m.data;
        text.textContent = typeof d === 'string' ? d : d && typeof d.text === 'string' ? d.text : JSON.stringify(d);
        li.append(ts, from, text);
        return li;
      }));
      $('room-view').hidden = false;
    } catch (e) {
      $('room-error').textContent = e.message;
    }
  }

  async function disconnect(user, room) {
    if (!window.confirm('Disconnect ' + user + '?')) return;
    try {
      await api('POST', '/api/disconnect', { user, reason: 'disconnected by an administrator' });
      $('room-error').textContent = '';
      setTimeout(() => showRoom(room), 300);
    } catch (e) {
      $('room-error').textContent = e.message;
    }
  }

  // ---- log in and out ----
  function showDash() {
    $('login').hidden = true;
    $('dash').hidden = false;
    $('logout').hidden = false;
    if (!Object.keys(charts).length) makeCharts();
    openFeed();
  }

  function logout(why) {
    key = '';
    sessionStorage.removeItem('parley-admin-key');
    clearTimeout(retry);
    if (es) { es.close(); es = null; }
    $('dash').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = why || '';
    setStatus('signed out');
  }

  $('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const k = $('key').value.trim();
    $('login-error').textContent = '';
    // check the key against the API before showing anything
    const r = await fetch('/api/info', { headers: { Authorization: 'Bearer ' + k }, cache: 'no-store' });
    if (r.status !== 200) {
      $('login-error').textContent = r.status === 401 ? 'wrong API key' : 'the API answered ' + r.status;
      return;
    }
    key = k;
    sessionStorage.setItem('parley-admin-key', k);
    $('key').value = '';
    showDash();
  });
  $('logout').addEventListener('click', () => logout(''));
  $('search').addEventListener('submit', (ev) => { ev.preventDefault(); showRoom($('room').value.trim()); });

  if (key) showDash();
})();
