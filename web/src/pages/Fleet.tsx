// The fleet pages of the cloud hub: every site with its status and figures,
// one site's status, values, alarms, trends and commands through the cloud
// API, and the alarms of the whole fleet. The hub has no WebSocket push: the
// pages poll.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import createClient, { type Client } from 'openapi-fetch';
import type { paths as cloudPaths } from '../api/cloud-schema';
import { unwrap, useLoad, useNow, useSite } from '../ui/hooks';
import { Confirm, Quality, Severity, Status } from '../ui/parts';
import { age, formatTime, formatValue } from '../lib/points';
import { countBySeverity, severities, sortAlarms } from '../lib/alarms';
import { fleetAlarms, sortSites, valueKey, type SiteSummary, type SiteValue } from '../lib/fleet';
import { parseHistory, ranges } from '../lib/trend';
import { can } from '../lib/roles';
import { commandOutcome, type CommandResult } from '../lib/commands';
import { Chart, type LoadHistory } from './Trends';

/** Cloud is the typed client of the hub's API (openapi/cloud-openapi.json). */
export type Cloud = Client<cloudPaths>;

export const CloudContext = createContext<Cloud | null>(null);

function useCloud(): Cloud {
  const c = useContext(CloudContext);
  if (!c) throw new Error('no cloud');
  return c;
}

/** newCloud is the hub's client over an authenticated fetch (authFetch). */
export function newCloud(f: typeof fetch): Cloud {
  return createClient<cloudPaths>({ baseUrl: location.origin, fetch: f });
}

const noLabels = new Map<string, string>();

/** usePoll reloads l every ms while shown. */
function usePoll(reload: () => void, ms: number) {
  useEffect(() => {
    const t = setInterval(reload, ms);
    return () => clearInterval(t);
  }, [reload, ms]);
}

export function Sites() {
  const cloud = useCloud();
  const now = useNow(5000);
  const sites = useLoad(async () => sortSites(((await unwrap(cloud.GET('/sites'))).sites ?? []) as SiteSummary[]), [cloud]);
  usePoll(sites.reload, 10_000);
  return (
    <div class="page">
      <h2>Sites</h2>
      <Status of={sites} empty={(l) => l.length === 0} emptyText="No site has reported to the hub yet, or none is in your scope.">
        {(l) => {
          const figures = l.some((s) => s.key_figures);
          return (
          <table class="grid" data-testid="sites">
            <thead>
              <tr>
                <th>Site</th>
                <th>Status</th>
                <th>Last seen</th>
                {figures && <th class="num">Power</th>}
                {figures && <th class="num">Energy today</th>}
                {figures && <th class="num">SOC</th>}
                <th class="num">Active alarms</th>
                <th>Channels up</th>
                <th>Version</th>
              </tr>
            </thead>
            <tbody>
              {l.map((s) => (
                <tr key={s.id} data-testid={`site-${s.id}`}>
                  <td>
                    <a href={`#/sites/${encodeURIComponent(s.id)}`}>{s.name || s.id}</a>{' '}
                    <a class="open-site" href={`#/sites/${encodeURIComponent(s.id)}/overview`} data-testid={`open-${s.id}`} title="The site's own pages, through the hub">
                      pages →
                    </a>
                  </td>
                  <td>
                    <span class={`link-state ${s.online ? 'st-up' : 'st-down'}`}>{s.online ? 'online' : 'offline'}</span>
                  </td>
                  <td title={formatTime(s.last_seen)}>{age(s.last_seen, now)}</td>
                  {figures && <td class="num">{formatValue(s.key_figures?.power_kw, 'kW')}</td>}
                  {figures && <td class="num">{formatValue(s.key_figures?.energy_today_kwh, 'kWh')}</td>}
                  {figures && <td class="num">{formatValue(s.key_figures?.soc, '%')}</td>}
                  <td class="num">{s.active_alarms > 0 ? <a href={`#/alarms?site=${encodeURIComponent(s.id)}`}>{s.active_alarms}</a> : 0}</td>
                  <td>
                    {s.channels_up}/{s.channels}
                  </td>
                  <td>{s.version ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
          );
        }}
      </Status>
    </div>
  );
}

export function FleetAlarms({ query }: { query: URLSearchParams }) {
  const cloud = useCloud();
  const only = query.get('site') ?? '';
  const alarms = useLoad(
    async () => sortAlarms(fleetAlarms(await unwrap(cloud.GET('/alarms', { params: { query: only ? { site: only } : {} } })))),
    [cloud, only],
  );
  usePoll(alarms.reload, 10_000);
  return (
    <div class="page">
      <h2>Fleet alarms{only && ` — ${only}`}</h2>
      <Status of={alarms} empty={(l) => l.length === 0} emptyText="No active alarms.">
        {(l) => {
          const c = countBySeverity(l);
          return (
            <>
              <div class="counts">
                {severities.map((s) => (
                  <span key={s} class={`count sev-${s}`}>
                    {c[s]} {s}
                  </span>
                ))}
              </div>
              <table class="grid" data-testid="fleet-alarms">
                <thead>
                  <tr>
                    <th>Site</th>
                    <th>Severity</th>
                    <th>Alarm</th>
                    <th>Message</th>
                    <th>Raised</th>
                    <th>State</th>
                  </tr>
                </thead>
                <tbody>
                  {l.map((a) => (
                    <tr key={`${a.site}/${a.key}`}>
                      <td>
                        <a href={`#/sites/${encodeURIComponent(a.site)}`}>{a.site}</a>
                      </td>
                      <td>
                        <Severity s={a.severity} />
                      </td>
                      <td>{a.name ?? a.key}</td>
                      <td class="wrap">{a.message ?? ''}</td>
                      <td>{formatTime(a.raised_at)}</td>
                      <td>{[a.acked ? 'acknowledged' : 'unacknowledged', a.shelved ? 'shelved' : ''].filter(Boolean).join(', ')}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          );
        }}
      </Status>
    </div>
  );
}

/** FleetSite is one site through the cloud: status, values, trend, commands. */
export function FleetSite({ id }: { id: string }) {
  const cloud = useCloud();
  const site = useSite();
  const now = useNow(1000);
  const sitePath = { params: { path: { site: id } } };
  const status = useLoad(() => unwrap(cloud.GET('/sites/{site}', sitePath)), [cloud, id]);
  const values = useLoad(async () => (await unwrap(cloud.GET('/sites/{site}/values', sitePath))).values ?? [], [cloud, id]);
  usePoll(status.reload, 10_000);
  usePoll(values.reload, 5_000);
  const [chosen, setChosen] = useState<string[]>([]);
  const [rangeIdx, setRangeIdx] = useState(1);
  const [cmd, setCmd] = useState<SiteValue | null>(null);
  const [result, setResult] = useState('');
  // Stable across renders: the chart reloads its history when load changes.
  const load = useCallback<LoadHistory>(
    async (points, range) => {
      const r = await unwrap(
        cloud.GET('/sites/{site}/history', { params: { path: { site: id }, query: { point: points, start: range.start, step: range.step, agg: 'avg' } } }),
      );
      return parseHistory({ points: r.series ?? [] });
    },
    [cloud, id],
  );
  const control = can(site.role, 'operator');
  return (
    <div class="page">
      <p>
        <a href="#/sites">← Sites</a>
      </p>
      <Status of={status}>
        {(s) => (
          <>
            <h2>
              {s.name || s.id}{' '}
              <span class={`link-state ${s.online ? 'st-up' : 'st-down'}`}>{s.online ? 'online' : 'offline'}</span>
              <small>
                {' '}
                last seen {age(s.last_seen, now)} · version {s.version ?? '—'} · {s.active_alarms} active alarms
              </small>
            </h2>
            <div class="cards">
              <section class="card">
                <h3>Services</h3>
                <ul class="links">
                  {(s.heartbeat?.services ?? []).map((x) => (
                    <li key={x.name}>
                      <span class={`link-state ${x.ready ? 'st-up' : 'st-down'}`}>{x.ready ? 'ready' : 'not ready'}</span> {x.name}
                    </li>
                  ))}
                  {!s.heartbeat?.services?.length && <li class="empty">No heartbeat yet.</li>}
                </ul>
              </section>
              <section class="card">
                <h3>Channels</h3>
                <ul class="links">
                  {(s.heartbeat?.channels ?? []).map((c) => (
                    <li key={c.id}>
                      <span class={`link-state st-${c.state}`}>{c.state}</span> {c.name ?? c.id} {c.last_error && <small>{c.last_error}</small>}
                    </li>
                  ))}
                  {!s.heartbeat?.channels?.length && <li class="empty">No channels reported.</li>}
                </ul>
              </section>
              <section class="card">
                <h3>Uplink</h3>
                <p>
                  {s.source?.messages ?? 0} messages in {s.source?.stream ?? '—'}, lag {s.source?.lag ?? 0}
                  {s.source?.error && <span class="error">{s.source.error}</span>}
                </p>
                <p>
                  <a href={`#/alarms?site=${encodeURIComponent(s.id)}`}>Alarms of this site →</a>
                </p>
                <p>
                  <a href={`#/sites/${encodeURIComponent(s.id)}/overview`} data-testid="open-site">
                    The site's own pages →
                  </a>
                </p>
              </section>
            </div>
          </>
        )}
      </Status>
      <h3>Trend</h3>
      <label>
        Range{' '}
        <select value={rangeIdx} onChange={(e) => setRangeIdx(Number((e.target as HTMLSelectElement).value))}>
          {ranges.map((r, i) => (
            <option key={r.label} value={i}>
              {r.label}
            </option>
          ))}
        </select>
      </label>
      {chosen.length === 0 ? (
        <div class="empty">Tick points in the table below to draw them.</div>
      ) : (
        <div class="chart-area">
          <Chart keys={chosen} labels={noLabels} rangeIdx={rangeIdx} load={load} />
        </div>
      )}
      {result && <div class="notice">{result}</div>}
      <h3>Latest values</h3>
      <Status of={values} empty={(l) => l.length === 0} emptyText="The site has sent no values up yet.">
        {(l) => (
          <table class="grid" data-testid="site-values">
            <thead>
              <tr>
                <th>Trend</th>
                <th>Point</th>
                <th class="num">Value</th>
                <th>Quality</th>
                <th>Time</th>
                {control && <th />}
              </tr>
            </thead>
            <tbody>
              {l.map((v) => {
                const k = valueKey(v);
                const writable = /^\d+:[CA]:\d+$/.test(k);
                return (
                  <tr key={k}>
                    <td>
                      <input
                        type="checkbox"
                        checked={chosen.includes(k)}
                        onChange={() => setChosen((c) => (c.includes(k) ? c.filter((x) => x !== k) : [...c, k]))}
                      />
                    </td>
                    <td>{k}</td>
                    <td class="num">{formatValue(v.value)}</td>
                    <td>
                      <Quality q={v.quality} />
                    </td>
                    <td title={formatTime(v.ts)}>{age(v.ts, now)}</td>
                    {control && <td>{writable && <button onClick={() => setCmd(v)}>Send…</button>}</td>}
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Status>
      {cmd && <SiteCommand site={id} v={cmd} onClose={(r) => (setCmd(null), r && setResult(r))} />}
    </div>
  );
}

function SiteCommand({ site, v, onClose }: { site: string; v: SiteValue; onClose: (r?: string) => void }) {
  const cloud = useCloud();
  const [value, setValue] = useState('');
  const [ch, type, point] = valueKey(v).split(':');
  return (
    <Confirm
      title={`Send a command to ${valueKey(v)} through the cloud`}
      confirmText="Send"
      onClose={onClose}
      run={async () => {
        const x = Number(value);
        if (value.trim() === '' || !Number.isFinite(x)) throw new Error('enter a number');
        const r = await unwrap(
          cloud.POST('/sites/{site}/commands', {
            params: { path: { site } },
            body: { channel: Number(ch), type: type as 'C' | 'A', point: Number(point), value: x, wait_ms: 10000 },
          }),
        );
        return commandOutcome(r.result as CommandResult);
      }}
    >
      <p class="hint">The site checks the command against its own list of remotely controllable points.</p>
      <label>
        Value <input inputMode="decimal" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} required autoFocus />
      </label>
    </Confirm>
  );
}

/** The cloud's audit trail (admin): logins, user changes, commands to sites. */
export function FleetAudit() {
  const cloud = useCloud();
  const log = useLoad(async () => (await unwrap(cloud.GET('/audit', { params: { query: { limit: 500 } } }))).entries ?? [], [cloud]);
  return (
    <div class="page">
      <h2>Audit log</h2>
      <Status of={log} empty={(l) => l.length === 0} emptyText="No entries.">
        {(l) => (
          <table class="grid" data-testid="fleet-audit">
            <thead>
              <tr>
                <th>Time</th>
                <th>Action</th>
                <th>User</th>
                <th>Site</th>
                <th>Details</th>
              </tr>
            </thead>
            <tbody>
              {l.map((e) => (
                <tr key={e.seq}>
                  <td>{formatTime(e.ts)}</td>
                  <td>{e.action}</td>
                  <td>{e.user}</td>
                  <td>{e.site ?? ''}</td>
                  <td class="wrap">
                    {Object.entries(e.fields ?? {})
                      .map(([k, v]) => `${k}=${v}`)
                      .join(' ')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Status>
    </div>
  );
}
