// The WebSocket push of the gateway (/ws, docs/apigateway.md): one connection
// shared by every page, authenticated with the first message, resubscribed
// (which sends a fresh snapshot) after every reconnect, and reconnected with
// capped, jittered backoff whenever it drops or falls silent.
import type { Value } from './points';

export type ConnState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface Subscription {
  channels?: number[];
  instances?: number[];
  points?: string[];
  alarms?: boolean;
  commands?: boolean;
}

export interface Handlers {
  values?: (vs: Value[], snapshot: boolean) => void;
  alarm?: (event: Record<string, string>) => void;
  command?: (result: Record<string, unknown>) => void;
}

/** backoff is the wait before reconnect attempt n (0-based): 0.5 s doubling to 15 s, ±25 %. */
export function backoff(n: number, rand: () => number = Math.random): number {
  const base = Math.min(15_000, 500 * 2 ** Math.min(n, 10));
  return Math.round(base * (0.75 + rand() * 0.5));
}

/**
 * Interest counts how many subscribers want each item, so that one page
 * leaving does not unsubscribe what another still shows.
 */
export class Interest {
  private counts = new Map<string, number>();

  /** add returns what is newly wanted. */
  add(s: Subscription): Subscription {
    return this.diff(s, +1);
  }

  /** remove returns what nobody wants any more. */
  remove(s: Subscription): Subscription {
    return this.diff(s, -1);
  }

  /** all is everything wanted now (to resubscribe after a reconnect). */
  all(): Subscription {
    const out: Subscription = {};
    for (const k of this.counts.keys()) put(out, k);
    return out;
  }

  private diff(s: Subscription, d: number): Subscription {
    const out: Subscription = {};
    for (const k of items(s)) {
      const n = (this.counts.get(k) ?? 0) + d;
      if (n <= 0) this.counts.delete(k);
      else this.counts.set(k, n);
      if ((d > 0 && n === 1) || (d < 0 && n <= 0)) put(out, k);
    }
    return out;
  }
}

function items(s: Subscription): string[] {
  const out: string[] = [];
  for (const c of s.channels ?? []) out.push(`c:${c}`);
  for (const i of s.instances ?? []) out.push(`i:${i}`);
  for (const p of s.points ?? []) out.push(`p:${p}`);
  if (s.alarms) out.push('alarms');
  if (s.commands) out.push('commands');
  return out;
}

function put(s: Subscription, k: string): void {
  if (k === 'alarms') s.alarms = true;
  else if (k === 'commands') s.commands = true;
  else if (k.startsWith('c:')) (s.channels ??= []).push(Number(k.slice(2)));
  else if (k.startsWith('i:')) (s.instances ??= []).push(Number(k.slice(2)));
  else if (k.startsWith('p:')) (s.points ??= []).push(k.slice(2));
}

export function isEmpty(s: Subscription): boolean {
  return items(s).length === 0;
}

export type Frame =
  | { type: 'welcome'; user: string; role: string }
  | { type: 'snapshot' | 'changes'; values: Value[] }
  | { type: 'alarm'; id: string; event: Record<string, string> }
  | { type: 'command'; result: Record<string, unknown> }
  | { type: 'heartbeat'; ts: number }
  | { type: 'error'; error: string };

/** parseFrame reads one server frame; null for anything it does not know. */
export function parseFrame(data: unknown): Frame | null {
  if (typeof data !== 'string') return null;
  let f: unknown;
  try {
    f = JSON.parse(data);
  } catch {
    return null;
  }
  if (!f || typeof f !== 'object') return null;
  const o = f as Record<string, unknown>;
  switch (o.type) {
    case 'snapshot':
    case 'changes':
      return Array.isArray(o.values) ? (o as Frame) : null;
    case 'welcome':
    case 'heartbeat':
    case 'error':
      return o as Frame;
    case 'alarm':
      return o.event && typeof o.event === 'object' ? (o as Frame) : null;
    case 'command':
      return o.result && typeof o.result === 'object' ? (o as Frame) : null;
  }
  return null;
}

export interface LiveOptions {
  url: string;
  token: () => Promise<string | null>;
  /** Called when the server refuses the token: refresh it; false ends reconnecting. */
  refresh: () => Promise<boolean>;
  /** No frame for this long (the gateway sends heartbeats) counts as a dead link. */
  silenceMs?: number;
  ws?: typeof WebSocket;
}

export class Live {
  state: ConnState = 'closed';
  lastError = '';
  private sock: WebSocket | null = null;
  private interest = new Interest();
  private handlers = new Set<Handlers>();
  private stateListeners = new Set<(s: ConnState) => void>();
  private attempt = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private watchdog: ReturnType<typeof setTimeout> | undefined;
  private stopped = true;
  private authed = false;

  constructor(private opts: LiveOptions) {}

  onState(fn: (s: ConnState) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  /** subscribe adds interest and handlers; the returned function takes them back. */
  subscribe(sub: Subscription, h: Handlers): () => void {
    this.handlers.add(h);
    const added = this.interest.add(sub);
    if (!isEmpty(added)) this.send({ type: 'subscribe', ...added });
    return () => {
      this.handlers.delete(h);
      const gone = this.interest.remove(sub);
      // Alarms and commands stay subscribed: other pages' frames are cheap to ignore.
      delete gone.alarms;
      delete gone.commands;
      if (!isEmpty(gone)) this.send({ type: 'unsubscribe', ...gone });
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    clearTimeout(this.watchdog);
    const s = this.sock;
    this.sock = null;
    s?.close(1000, 'logout');
    this.setState('closed');
  }

  /** reconnectNow drops a waiting retry and connects at once (a user's click). */
  reconnectNow(): void {
    if (this.stopped || this.state === 'open' || this.state === 'connecting') return;
    clearTimeout(this.retry);
    this.attempt = 0;
    void this.connect();
  }

  private setState(s: ConnState): void {
    if (this.state === s) return;
    this.state = s;
    for (const l of this.stateListeners) l(s);
  }

  private send(msg: object): void {
    if (this.sock && this.authed && this.sock.readyState === 1) this.sock.send(JSON.stringify(msg));
  }

  private async connect(): Promise<void> {
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const token = await this.opts.token();
    if (this.stopped) return;
    if (!token) {
      this.stop();
      return;
    }
    const WS = this.opts.ws ?? WebSocket;
    let sock: WebSocket;
    try {
      sock = new WS(this.opts.url);
    } catch (e) {
      this.lastError = String(e);
      this.later();
      return;
    }
    this.sock = sock;
    this.authed = false;
    sock.onopen = () => {
      sock.send(JSON.stringify({ type: 'auth', token }));
      this.authed = true;
      const all = this.interest.all();
      if (!isEmpty(all)) sock.send(JSON.stringify({ type: 'subscribe', ...all }));
      this.feed();
    };
    sock.onmessage = (ev) => {
      if (sock !== this.sock) return;
      this.feed();
      const f = parseFrame(ev.data);
      if (!f) return;
      switch (f.type) {
        case 'welcome':
          this.attempt = 0;
          this.lastError = '';
          this.setState('open');
          break;
        case 'snapshot':
        case 'changes':
          for (const h of this.handlers) h.values?.(f.values, f.type === 'snapshot');
          break;
        case 'alarm':
          for (const h of this.handlers) h.alarm?.(f.event);
          break;
        case 'command':
          for (const h of this.handlers) h.command?.(f.result);
          break;
        case 'error':
          this.lastError = f.error;
          break;
      }
    };
    sock.onclose = (ev) => {
      if (sock !== this.sock) return;
      this.sock = null;
      clearTimeout(this.watchdog);
      if (this.stopped) return;
      if (ev.reason) this.lastError = ev.reason;
      // 1008: the token was refused or expired; get a fresh one before trying again.
      if (ev.code === 1008) {
        void this.opts.refresh().then((ok) => (ok ? this.later() : this.stop()));
        return;
      }
      this.later();
    };
    sock.onerror = () => {
      this.lastError = this.lastError || 'connection failed';
    };
  }

  /** feed restarts the silence watchdog. */
  private feed(): void {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      this.lastError = 'no heartbeat from the gateway';
      const s = this.sock;
      this.sock = null;
      s?.close();
      if (!this.stopped) this.later();
    }, this.opts.silenceMs ?? 40_000);
  }

  private later(): void {
    if (this.stopped) return;
    this.setState('reconnecting');
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.connect(), backoff(this.attempt++));
  }
}
