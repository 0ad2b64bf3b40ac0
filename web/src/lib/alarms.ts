// Active alarms as alarmsrv answers them (GET /alarms).
export interface Alarm {
  key: string;
  id?: string;
  rule?: string;
  name?: string;
  severity: string;
  instance?: string;
  source?: string;
  message?: string;
  value?: number;
  unit?: string;
  active?: boolean;
  acked?: boolean;
  shelved?: boolean;
  raised_at?: number;
  updated_at?: number;
  acked_by?: string;
}

export const severities = ['critical', 'major', 'minor', 'warning', 'info'] as const;

/** countBySeverity counts alarms by severity, every severity present (0 when none). */
export function countBySeverity(alarms: Alarm[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(severities.map((s) => [s, 0]));
  for (const a of alarms) out[a.severity] = (out[a.severity] ?? 0) + 1;
  return out;
}

/** asAlarms accepts alarmsrv's list as a bare array or {alarms: [...]}. */
export function asAlarms(body: unknown): Alarm[] {
  const list = Array.isArray(body) ? body : (body as { alarms?: unknown } | null)?.alarms;
  if (!Array.isArray(list)) return [];
  return list.filter((a): a is Alarm => !!a && typeof a === 'object' && typeof (a as Alarm).key === 'string');
}

/** sortAlarms puts unacknowledged first, then by severity, then newest. */
export function sortAlarms<T extends Alarm>(alarms: T[]): T[] {
  const rank = (s: string) => {
    const i = (severities as readonly string[]).indexOf(s);
    return i < 0 ? severities.length : i;
  };
  return [...alarms].sort(
    (a, b) =>
      Number(!!a.acked) - Number(!!b.acked) || rank(a.severity) - rank(b.severity) || (b.raised_at ?? 0) - (a.raised_at ?? 0),
  );
}
