// Trend data: history from hissrv with live values appended, in the column
// layout uPlot draws ([times in seconds, series 1, series 2, ...]).
export interface Series {
  point: string; // hissrv's point name: comsrv:1:T:5, inst:1:M:2
  values: [number, number][]; // [Unix ms, value], oldest first
}

export interface RangeChoice {
  label: string;
  start: string; // hissrv's start (now-1h)
  spanMs: number;
  step: string;
}

export const ranges: RangeChoice[] = [
  { label: '15 min', start: 'now-15m', spanMs: 15 * 60_000, step: '5s' },
  { label: '1 hour', start: 'now-1h', spanMs: 3_600_000, step: '15s' },
  { label: '6 hours', start: 'now-6h', spanMs: 6 * 3_600_000, step: '1m' },
  { label: '24 hours', start: 'now-24h', spanMs: 86_400_000, step: '5m' },
  { label: '7 days', start: 'now-7d', spanMs: 7 * 86_400_000, step: '30m' },
];

/** historyName is hissrv's name of a UI point key ("1:T:5" → "comsrv:1:T:5"). */
export function historyName(key: string): string {
  return key.startsWith('inst:') ? key : `comsrv:${key}`;
}

/**
 * append adds a live sample to a series: in time order, never a duplicate or an
 * older time, and drops what fell out of the window (older than now - spanMs).
 */
export function append(s: Series, ts: number, v: number, now: number, spanMs: number): Series {
  const vals = s.values;
  const last = vals.length ? vals[vals.length - 1][0] : -Infinity;
  if (ts <= last) return s;
  const cut = now - spanMs;
  let i = 0;
  while (i < vals.length && vals[i][0] < cut) i++;
  return { point: s.point, values: [...vals.slice(i), [ts, v]] };
}

/**
 * columns aligns series on one time axis (seconds) for uPlot; a series without
 * a value at a time has null there (a gap, not a zero).
 */
export function columns(series: Series[]): (number | null)[][] {
  const times = new Set<number>();
  for (const s of series) for (const [t] of s.values) times.add(t);
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const out: (number | null)[][] = [xs.map((t) => t / 1000)];
  for (const s of series) {
    const col: (number | null)[] = new Array(xs.length).fill(null);
    for (const [t, v] of s.values) col[index.get(t)!] = v;
    out.push(col);
  }
  return out;
}

/** parseHistory reads hissrv's /history/range answer. */
export function parseHistory(body: unknown): Series[] {
  const pts = (body as { points?: { point?: string; values?: unknown[] }[] } | null)?.points;
  if (!Array.isArray(pts)) return [];
  return pts.map((p) => ({
    point: String(p.point ?? ''),
    values: (Array.isArray(p.values) ? p.values : [])
      .filter((x): x is [number, number] => Array.isArray(x) && typeof x[0] === 'number' && typeof x[1] === 'number')
      .map(([t, v]) => [t, v] as [number, number]),
  }));
}
