import { describe, expect, it } from 'vitest';
import { authFetch, problemText, refresher, withTimeout } from './client';
import { Session, type Storage, type TokenPair } from '../lib/session';

const mem = (): Storage => {
  const m = new Map<string, string>();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v), removeItem: (k) => void m.delete(k) };
};
const pair = (n: number): TokenPair => ({
  access_token: `a${n}`,
  refresh_token: `r${n}`,
  expires_in: 900,
  refresh_expires_in: 43200,
  user: 'u',
  role: 'operator',
});

describe('authFetch', () => {
  it('sends the bearer token, refreshes on 401 and repeats once', async () => {
    const seen: string[] = [];
    const server: typeof fetch = async (input) => {
      const auth = (input as Request).headers.get('Authorization') ?? '';
      seen.push(auth);
      return new Response(null, { status: auth === 'Bearer a2' ? 200 : 401 });
    };
    const s = new Session(async () => pair(2), mem());
    s.start(pair(1));
    const res = await authFetch(s, server)('http://x/channels');
    expect(res.status).toBe(200);
    expect(seen).toEqual(['Bearer a1', 'Bearer a2']);
    s.end();
  });

  it('ends the session when the refresh is refused too', async () => {
    const server: typeof fetch = async () => new Response(null, { status: 401 });
    const s = new Session(async () => null, mem());
    s.start(pair(1));
    const res = await authFetch(s, server)('http://x/channels');
    expect(res.status).toBe(401);
    expect(s.state).toBeNull();
  });

  it('passes a 403 through without refreshing', async () => {
    let refreshes = 0;
    const s = new Session(async () => {
      refreshes++;
      return pair(2);
    }, mem());
    s.start(pair(1));
    const res = await authFetch(s, async () => new Response(null, { status: 403 }))('http://x/commands', { method: 'POST', body: '{}' });
    expect(res.status).toBe(403);
    expect(refreshes).toBe(0);
    s.end();
  });
});

describe('refresher', () => {
  it('answers null for a refused token and throws for a broken gateway', async () => {
    expect(await refresher('http://x', async () => new Response('{}', { status: 401 }))('r')).toBeNull();
    await expect(refresher('http://x', async () => new Response('', { status: 502 }))('r')).rejects.toThrow(/502/);
    const p = await refresher('http://x', async () => new Response(JSON.stringify(pair(5)), { status: 200 }))('r');
    expect(p?.access_token).toBe('a5');
  });
});

describe('withTimeout', () => {
  it('gives up on a service that never answers', async () => {
    const hang: typeof fetch = (_i, init) =>
      new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
    await expect(withTimeout(hang, 50)('http://x/')).rejects.toThrow(/no answer within/);
  });
});

describe('problemText', () => {
  it('says what the problem says', () => {
    expect(problemText({ title: 'Unprocessable Entity', detail: 'validation failed', errors: [{ message: 'expected number', location: 'body.value' }] })).toBe(
      'validation failed; body.value: expected number',
    );
    expect(problemText({ title: 'Forbidden' })).toBe('Forbidden');
    expect(problemText(undefined, 502)).toBe('request failed (502)');
    expect(problemText(new Error('boom'))).toBe('boom');
  });
});
