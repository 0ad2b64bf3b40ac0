import { useState } from 'preact/hooks';
import { unwrap, useLive, useLoad, useSite } from '../ui/hooks';
import { Confirm, Severity, Status } from '../ui/parts';
import { asAlarms, countBySeverity, severities, sortAlarms, type Alarm } from '../lib/alarms';
import { formatTime, formatValue } from '../lib/points';
import { can } from '../lib/roles';

export function Alarms({ query }: { query: URLSearchParams }) {
  const [tab, setTab] = useState(query.get('tab') === 'history' ? 'history' : 'active');
  return (
    <div class="page">
      <h2>Alarms</h2>
      <div class="tabs" role="tablist">
        <button role="tab" aria-selected={tab === 'active'} onClick={() => setTab('active')}>
          Active
        </button>
        <button role="tab" aria-selected={tab === 'history'} onClick={() => setTab('history')}>
          History
        </button>
      </div>
      {tab === 'active' ? <Active /> : <History />}
    </div>
  );
}

type Act = { kind: 'ack' | 'shelve' | 'unshelve'; alarm: Alarm };

function Active() {
  const site = useSite();
  const alarms = useLoad(async () => sortAlarms(asAlarms(await unwrap<unknown>(site.api.GET('/alarms', { params: { query: {} } })))), [site.api]);
  useLive({ alarms: true }, { alarm: () => alarms.reload() });
  const [act, setAct] = useState<Act | null>(null);
  const [note, setNote] = useState('');
  const op = can(site.role, 'operator');
  const eng = can(site.role, 'engineer');
  return (
    <>
      <Status of={alarms}>
        {(list) => {
          const c = countBySeverity(list);
          return (
            <>
              <div class="counts">
                {severities.map((s) => (
                  <span key={s} class={`count sev-${s}`} data-testid={`count-${s}`}>
                    {c[s]} {s}
                  </span>
                ))}
              </div>
              {note && <div class="notice">{note}</div>}
              {list.length === 0 ? (
                <div class="empty">No active alarms.</div>
              ) : (
                <table class="grid" data-testid="active-alarms">
                  <thead>
                    <tr>
                      <th>Severity</th>
                      <th>Alarm</th>
                      <th>Message</th>
                      <th class="num">Value</th>
                      <th>Raised</th>
                      <th>State</th>
                      {(op || eng) && <th />}
                    </tr>
                  </thead>
                  <tbody>
                    {list.map((a) => (
                      <tr key={a.key} data-testid={`alarm-${a.key}`} class={a.acked ? 'acked' : 'unacked'}>
                        <td>
                          <Severity s={a.severity} />
                        </td>
                        <td>{a.name ?? a.rule ?? a.key}</td>
                        <td class="wrap">{a.message}</td>
                        <td class="num">{formatValue(a.value, a.unit)}</td>
                        <td>{formatTime(a.raised_at)}</td>
                        <td data-testid="state">
                          {[a.active === false ? 'cleared' : 'active', a.acked ? 'acknowledged' : 'unacknowledged', a.shelved ? 'shelved' : '']
                            .filter(Boolean)
                            .join(', ')}
                        </td>
                        {(op || eng) && (
                          <td class="actions">
                            {op && !a.acked && (
                              <button onClick={() => setAct({ kind: 'ack', alarm: a })} data-testid="ack">
                                Acknowledge
                              </button>
                            )}
                            {eng && !a.shelved && <button onClick={() => setAct({ kind: 'shelve', alarm: a })}>Shelve</button>}
                            {eng && a.shelved && <button onClick={() => setAct({ kind: 'unshelve', alarm: a })}>Unshelve</button>}
                          </td>
                        )}
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          );
        }}
      </Status>
      {act && (
        <AlarmAction
          act={act}
          onClose={(r) => {
            setAct(null);
            if (r) {
              setNote(r);
              alarms.reload();
            }
          }}
        />
      )}
    </>
  );
}

function AlarmAction({ act, onClose }: { act: Act; onClose: (r?: string) => void }) {
  const site = useSite();
  const [comment, setComment] = useState('');
  const [duration, setDuration] = useState('1h');
  const key = act.alarm.key;
  const title = { ack: 'Acknowledge', shelve: 'Shelve', unshelve: 'Unshelve' }[act.kind];
  return (
    <Confirm
      title={`${title} ${act.alarm.name ?? key}`}
      confirmText={title}
      onClose={onClose}
      run={async () => {
        const path = { params: { path: { key } } };
        if (act.kind === 'ack') await unwrap(site.api.POST('/alarms/{key}/ack', { ...path, body: comment ? { comment } : {} }));
        else if (act.kind === 'shelve') await unwrap(site.api.POST('/alarms/{key}/shelve', { ...path, body: { duration, ...(comment ? { comment } : {}) } }));
        else await unwrap(site.api.POST('/alarms/{key}/unshelve', { ...path, body: {} }));
        return `${title === 'Acknowledge' ? 'Acknowledged' : title + 'd'}: ${act.alarm.name ?? key}`;
      }}
    >
      <p class="wrap">{act.alarm.message}</p>
      {act.kind === 'shelve' && (
        <label>
          For{' '}
          <select value={duration} onChange={(e) => setDuration((e.target as HTMLSelectElement).value)}>
            {['15m', '1h', '4h', '8h', '24h'].map((d) => (
              <option key={d}>{d}</option>
            ))}
          </select>
        </label>
      )}
      {act.kind !== 'unshelve' && (
        <label>
          Comment <input name="comment" value={comment} onInput={(e) => setComment((e.target as HTMLInputElement).value)} />
        </label>
      )}
    </Confirm>
  );
}

interface HistoryEvent {
  id: string;
  type: string;
  key: string;
  ts: number;
  user?: string;
  comment?: string;
  alarm?: Alarm;
}

function History() {
  const site = useSite();
  const [f, setF] = useState({ from: '', to: '', severity: '', type: '', instance: '' });
  const [applied, setApplied] = useState(f);
  const events = useLoad(async () => {
    const q: Record<string, string | number> = { limit: 500 };
    if (applied.from) q.from = String(new Date(applied.from).getTime());
    if (applied.to) q.to = String(new Date(applied.to).getTime());
    if (applied.severity) q.severity = applied.severity;
    if (applied.type) q.type = applied.type;
    if (applied.instance) q.instance = applied.instance;
    const r = await unwrap<unknown>(site.api.GET('/alarms/history', { params: { query: q as never } }));
    const list = Array.isArray(r) ? (r as HistoryEvent[]) : [];
    return [...list].reverse(); // newest first
  }, [site.api, applied]);
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  return (
    <>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(f);
        }}
      >
        <label>
          From <input type="datetime-local" value={f.from} onInput={set('from')} />
        </label>
        <label>
          To <input type="datetime-local" value={f.to} onInput={set('to')} />
        </label>
        <label>
          Severity{' '}
          <select value={f.severity} onChange={set('severity')}>
            <option value="">any</option>
            {severities.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Event{' '}
          <select value={f.type} onChange={set('type')}>
            <option value="">any</option>
            {['raised', 'cleared', 'acknowledged', 'shelved', 'unshelved', 'escalated'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Instance <input value={f.instance} onInput={set('instance')} size={10} />
        </label>
        <button type="submit">Apply</button>
      </form>
      <Status of={events} empty={(l) => l.length === 0} emptyText="No alarm events match.">
        {(list) => (
          <table class="grid" data-testid="alarm-history">
            <thead>
              <tr>
                <th>Time</th>
                <th>Event</th>
                <th>Severity</th>
                <th>Alarm</th>
                <th>Message</th>
                <th>User</th>
              </tr>
            </thead>
            <tbody>
              {list.map((e) => (
                <tr key={e.id}>
                  <td>{formatTime(e.ts)}</td>
                  <td>{e.type}</td>
                  <td>{e.alarm && <Severity s={e.alarm.severity} />}</td>
                  <td>{e.alarm?.name ?? e.key}</td>
                  <td class="wrap">{e.alarm?.message}</td>
                  <td>{e.user ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Status>
    </>
  );
}
