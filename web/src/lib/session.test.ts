import { describe, expect, it, vi, afterEach } from 'vitest';
import { Session, fromPair, refreshDelay, type Storage, type TokenPair } from './session';

class Mem implements Storage {
  m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

const pair = (n: number, ttl = 900): TokenPair => ({
  access_token: `a${n}`,
  refresh_token: `r${n}`,
  expires_in: ttl,
  refresh_expires_in: 43200,
  user: 'admin',
  role: 'admin',
});

afterEach(() => vi.useRealTimers());

describe('refreshDelay', () => {
  it('refreshes a 15 min token a minute early', () => {
    expect(refreshDelay({ accessExpires: 900_000 }, 0, 0)).toBe(840_000);
  });
  it('refreshes a 10 s token a quarter early', () => {
    expect(refreshDelay({ accessExpires: 10_000 }, 0, 0)).toBe(7_500);
  });
  it('never waits less than a second, even when already late', () => {
    expect(refreshDelay({ accessExpires: 10_000 }, 0, 20_000)).toBe(1_000);
  });
});

describe('fromPair', () => {
  it('refuses an incomplete pair', () => {
    expect(() => fromPair({ ...pair(1), role: 'root' }, 0)).toThrow();
    expect(() => fromPair({ ...pair(1), access_token: '' }, 0)).toThrow();
  });
});

describe('Session', () => {
  it('refreshes once for many callers and rotates the pair', async () => {
    let calls = 0;
    const s = new Session(async (rt) => {
      calls++;
      expect(rt).toBe('r1');
      return pair(2);
    }, new Mem());
    s.start(pair(1));
    const [a, b, c] = await Promise.all([s.refresh(), s.refresh(), s.refresh()]);
    expect([a, b, c]).toEqual([true, true, true]);
    expect(calls).toBe(1);
    expect(s.state?.access).toBe('a2');
    expect(s.state?.refresh).toBe('r2');
  });

  it('ends when the refresh token is refused, with a reason', async () => {
    const st = new Mem();
    const s = new Session(async () => null, st);
    const ended: (string | undefined)[] = [];
    s.subscribe((x, reason) => !x && ended.push(reason));
    s.start(pair(1));
    expect(await s.refresh()).toBe(false);
    expect(s.state).toBeNull();
    expect(ended[0]).toMatch(/expired/);
    expect(st.m.size).toBe(0);
  });

  it('keeps the session when the gateway cannot be reached', async () => {
    const s = new Session(async () => {
      throw new Error('network down');
    }, new Mem());
    s.start(pair(1));
    expect(await s.refresh()).toBe(false);
    expect(s.state?.access).toBe('a1');
    s.end();
  });

  it('refreshes by itself before the access token expires', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const s = new Session(async () => pair(++calls + 1, 10), new Mem());
    s.start(pair(1, 10));
    await vi.advanceTimersByTimeAsync(7_000);
    expect(calls).toBe(0);
    await vi.advanceTimersByTimeAsync(600);
    expect(calls).toBe(1);
    expect(s.state?.access).toBe('a2');
    s.end();
  });

  it('token() refreshes an access token about to expire', async () => {
    let now = 0;
    const s = new Session(async () => pair(2), new Mem(), () => now);
    s.start(pair(1, 10));
    now = 9_000;
    expect(await s.token()).toBe('a2');
    s.end();
  });

  it('restores a stored session and drops an expired one', () => {
    const st = new Mem();
    const s1 = new Session(async () => null, st, () => 0);
    s1.start(pair(1));
    expect(new Session(async () => null, st, () => 1000).state?.access).toBe('a1');
    expect(new Session(async () => null, st, () => 43_200_001).state).toBeNull();
    st.setItem('voltage.session', '{not json');
    expect(new Session(async () => null, st).state).toBeNull();
  });
});
