// A TypeScript user of parley-client: run.mjs type-checks it with `tsc --noEmit` against the
// installed package's declarations. The @ts-expect-error lines must fail to compile: if the
// declarations were too loose (any), tsc would report those directives as unused.
import Parley, {
  Parley as NamedParley, ParleyError, DEFAULTS,
  type Message, type ParleyOptions, type ParleyState, type WebSocketLike, type HistoryReply,
} from 'parley-client';

const opts: ParleyOptions = { name: 'ada', timeout: 5000, reconnect: true, WebSocket: globalThis.WebSocket };
const parley: NamedParley = new Parley('ws://localhost:8080/ws', opts);
const fallback: number = DEFAULTS.maxDelay;

// A WebSocket of one's own (as on Node 20, or in tests) fits the option.
class LoggingSocket implements WebSocketLike {
  private inner: WebSocket;
  onmessage: ((ev: any) => any) | null = null;
  onclose: ((ev: any) => any) | null = null;
  onerror: ((ev: any) => any) | null = null;
  constructor(url: string) {
    this.inner = new WebSocket(url);
    this.inner.onmessage = (ev) => this.onmessage?.(ev);
    this.inner.onclose = (ev) => this.onclose?.(ev);
  }
  send(data: string): void { console.log('>', data); this.inner.send(data); }
  close(code?: number, reason?: string): void { this.inner.close(code, reason); }
}
const logged = new Parley('ws://localhost:8080/ws', { WebSocket: LoggingSocket });

parley.on('state', ({ state, previous, retryAt }) => {
  const s: ParleyState = state;
  if (retryAt !== undefined) console.log(`${previous} -> ${s}, next try at ${new Date(retryAt).toISOString()}`);
});
const off = parley.on('message', (m, { replayed }) => {
  const seq: number | undefined = m.seq;
  console.log(m.room, m.from, seq, replayed, m.data.text);
});
off();
parley.on('reset', ({ room, messages, more, reason }) => console.log(room, messages.length, more, reason === 'seq_lower'));
parley.on('rejoin', ({ room, recovered }) => console.log(room, recovered));
parley.on('presence', ({ room, joined, left }) => console.log(room, joined ?? [], left ?? []));
parley.on('error', (e) => console.log(e.code, e.room));

async function main(): Promise<void> {
  const { user } = await parley.connect();
  console.log(user?.toUpperCase());
  const joined = await parley.join('lobby', { presence: true, since: 10 });
  const missed: boolean = joined.recovered === false;
  const sent = await parley.publish('lobby', { text: 'hi' }, { durable: true, timeout: 30000 });
  const volatile = await parley.publish('lobby', { typing: true }, { persist: false, echo: false });
  const page: HistoryReply = await parley.history('lobby', { before: sent.seq, limit: 20 });
  const texts: Message<{ text: string }>[] = page.messages;
  const who = await parley.presence('lobby');
  const n: number = who.members[0].conns;
  const { ts } = await parley.ping();
  const last: number | null = parley.lastSeq('lobby');
  console.log(missed, volatile.seq, texts[0]?.data.text, n, ts, last, parley.state, parley.limits?.max_rooms);
  try {
    await parley.leave('lobby');
  } catch (e) {
    if (e instanceof ParleyError && e.code === 'not_member') console.log(e.message, e.command);
  }
  try {
    await parley.publish('lobby', { text: 'once' }, { key: 'order-991' });
  } catch (e) {
    // Outcome unknown: retry with the same key, so the server stores it at most once.
    if (e instanceof ParleyError && e.key) await parley.publish('lobby', { text: 'once' }, { key: e.key });
  }
  parley.reconnectNow();
  parley.close();
  logged.close();
}
void main();
console.log(fallback);

// --- what the declarations must reject ---
// @ts-expect-error: no such event
parley.on('mesage', () => {});
// @ts-expect-error: misspelt option
new Parley('ws://x/ws', { timout: 1 });
// @ts-expect-error: a room is a string
void parley.join(42);
// @ts-expect-error: a message listener receives a Message
parley.on('message', (m: number) => console.log(m));
// @ts-expect-error: publish options are checked
void parley.publish('lobby', {}, { persistent: false });
// @ts-expect-error: a constructor with the wrong shape is not a WebSocket
new Parley('ws://x/ws', { WebSocket: Date });
// @ts-expect-error: state is read-only for the application
parley.state = 'connected';
// @ts-expect-error: a key is a string
void parley.publish('lobby', {}, { key: 42 });
// @ts-expect-error: no such reset reason
parley.on('reset', (e) => { if (e.reason === 'lost') console.log(e); });
