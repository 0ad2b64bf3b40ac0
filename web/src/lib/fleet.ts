// The cloud hub's fleet API (cloud/hub, openapi/cloud-openapi.json): sites with
// their status, their latest values, history and commands, and the active
// alarms of every site.
import type { Alarm } from './alarms';
import type { components } from '../api/cloud-schema';

/** SiteSummary is the hub's: status, and key_figures once the site sent one of their points. */
export type SiteSummary = components['schemas']['SiteSummary'];

/** KeyFigures are a site's power, PV, grid, energy today and SOC, computed at the hub. */
export type KeyFigures = components['schemas']['SiteKeyFigures'];

export type SiteValue = components['schemas']['Value'];

export interface FleetAlarm {
  site: string;
  key: string;
  alarm: Alarm;
}

/** fleetAlarms flattens the hub's alarms into alarms that know their site. */
export function fleetAlarms(body: unknown): (Alarm & { site: string })[] {
  const list = (body as { alarms?: unknown } | null)?.alarms;
  if (!Array.isArray(list)) return [];
  const out: (Alarm & { site: string })[] = [];
  for (const x of list as FleetAlarm[]) {
    if (!x || typeof x.site !== 'string' || typeof x.key !== 'string') continue;
    const a = x.alarm && typeof x.alarm === 'object' ? x.alarm : ({} as Alarm);
    out.push({ ...a, key: x.key, severity: a.severity ?? 'info', site: x.site });
  }
  return out;
}

/** valueKey is the UI's point key of a site value ("comsrv:1:T" + "5" → "1:T:5"). */
export function valueKey(v: Pick<SiteValue, 'key' | 'point'>): string {
  const k = v.key.startsWith('comsrv:') ? v.key.slice('comsrv:'.length) : v.key;
  return `${k}:${v.point}`;
}

/** sortSites puts sites with alarms first, then offline ones, then by name. */
export function sortSites(s: SiteSummary[]): SiteSummary[] {
  return [...s].sort(
    (a, b) =>
      Number(b.active_alarms > 0) - Number(a.active_alarms > 0) ||
      Number(a.online) - Number(b.online) ||
      (a.name ?? a.id).localeCompare(b.name ?? b.id),
  );
}
