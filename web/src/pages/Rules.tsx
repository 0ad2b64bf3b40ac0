import { useState } from 'preact/hooks';
import { unwrap, useLoad, useSite } from '../ui/hooks';
import { Status } from '../ui/parts';
import { formatTime, formatValue } from '../lib/points';
import { can } from '../lib/roles';

interface RuleStatus {
  enabled?: boolean;
  active?: boolean;
  pending?: boolean;
  last_result?: string;
}
interface Rule {
  id: string;
  name?: string;
  description?: string;
  priority?: number;
  status?: RuleStatus;
  definition?: Record<string, unknown>;
}
interface RuleEvent {
  id: string;
  kind?: string;
  result?: string;
  cause?: string;
  reason?: string;
  rule?: string;
  ts?: string | number;
  path?: string[];
  inputs?: Record<string, { value: number | null; quality: string }>;
}

export function Rules({ params }: { params: string[] }) {
  if (params[0]) return <RulePage id={params[0]} />;
  return <RuleList />;
}

function RuleList() {
  const site = useSite();
  const rules = useLoad(async () => {
    const r = await unwrap<unknown>(site.api.GET('/rules'));
    return Array.isArray(r) ? (r as Rule[]) : [];
  }, [site.api]);
  const [error, setError] = useState('');
  const eng = can(site.role, 'engineer');
  const toggle = async (r: Rule) => {
    setError('');
    const path = { params: { path: { id: r.id } } };
    try {
      if (r.status?.enabled) await unwrap(site.api.POST('/rules/{id}/disable', path));
      else await unwrap(site.api.POST('/rules/{id}/enable', path));
      rules.reload();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <div class="page">
      <h2>Rules</h2>
      {error && (
        <div class="error" role="alert">
          {error}
        </div>
      )}
      <Status of={rules} empty={(l) => l.length === 0} emptyText="No rules (rulesrv/rules/*.yaml).">
        {(l) => (
          <table class="grid" data-testid="rules">
            <thead>
              <tr>
                <th>Rule</th>
                <th>Description</th>
                <th class="num">Priority</th>
                <th>Enabled</th>
                <th>State</th>
                <th>Last result</th>
                {eng && <th />}
              </tr>
            </thead>
            <tbody>
              {l.map((r) => (
                <tr key={r.id} data-testid={`rule-${r.id}`}>
                  <td>
                    <a href={`${site.base}rules/${encodeURIComponent(r.id)}`}>{r.name ?? r.id}</a>
                  </td>
                  <td class="wrap">{r.description ?? ''}</td>
                  <td class="num">{r.priority ?? ''}</td>
                  <td>{r.status?.enabled ? 'yes' : 'no'}</td>
                  <td>{r.status?.active ? 'active' : r.status?.pending ? 'pending' : 'inactive'}</td>
                  <td>{r.status?.last_result ?? ''}</td>
                  {eng && (
                    <td>
                      <button onClick={() => void toggle(r)}>{r.status?.enabled ? 'Disable' : 'Enable'}</button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Status>
    </div>
  );
}

function RulePage({ id }: { id: string }) {
  const site = useSite();
  const rule = useLoad(async () => (await unwrap<unknown>(site.api.GET('/rules/{id}', { params: { path: { id } } }))) as Rule, [site.api, id]);
  const execs = useLoad(async () => {
    const r = (await unwrap<unknown>(site.api.GET('/rules/{id}/executions', { params: { path: { id }, query: { count: 50 } } }))) as {
      events?: RuleEvent[];
    };
    return r?.events ?? [];
  }, [site.api, id]);
  const [dry, setDry] = useState<RuleEvent | null>(null);
  const [dryErr, setDryErr] = useState('');
  const eng = can(site.role, 'engineer');
  return (
    <div class="page">
      <p>
        <a href={`${site.base}rules`}>← Rules</a>
      </p>
      <Status of={rule}>
        {(r) => (
          <>
            <h2>
              {r.name ?? r.id} <small>{r.status?.enabled ? 'enabled' : 'disabled'}</small>
            </h2>
            {r.description && <p>{r.description}</p>}
            <pre class="code">{JSON.stringify(r.definition ?? {}, null, 2)}</pre>
          </>
        )}
      </Status>
      {eng && (
        <p>
          <button
            onClick={async () => {
              setDryErr('');
              try {
                setDry((await unwrap<unknown>(site.api.POST('/rules/{id}/dry-run', { params: { path: { id } } }))) as RuleEvent);
              } catch (e) {
                setDryErr(e instanceof Error ? e.message : String(e));
              }
            }}
            data-testid="dry-run"
          >
            Dry run against live values
          </button>
        </p>
      )}
      {dryErr && <div class="error">{dryErr}</div>}
      {dry && (
        <section class="card" data-testid="dry-result">
          <h3>Dry run: {dry.result}</h3>
          {dry.reason && <p>{dry.reason}</p>}
          <ol>
            {(dry.path ?? []).map((p, i) => (
              <li key={i}>{p}</li>
            ))}
          </ol>
          <Inputs inputs={dry.inputs} />
        </section>
      )}
      <h3>Execution log</h3>
      <Status of={execs} empty={(l) => l.length === 0} emptyText="No executions recorded yet.">
        {(l) => (
          <table class="grid">
            <thead>
              <tr>
                <th>Time</th>
                <th>Result</th>
                <th>Cause</th>
                <th>Path</th>
                <th>Inputs</th>
              </tr>
            </thead>
            <tbody>
              {l.map((e) => (
                <tr key={e.id}>
                  <td>{formatTime(e.ts)}</td>
                  <td>{e.kind ?? e.result}</td>
                  <td>{e.cause}</td>
                  <td class="wrap">{(e.path ?? []).join(' → ')}</td>
                  <td class="wrap">
                    <Inputs inputs={e.inputs} />
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

function Inputs({ inputs }: { inputs?: RuleEvent['inputs'] }) {
  if (!inputs) return null;
  return (
    <span class="inputs">
      {Object.entries(inputs).map(([k, v]) => (
        <span key={k}>
          {k} = {formatValue(v.value)}
          {v.quality !== 'good' ? ` (${v.quality})` : ''}
        </span>
      ))}
    </span>
  );
}
