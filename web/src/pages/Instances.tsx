import { useState } from 'preact/hooks';
import { unwrap, useLive, useLoad, useNow, useSite } from '../ui/hooks';
import { Confirm, Quality, Status } from '../ui/parts';
import { age, formatTime, formatValue, merge, type Value } from '../lib/points';
import { can } from '../lib/roles';
import { commandOutcome, type CommandResult } from '../lib/commands';

interface Measurement {
  id: number;
  name: string;
  unit?: string;
  value: number | null;
  quality?: string;
  ts?: number;
  source?: string;
}
interface Action {
  id: number;
  name: string;
  unit?: string;
  type?: string;
  min?: number;
  max?: number;
  step?: number;
  description?: string;
  last_commanded?: number | null;
}
interface Instance {
  id: number;
  name: string;
  product: string;
  parent?: string;
  description?: string;
  properties?: Record<string, unknown>;
  measurements?: Measurement[];
  actions?: Action[];
}

export function Instances({ params }: { params: string[] }) {
  if (params[0]) return <InstancePage name={params[0]} />;
  return <InstanceList />;
}

function InstanceList() {
  const site = useSite();
  const list = useLoad(async () => {
    const r = await unwrap<unknown>(site.api.GET('/instances'));
    return Array.isArray(r) ? (r as Instance[]) : [];
  }, [site.api]);
  return (
    <div class="page">
      <h2>Instances</h2>
      <Status of={list} empty={(l) => l.length === 0} emptyText="No instances configured (modsrv/instances.yaml).">
        {(l) => (
          <table class="grid">
            <thead>
              <tr>
                <th>Id</th>
                <th>Name</th>
                <th>Product</th>
                <th>Parent</th>
                <th>Description</th>
                <th class="num">Measurements</th>
                <th class="num">Actions</th>
              </tr>
            </thead>
            <tbody>
              {l.map((i) => (
                <tr key={i.id}>
                  <td>{i.id}</td>
                  <td>
                    <a href={`${site.base}instances/${i.id}`}>{i.name}</a>
                  </td>
                  <td>{i.product}</td>
                  <td>{i.parent ?? ''}</td>
                  <td class="wrap">{i.description ?? ''}</td>
                  <td class="num">{i.measurements?.length ?? 0}</td>
                  <td class="num">{i.actions?.length ?? 0}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Status>
    </div>
  );
}

function InstancePage({ name }: { name: string }) {
  const site = useSite();
  const now = useNow(1000);
  const inst = useLoad(
    async () => (await unwrap<unknown>(site.api.GET('/instances/{instance}', { params: { path: { instance: name } } }))) as Instance,
    [site.api, name],
  );
  const [live, setLive] = useState(new Map<string, Value>());
  const id = inst.data?.id;
  useLive(id ? { instances: [id] } : null, { values: (vs) => setLive((m) => merge(m, vs.filter((v) => v.instance === id))) });
  const [act, setAct] = useState<Action | null>(null);
  const [results, setResults] = useState(new Map<number, string>());
  const control = can(site.role, 'operator');
  return (
    <div class="page">
      <p>
        <a href={`${site.base}instances`}>← Instances</a>
      </p>
      <Status of={inst}>
        {(i) => (
          <>
            <h2>
              {i.name} <small>{i.product}</small>
            </h2>
            {i.description && <p>{i.description}</p>}
            {i.properties && Object.keys(i.properties).length > 0 && (
              <table class="kv">
                <tbody>
                  {Object.entries(i.properties).map(([k, v]) => (
                    <tr key={k}>
                      <th>{k}</th>
                      <td>{String(v)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <h3>Measurements</h3>
            {!i.measurements?.length ? (
              <div class="empty">No measurements.</div>
            ) : (
              <table class="grid" data-testid="measurements">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th class="num">Value</th>
                    <th>Quality</th>
                    <th>Time</th>
                    <th>Source</th>
                  </tr>
                </thead>
                <tbody>
                  {i.measurements.map((m) => {
                    const v = live.get(`inst:${i.id}:M:${m.id}`) ?? { value: m.value, quality: m.quality ?? 'missing', ts: m.ts, point: m.id };
                    return (
                      <tr key={m.id}>
                        <td>{m.name}</td>
                        <td class="num">{formatValue(v.value, m.unit)}</td>
                        <td>
                          <Quality q={v.quality} />
                        </td>
                        <td title={formatTime(v.ts)}>{age(v.ts, now)}</td>
                        <td>{m.source ?? ''}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            )}
            <h3>Actions</h3>
            {!i.actions?.length ? (
              <div class="empty">No actions.</div>
            ) : (
              <table class="grid" data-testid="actions">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Range</th>
                    <th>Description</th>
                    <th class="num">Last commanded</th>
                    {control && <th />}
                  </tr>
                </thead>
                <tbody>
                  {i.actions.map((a) => (
                    <tr key={a.id} data-testid={`action-${a.name}`}>
                      <td>{a.name}</td>
                      <td>
                        {a.type === 'bool' ? '0/1' : `${a.min ?? '−∞'} … ${a.max ?? '∞'}`} {a.unit ?? ''}
                      </td>
                      <td class="wrap">{a.description ?? ''}</td>
                      <td class="num">{formatValue(a.last_commanded ?? null)}</td>
                      {control && (
                        <td>
                          <button onClick={() => setAct(a)}>Run…</button> <span class="cmd-result">{results.get(a.id) ?? ''}</span>
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {act && (
              <ActionDialog
                instance={i.name}
                action={act}
                onClose={(r) => {
                  if (r) setResults((m) => new Map(m).set(act.id, r));
                  setAct(null);
                }}
              />
            )}
          </>
        )}
      </Status>
    </div>
  );
}

function ActionDialog({ instance, action, onClose }: { instance: string; action: Action; onClose: (r?: string) => void }) {
  const site = useSite();
  const [value, setValue] = useState(action.type === 'bool' ? '1' : '');
  return (
    <Confirm
      title={`Run ${instance}.${action.name}`}
      confirmText="Run"
      onClose={onClose}
      run={async () => {
        const v = Number(value);
        if (value.trim() === '' || !Number.isFinite(v)) throw new Error('enter a number');
        const r = await unwrap(
          site.api.POST('/instances/{instance}/actions/{action}', {
            params: { path: { instance, action: action.name } },
            body: { value: v, wait_ms: 10000 },
          }),
        );
        return commandOutcome(r as CommandResult);
      }}
    >
      {action.description && <p>{action.description}</p>}
      <label>
        Value{' '}
        {action.type === 'bool' ? (
          <select value={value} onChange={(e) => setValue((e.target as HTMLSelectElement).value)}>
            <option value="1">1 (on)</option>
            <option value="0">0 (off)</option>
          </select>
        ) : (
          <input name="value" inputMode="decimal" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} required autoFocus />
        )}{' '}
        {action.unit ?? ''}
      </label>
    </Confirm>
  );
}
