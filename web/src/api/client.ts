// The typed client of the public API: openapi-fetch over the types generated
// from openapi/openapi.json (schema.d.ts). Every request carries the session's
// access token (refreshed first when it is about to expire); a 401 refreshes
// once and retries, and a second 401 ends the session. No request waits more
// than timeoutMs: a dead service shows an error, it never hangs a page.
import createClient, { type Client } from 'openapi-fetch';
import type { paths } from './schema';
import type { Session, TokenPair } from '../lib/session';

export type Api = Client<paths>;
export type { paths };

export const timeoutMs = 10_000;

/** problemText is the detail of a problem+json error, or a fallback. */
export function problemText(err: unknown, status?: number): string {
  if (err && typeof err === 'object') {
    const e = err as { detail?: unknown; title?: unknown; errors?: { message?: string; location?: string }[] };
    const parts: string[] = [];
    if (typeof e.detail === 'string' && e.detail) parts.push(e.detail);
    else if (typeof e.title === 'string' && e.title) parts.push(e.title);
    for (const x of e.errors ?? []) if (x.message) parts.push(x.location ? `${x.location}: ${x.message}` : x.message);
    if (parts.length) return parts.join('; ');
  }
  if (typeof err === 'string' && err) return err;
  if (err instanceof Error) return err.message;
  return status ? `request failed (${status})` : 'request failed';
}

/** withTimeout is fetch bounded by ms, and by the caller's own signal. */
export function withTimeout(f: typeof fetch, ms: number): typeof fetch {
  return async (input, init) => {
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort(new Error(`no answer within ${ms / 1000} s — is the service running?`));
    }, ms);
    const own = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const onAbort = () => ac.abort(own?.reason);
    if (own?.aborted) ac.abort(own.reason);
    else own?.addEventListener('abort', onAbort, { once: true });
    try {
      return await f(input, { ...init, signal: ac.signal });
    } catch (e) {
      if (timedOut) throw new Error(`no answer within ${ms / 1000} s — is the service running?`);
      throw e;
    } finally {
      clearTimeout(timer);
      own?.removeEventListener('abort', onAbort);
    }
  };
}

/** refresher trades a refresh token at baseUrl; null when the gateway refuses it. */
export function refresher(baseUrl: string, f: typeof fetch = fetch) {
  return async (refreshToken: string): Promise<TokenPair | null> => {
    const res = await withTimeout(f, timeoutMs)(baseUrl + '/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
    if (res.status === 401 || res.status === 403 || res.status === 422) return null;
    if (!res.ok) throw new Error(`refresh: ${res.status}`);
    return (await res.json()) as TokenPair;
  };
}

/**
 * authFetch adds the session's bearer token to every request and, on a 401,
 * refreshes once and repeats the request. Without a session it sends the
 * request as it is (login).
 */
export function authFetch(session: Session, f: typeof fetch = fetch): typeof fetch {
  const bounded = withTimeout(f, timeoutMs);
  return async (input, init) => {
    const req = new Request(input, init);
    const send = async (token: string | null) => {
      const r = req.clone();
      if (token) r.headers.set('Authorization', `Bearer ${token}`);
      return bounded(r);
    };
    const token = await session.token();
    const res = await send(token);
    if (res.status !== 401 || !token) return res;
    if (!(await session.refresh())) return res;
    return send(session.state?.access ?? null);
  };
}

/** newApi is the client of the API at baseUrl ("" for the page's own origin). */
export function newApi(baseUrl: string, session: Session, f: typeof fetch = (...a) => fetch(...a)): Api {
  return createClient<paths>({ baseUrl: baseUrl || location.origin, fetch: authFetch(session, f) });
}
