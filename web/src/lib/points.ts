// Point values as the API and the WebSocket deliver them, and their keys.
export type PointType = 'T' | 'S' | 'C' | 'A';

export interface Value {
  channel?: number;
  type?: string;
  instance?: number;
  point: number;
  value: number | null;
  quality: string;
  ts?: number;
}

/** keyOf names a value: "1:T:5" for a channel point, "inst:3:M:2" for an instance measurement. */
export function keyOf(v: Pick<Value, 'channel' | 'type' | 'instance' | 'point'>): string {
  if (v.instance) return `inst:${v.instance}:M:${v.point}`;
  return `${v.channel ?? 0}:${v.type ?? '?'}:${v.point}`;
}

export interface PointRef {
  channel: number;
  type: PointType;
  point: number;
}

/** parseRef reads "1:T:5"; null when it is not a channel point name. */
export function parseRef(s: string): PointRef | null {
  const m = /^(\d+):([TSCA]):(\d+)$/.exec(s.trim());
  if (!m) return null;
  return { channel: Number(m[1]), type: m[2] as PointType, point: Number(m[3]) };
}

/**
 * merge returns values with the newer of each key from changes applied; a
 * change older than what is held (a late snapshot) does not replace it.
 */
export function merge(values: Map<string, Value>, changes: Value[]): Map<string, Value> {
  const out = new Map(values);
  for (const c of changes) {
    const k = keyOf(c);
    const have = out.get(k);
    if (have && have.ts && c.ts && c.ts < have.ts) continue;
    out.set(k, c);
  }
  return out;
}

/** formatValue shows a value with a sensible number of digits. */
export function formatValue(v: number | null | undefined, unit = ''): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  const digits = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : a === 0 ? 0 : 3;
  const s = v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit ? `${s} ${unit}` : s;
}

/** formatTime shows a Unix ms time as local date and time, or "—". */
export function formatTime(ms: number | string | null | undefined): string {
  const n = typeof ms === 'string' ? Number(ms) : ms;
  if (!n || !Number.isFinite(n)) return '—';
  const d = new Date(n);
  const p = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** age shows how long ago ms was, relative to now. */
export function age(ms: number | undefined, now: number): string {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** qualityClass is the CSS class of a quality. */
export function qualityClass(q: string): string {
  return q === 'good' ? 'q-good' : q === 'missing' ? 'q-missing' : 'q-bad';
}
