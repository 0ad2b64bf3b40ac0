// The login session: the token pair, its timely refresh, and the end of it.
// Refresh tokens are single use (the gateway revokes the whole login when a
// spent one comes back), so refreshes are single-flight.
import { isRole, type Role } from './roles';

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number; // seconds
  refresh_expires_in: number;
  user: string;
  role: string;
}

export interface SessionState {
  user: string;
  role: Role;
  access: string;
  refresh: string;
  accessExpires: number; // Unix ms
  refreshExpires: number;
}

/** fromPair makes the state of a token pair received at now (Unix ms). */
export function fromPair(p: TokenPair, now: number): SessionState {
  if (!p.access_token || !p.refresh_token || !isRole(p.role)) {
    throw new Error('the gateway answered an incomplete token pair');
  }
  return {
    user: p.user,
    role: p.role,
    access: p.access_token,
    refresh: p.refresh_token,
    accessExpires: now + p.expires_in * 1000,
    refreshExpires: now + p.refresh_expires_in * 1000,
  };
}

/**
 * refreshDelay is how long to wait before refreshing an access token that
 * expires at accessExpires: a quarter of its life early, at most a minute
 * early, never less than a second from now.
 */
export function refreshDelay(s: Pick<SessionState, 'accessExpires'>, issued: number, now: number): number {
  const life = s.accessExpires - issued;
  const lead = Math.min(60_000, Math.max(1_000, life / 4));
  return Math.max(1_000, s.accessExpires - lead - now);
}

/** needsRefresh tells whether the access token is (about to be) expired. */
export function needsRefresh(s: SessionState, now: number): boolean {
  return s.accessExpires - now < 2_000;
}

/** expired tells whether nothing can bring the session back. */
export function expired(s: SessionState, now: number): boolean {
  return s.refreshExpires <= now;
}

export interface Storage {
  getItem(k: string): string | null;
  setItem(k: string, v: string): void;
  removeItem(k: string): void;
}

const storageKey = 'voltage.session';

export function load(st: Storage): SessionState | null {
  try {
    const raw = st.getItem(storageKey);
    if (!raw) return null;
    const s = JSON.parse(raw) as SessionState;
    if (!s || typeof s.access !== 'string' || typeof s.refresh !== 'string' || !isRole(s.role)) return null;
    return s;
  } catch {
    return null;
  }
}

export function save(st: Storage, s: SessionState | null): void {
  if (s) st.setItem(storageKey, JSON.stringify(s));
  else st.removeItem(storageKey);
}

export type RefreshFn = (refreshToken: string) => Promise<TokenPair | null>;

/**
 * Session holds the tokens of one login. refresh() trades the refresh token for
 * a new pair once however many callers ask at the same time; when that fails
 * the session ends and onEnd is called (the app shows the login page).
 */
export class Session {
  state: SessionState | null;
  private inflight: Promise<boolean> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private issued = 0;
  private listeners = new Set<(s: SessionState | null, reason?: string) => void>();

  constructor(
    private doRefresh: RefreshFn,
    private storage: Storage,
    private now: () => number = Date.now,
  ) {
    this.state = load(storage);
    if (this.state && expired(this.state, this.now())) this.state = null;
    if (this.state) {
      this.issued = this.now();
      this.schedule();
    }
  }

  subscribe(fn: (s: SessionState | null, reason?: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** start begins the session of a fresh login. */
  start(p: TokenPair): void {
    const now = this.now();
    this.issued = now;
    this.set(fromPair(p, now));
  }

  /** end ends the session (logout, or a refresh that failed). */
  end(reason?: string): void {
    clearTimeout(this.timer);
    this.state = null;
    save(this.storage, null);
    for (const l of this.listeners) l(null, reason);
  }

  /** token is a usable access token, refreshed first when it is about to expire. */
  async token(): Promise<string | null> {
    const s = this.state;
    if (!s) return null;
    if (needsRefresh(s, this.now()) && !(await this.refresh())) return null;
    return this.state?.access ?? null;
  }

  /** refresh renews the pair; false when the session is over. */
  refresh(): Promise<boolean> {
    if (this.inflight) return this.inflight;
    const s = this.state;
    if (!s) return Promise.resolve(false);
    const spent = s.refresh;
    this.inflight = (async () => {
      let pair: TokenPair | null = null;
      let failed = false;
      try {
        pair = await this.doRefresh(spent);
      } catch {
        failed = true; // the gateway could not be reached: keep the session, try again later
      }
      if (this.state?.refresh !== spent) return this.state !== null; // ended or replaced meanwhile
      if (pair) {
        this.start(pair);
        return true;
      }
      if (failed && !expired(s, this.now())) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => void this.refresh(), 5_000);
        return false;
      }
      this.end('Your session has expired. Please log in again.');
      return false;
    })().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private set(s: SessionState): void {
    this.state = s;
    save(this.storage, s);
    this.schedule();
    for (const l of this.listeners) l(s);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const s = this.state;
    if (!s) return;
    this.timer = setTimeout(() => void this.refresh(), refreshDelay(s, this.issued, this.now()));
  }
}
