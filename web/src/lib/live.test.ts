import { describe, expect, it, vi, afterEach } from 'vitest';
import { Interest, Live, backoff, parseFrame } from './live';

afterEach(() => vi.useRealTimers());

describe('backoff', () => {
  it('doubles from 0.5 s to 15 s with ±25 % jitter', () => {
    expect(backoff(0, () => 0.5)).toBe(500);
    expect(backoff(1, () => 0.5)).toBe(1000);
    expect(backoff(10, () => 0.5)).toBe(15_000);
    expect(backoff(50, () => 0.5)).toBe(15_000);
    expect(backoff(0, () => 0)).toBe(375);
    expect(backoff(0, () => 1)).toBe(625);
  });
});

describe('Interest', () => {
  it('subscribes once and unsubscribes when the last one leaves', () => {
    const i = new Interest();
    expect(i.add({ channels: [1], alarms: true })).toEqual({ channels: [1], alarms: true });
    expect(i.add({ channels: [1, 2] })).toEqual({ channels: [2] });
    expect(i.remove({ channels: [1], alarms: true })).toEqual({ alarms: true });
    expect(i.all()).toEqual({ channels: [1, 2] });
    expect(i.remove({ channels: [1, 2] })).toEqual({ channels: [1, 2] });
    expect(i.all()).toEqual({});
  });
});

describe('parseFrame', () => {
  it('reads the frames of the gateway and nothing else', () => {
    expect(parseFrame('{"type":"changes","values":[{"channel":1,"type":"T","point":1,"value":2,"quality":"good"}]}')?.type).toBe('changes');
    expect(parseFrame('{"type":"alarm","id":"1-0","event":{"type":"raised"}}')?.type).toBe('alarm');
    expect(parseFrame('{"type":"changes","values":7}')).toBeNull();
    expect(parseFrame('{"type":"alarm"}')).toBeNull();
    expect(parseFrame('{"type":"surprise"}')).toBeNull();
    expect(parseFrame('not json')).toBeNull();
    expect(parseFrame('null')).toBeNull();
    expect(parseFrame(new ArrayBuffer(2))).toBeNull();
  });
});

// FakeWS records what the client sends and lets the test play the server.
class FakeWS {
  static all: FakeWS[] = [];
  readyState = 0;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(public url: string) {
    FakeWS.all.push(this);
  }
  send(s: string) {
    this.sent.push(JSON.parse(s));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  frame(f: object) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

function newLive(refresh = async () => true) {
  FakeWS.all = [];
  let token = 't1';
  const live = new Live({
    url: 'ws://x/ws',
    token: async () => token,
    refresh: async () => {
      token = 't2';
      return refresh();
    },
    ws: FakeWS as unknown as typeof WebSocket,
    silenceMs: 5_000,
  });
  return live;
}

describe('Live', () => {
  it('authenticates first, subscribes, delivers values, and resubscribes after a reconnect', async () => {
    vi.useFakeTimers();
    const live = newLive();
    const states: string[] = [];
    live.onState((s) => states.push(s));
    const got: number[] = [];
    live.subscribe({ channels: [1] }, { values: (vs) => got.push(...vs.map((v) => v.value ?? NaN)) });
    live.start();
    await vi.advanceTimersByTimeAsync(0);
    const ws = FakeWS.all[0];
    ws.open();
    expect(ws.sent[0]).toEqual({ type: 'auth', token: 't1' });
    expect(ws.sent[1]).toEqual({ type: 'subscribe', channels: [1] });
    ws.frame({ type: 'welcome', user: 'a', role: 'admin' });
    expect(live.state).toBe('open');
    ws.frame({ type: 'changes', values: [{ channel: 1, type: 'T', point: 1, value: 42, quality: 'good' }] });
    expect(got).toEqual([42]);

    ws.drop();
    expect(live.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(700);
    const ws2 = FakeWS.all[1];
    expect(ws2).toBeDefined();
    ws2.open();
    expect(ws2.sent).toEqual([{ type: 'auth', token: 't1' }, { type: 'subscribe', channels: [1] }]);
    ws2.frame({ type: 'welcome', user: 'a', role: 'admin' });
    expect(states).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    live.stop();
    expect(live.state).toBe('closed');
  });

  it('reconnects when the gateway falls silent', async () => {
    vi.useFakeTimers();
    const live = newLive();
    live.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeWS.all[0].open();
    FakeWS.all[0].frame({ type: 'welcome', user: 'a', role: 'admin' });
    await vi.advanceTimersByTimeAsync(5_100);
    expect(live.state).toBe('reconnecting');
    expect(live.lastError).toMatch(/heartbeat/);
    await vi.advanceTimersByTimeAsync(700);
    expect(FakeWS.all.length).toBe(2);
    live.stop();
  });

  it('refreshes the token when the gateway refuses it (1008), and stops when the session is over', async () => {
    vi.useFakeTimers();
    let ok = true;
    const live = newLive(async () => ok);
    live.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeWS.all[0].open();
    FakeWS.all[0].drop(1008, 'token expired');
    await vi.advanceTimersByTimeAsync(700);
    FakeWS.all[1].open();
    expect(FakeWS.all[1].sent[0]).toEqual({ type: 'auth', token: 't2' });
    ok = false;
    FakeWS.all[1].drop(1008, 'token expired');
    await vi.advanceTimersByTimeAsync(20_000);
    expect(live.state).toBe('closed');
    expect(FakeWS.all.length).toBe(2);
  });

  it('unsubscribes only what no page shows any more', async () => {
    vi.useFakeTimers();
    const live = newLive();
    live.start();
    await vi.advanceTimersByTimeAsync(0);
    const ws = FakeWS.all[0];
    ws.open();
    const a = live.subscribe({ instances: [1] }, {});
    const b = live.subscribe({ instances: [1, 2] }, {});
    a();
    b();
    expect(ws.sent.slice(1)).toEqual([
      { type: 'subscribe', instances: [1] },
      { type: 'subscribe', instances: [2] },
      { type: 'unsubscribe', instances: [1, 2] },
    ]);
    live.stop();
  });
});
