// Poller stands in for the WebSocket push (lib/live.ts) where there is none: a
// site's pages reached through the cloud hub's site API proxy (the hub carries
// HTTP only). Every intervalMs it reads what the current subscriptions name —
// channel points by pattern, instance measurements — and hands each subscriber
// the values its subscription names; alarm subscribers are told to reload.
import type { Handlers, Subscription } from './live';
import type { Value } from './points';

/** PollSource reads the values a subscription names (the site API). */
export interface PollSource {
  points(pattern: string): Promise<Value[]>;
  measurements(instance: number): Promise<Value[]>;
}

export const pollMs = 3000;

/** matchPattern tells whether a channel point key (1:T:5) matches a pattern (1:*:*, 1:T:5). */
export function matchPattern(pattern: string, v: Pick<Value, 'channel' | 'type' | 'point'>): boolean {
  if (v.channel === undefined) return false;
  const [c, t, p] = pattern.split(':');
  const ok = (want: string | undefined, got: string) => want === undefined || want === '*' || want.toUpperCase() === got.toUpperCase();
  return ok(c, String(v.channel)) && ok(t, v.type ?? '') && ok(p, String(v.point));
}

/** wanted is the part of vs that sub names. */
export function wanted(sub: Subscription, vs: Value[]): Value[] {
  return vs.filter((v) =>
    v.instance !== undefined
      ? (sub.instances ?? []).includes(v.instance)
      : (sub.channels ?? []).includes(v.channel ?? -1) || (sub.points ?? []).some((p) => matchPattern(p, v)),
  );
}

/** reads lists what a set of subscriptions needs read: point patterns and instances. */
export function reads(subs: Subscription[]): { patterns: string[]; instances: number[] } {
  const patterns = new Set<string>();
  const instances = new Set<number>();
  for (const s of subs) {
    for (const c of s.channels ?? []) patterns.add(`${c}:*:*`);
    for (const p of s.points ?? []) patterns.add(p);
    for (const i of s.instances ?? []) instances.add(i);
  }
  return { patterns: [...patterns], instances: [...instances] };
}

export class Poller {
  private subs = new Map<number, { sub: Subscription; h: Handlers }>();
  private n = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;

  constructor(
    private src: PollSource,
    private intervalMs = pollMs,
  ) {}

  /** subscribe is Live's: h hears the values sub names every round until the returned function is called. */
  subscribe(sub: Subscription, h: Handlers): () => void {
    const id = ++this.n;
    this.subs.set(id, { sub, h });
    if (!this.timer) this.timer = setInterval(() => void this.round(), this.intervalMs);
    return () => {
      this.subs.delete(id);
      if (this.subs.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  /** round reads once and hands the values out; a round still running is not overtaken. */
  async round(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const { patterns, instances } = reads([...this.subs.values()].map((s) => s.sub));
      const vals: Value[] = [];
      // A failed read leaves its values as they were; the page shows its own errors.
      await Promise.all([
        ...patterns.map(async (p) => vals.push(...(await this.src.points(p).catch(() => [])))),
        ...instances.map(async (i) => vals.push(...(await this.src.measurements(i).catch(() => [])).map((v) => ({ ...v, instance: i })))),
      ]);
      for (const { sub, h } of [...this.subs.values()]) {
        const mine = wanted(sub, vals);
        if (h.values && mine.length) h.values(mine, false);
        if (sub.alarms && h.alarm) h.alarm({});
      }
    } finally {
      this.busy = false;
    }
  }
}
