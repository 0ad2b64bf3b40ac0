import { useEffect, useRef, useState, useCallback } from 'preact/hooks';
import { useContext } from 'preact/hooks';
import { createContext } from 'preact';
import type { Api } from '../api/client';
import { problemText } from '../api/client';
import type { Handlers, Live, Subscription } from '../lib/live';
import type { Role } from '../lib/roles';

/** Site is what a site's pages talk to: the gateway itself, or a site through the cloud. */
export interface Site {
  api: Api;
  live: Pick<Live, 'subscribe'> | null; // the WebSocket, or a Poller (lib/poll.ts) where there is none
  role: Role;
  user: string;
  base: string; // hash prefix of this site's pages ("#/" or "#/fleet/sites/x/")
  name?: string;
}

export const SiteContext = createContext<Site | null>(null);

export function useSite(): Site {
  const s = useContext(SiteContext);
  if (!s) throw new Error('no site');
  return s;
}

export interface Loaded<T> {
  data: T | undefined;
  error: string;
  loading: boolean;
  reload: () => void;
}

/**
 * useLoad runs load when deps change and on reload(); a slow or dead service
 * shows as error (the client bounds every request), never as a page that waits.
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState('');
  const [loading, setLoading] = useState(true);
  const [n, setN] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    setLoading(true);
    load(ac.signal)
      .then((d) => {
        if (ac.signal.aborted) return;
        setData(d);
        setError('');
      })
      .catch((e: unknown) => {
        if (ac.signal.aborted) return;
        setError(problemText(e));
      })
      .finally(() => {
        if (!ac.signal.aborted) setLoading(false);
      });
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { data, error, loading, reload };
}

/** unwrap turns an openapi-fetch answer into its data or a thrown problem text. */
export async function unwrap<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const r = await p;
  if (r.error !== undefined || !r.response.ok) throw new Error(problemText(r.error, r.response.status));
  return r.data as T;
}

/** useLive subscribes while the component is shown. */
export function useLive(sub: Subscription | null, h: Handlers): void {
  const site = useSite();
  const ref = useRef(h);
  ref.current = h;
  const key = JSON.stringify(sub);
  useEffect(() => {
    if (!sub || !site.live) return;
    return site.live.subscribe(sub, {
      values: (v, s) => ref.current.values?.(v, s),
      alarm: (e) => ref.current.alarm?.(e),
      command: (r) => ref.current.command?.(r),
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, site.live]);
}

/** useNow re-renders every ms (ages of values). */
export function useNow(ms: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
