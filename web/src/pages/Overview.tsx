import { useState } from 'preact/hooks';
import { unwrap, useLive, useLoad, useSite } from '../ui/hooks';
import { Status } from '../ui/parts';
import { batteryLabel, flow, gridLabel, type Direction, type FlowInput } from '../lib/flow';
import { formatValue, merge, type Value } from '../lib/points';
import { asAlarms, countBySeverity, severities } from '../lib/alarms';

interface Measurement {
  id: number;
  name: string;
  unit?: string;
  value: number | null;
  quality?: string;
  ts?: number;
}
interface Instance {
  id: number;
  name: string;
  product: string;
  description?: string;
  measurements?: Measurement[];
}

/** The overview: the site's energy flow, live, with alarm counts and channel links. */
export function Overview() {
  const site = useSite();
  const instances = useLoad(() => unwrap<unknown>(site.api.GET('/instances')) as Promise<Instance[]>, [site.api]);
  const station = Array.isArray(instances.data) ? instances.data.find((i) => i.product === 'station') : undefined;
  return (
    <div class="page">
      <h2>Overview</h2>
      <Status of={instances} empty={() => !station} emptyText="This site has no station instance (product station): no energy flow to show.">
        {() => <EnergyFlow station={station!} />}
      </Status>
      <div class="cards">
        <AlarmCounts />
        <Links />
      </div>
    </div>
  );
}

function EnergyFlow({ station }: { station: Instance }) {
  const [vals, setVals] = useState(() => {
    const m = new Map<string, Value>();
    for (const x of station.measurements ?? []) {
      m.set(`inst:${station.id}:M:${x.id}`, { instance: station.id, point: x.id, value: x.value, quality: x.quality ?? 'good', ts: x.ts });
    }
    return m;
  });
  useLive({ instances: [station.id] }, { values: (vs) => setVals((m) => merge(m, vs.filter((v) => v.instance === station.id))) });
  const byName: FlowInput & Record<string, number | null> = {};
  const unit: Record<string, string> = {};
  for (const x of station.measurements ?? []) {
    const v = vals.get(`inst:${station.id}:M:${x.id}`);
    byName[x.name] = v && v.quality !== 'missing' ? v.value : null;
    unit[x.name] = x.unit ?? '';
  }
  const f = flow(byName);
  const kw = (v: number | null) => (v === null ? '—' : `${formatValue(Math.abs(v))} kW`);
  return (
    <section class="flow" aria-label="Energy flow">
      <svg viewBox="0 0 400 300" role="img" aria-label="Energy flow diagram">
        <Line x1={200} y1={150} x2={80} y2={60} dir={f.pv.dir === 'out' ? 'to-center' : f.pv.dir} />
        <Line x1={200} y1={150} x2={320} y2={60} dir={f.grid.dir === 'in' ? 'to-center' : f.grid.dir === 'out' ? 'from-center' : f.grid.dir} />
        <Line x1={200} y1={150} x2={80} y2={240} dir={f.battery.dir === 'out' ? 'to-center' : f.battery.dir === 'in' ? 'from-center' : f.battery.dir} />
        <Line x1={200} y1={150} x2={320} y2={240} dir={f.load.dir === 'in' ? 'from-center' : f.load.dir} />
        <circle cx={200} cy={150} r={10} class="hub" />
        <Node x={80} y={60} label="PV" value={kw(f.pv.kw)} sub={f.pv.dir === 'out' ? 'producing' : 'idle'} id="pv" />
        <Node x={320} y={60} label="Grid" value={kw(f.grid.kw)} sub={gridLabel(f.grid.dir)} id="grid" />
        <Node
          x={80}
          y={240}
          label="Battery"
          value={kw(f.battery.kw)}
          sub={`${batteryLabel(f.battery.dir)} · SOC ${f.battery.soc === null ? '—' : formatValue(f.battery.soc) + ' %'}`}
          id="battery"
          soc={f.battery.soc}
        />
        <Node x={320} y={240} label="Load" value={kw(f.load.kw)} sub="consumption" id="load" />
      </svg>
      <table class="kv">
        <tbody>
          {(station.measurements ?? []).map((x) => {
            const v = vals.get(`inst:${station.id}:M:${x.id}`);
            return (
              <tr key={x.id}>
                <th>{x.name}</th>
                <td data-testid={`m-${x.name}`}>{formatValue(v?.value, unit[x.name])}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

function Line(p: { x1: number; y1: number; x2: number; y2: number; dir: Direction | 'to-center' | 'from-center' }) {
  const active = p.dir === 'to-center' || p.dir === 'from-center';
  // Draw from the source to the destination so the dash animation runs the way energy flows.
  const [ax, ay, bx, by] = p.dir === 'to-center' ? [p.x2, p.y2, p.x1, p.y1] : [p.x1, p.y1, p.x2, p.y2];
  return <line x1={ax} y1={ay} x2={bx} y2={by} class={active ? 'wire active' : 'wire'} />;
}

function Node(p: { x: number; y: number; label: string; value: string; sub: string; id: string; soc?: number | null }) {
  return (
    <g transform={`translate(${p.x} ${p.y})`} data-testid={`node-${p.id}`}>
      <rect x={-70} y={-38} width={140} height={76} rx={10} class="node" />
      {p.soc !== undefined && p.soc !== null && (
        <rect x={-70} y={34} width={(140 * Math.max(0, Math.min(100, p.soc))) / 100} height={4} class="soc-bar" />
      )}
      <text y={-16} class="node-label">
        {p.label}
      </text>
      <text y={6} class="node-value" data-testid={`${p.id}-kw`}>
        {p.value}
      </text>
      <text y={26} class="node-sub" data-testid={`${p.id}-sub`}>
        {p.sub}
      </text>
    </g>
  );
}

function AlarmCounts() {
  const site = useSite();
  const alarms = useLoad(async () => asAlarms(await unwrap<unknown>(site.api.GET('/alarms', { params: { query: {} } }))), [site.api]);
  useLive({ alarms: true }, { alarm: () => alarms.reload() });
  return (
    <section class="card">
      <h3>
        <a href={`${site.base}alarms`}>Active alarms</a>
      </h3>
      <Status of={alarms}>
        {(list) => {
          const c = countBySeverity(list);
          return (
            <div class="counts">
              {severities.map((s) => (
                <span key={s} class={`count sev-${s}`} data-testid={`count-${s}`}>
                  {c[s]} {s}
                </span>
              ))}
            </div>
          );
        }}
      </Status>
    </section>
  );
}

function Links() {
  const site = useSite();
  const ch = useLoad(() => unwrap(site.api.GET('/channels')), [site.api]);
  return (
    <section class="card">
      <h3>
        <a href={`${site.base}channels`}>Channels</a>
      </h3>
      <Status of={ch} empty={(d) => !d.channels?.length} emptyText="No channels configured.">
        {(d) => (
          <ul class="links">
            {(d.channels ?? []).map((c) => (
              <li key={c.id}>
                <span class={`link-state st-${c.status?.state ?? 'unknown'}`}>{c.status?.state ?? 'unknown'}</span> {c.name}
              </li>
            ))}
          </ul>
        )}
      </Status>
    </section>
  );
}
