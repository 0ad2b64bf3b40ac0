import { useEffect, useRef, useState } from 'preact/hooks';
import { unwrap, useLive, useLoad, useNow, useSite } from '../ui/hooks';
import { Confirm, Quality, Status } from '../ui/parts';
import { age, formatTime, formatValue, keyOf, merge, type PointType, type Value } from '../lib/points';
import { can } from '../lib/roles';
import { commandOutcome, final, follow, type CommandResult } from '../lib/commands';

export function Channels({ params }: { params: string[] }) {
  if (params[0]) return <ChannelPage id={Number(params[0])} />;
  return <ChannelList />;
}

function ChannelList() {
  const site = useSite();
  const ch = useLoad(() => unwrap(site.api.GET('/channels')), [site.api]);
  return (
    <div class="page">
      <h2>Channels</h2>
      <Status of={ch} empty={(d) => !d.channels?.length} emptyText="No channels configured (comsrv/channels.yaml).">
        {(d) => (
          <table class="grid">
            <thead>
              <tr>
                <th>Id</th>
                <th>Name</th>
                <th>Protocol</th>
                <th>Link</th>
                <th>Last good poll</th>
                <th>Last error</th>
              </tr>
            </thead>
            <tbody>
              {(d.channels ?? []).map((c) => (
                <tr key={c.id} data-testid={`channel-${c.id}`}>
                  <td>{c.id}</td>
                  <td>
                    <a href={`${site.base}channels/${c.id}`}>{c.name}</a>
                  </td>
                  <td>{c.protocol}</td>
                  <td>
                    <span class={`link-state st-${c.enabled ? (c.status?.state ?? 'unknown') : 'disabled'}`}>
                      {c.enabled ? (c.status?.state ?? 'unknown') : 'disabled'}
                    </span>
                  </td>
                  <td>{formatTime(c.status?.last_ok)}</td>
                  <td class="wrap">{c.status?.last_error || '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Status>
    </div>
  );
}

interface Route {
  instance: string;
  instance_point: string;
  channel_id: number;
  channel_type: string;
  channel_point_id: number;
  description?: string;
}

const typeNames: Record<PointType, string> = { T: 'Telemetry', S: 'Signals', C: 'Controls', A: 'Adjustments' };

function ChannelPage({ id }: { id: number }) {
  const site = useSite();
  const now = useNow(1000);
  const status = useLoad(() => unwrap(site.api.GET('/channels/{channel}', { params: { path: { channel: id } } })), [site.api, id]);
  const routing = useLoad(async () => {
    const r = await unwrap<unknown>(site.api.GET('/routing'));
    return (Array.isArray(r) ? (r as Route[]) : []).filter((x) => x.channel_id === id);
  }, [site.api, id]);
  const points = useLoad(async () => {
    const r = await unwrap(site.api.GET('/points', { params: { query: { pattern: `${id}:*:*`, limit: 10000 } } }));
    return r.points ?? [];
  }, [site.api, id]);
  const [live, setLive] = useState(new Map<string, Value>());
  useLive({ points: [`${id}:*:*`] }, { values: (vs) => setLive((m) => merge(m, vs.filter((v) => v.channel === id))) });
  const [cmd, setCmd] = useState<{ type: PointType; point: number; label: string } | null>(null);
  const [results, setResults] = useState(new Map<string, string>());
  // A command still pending after the dialog's wait is followed here until it ends.
  const following = useRef(new AbortController());
  useEffect(() => () => following.current.abort(), []);
  const setResult = (k: string, text: string) => setResults((m) => new Map(m).set(k, text));

  const label = (t: string, p: number) => {
    const r = routing.data?.find((x) => x.channel_type === t && x.channel_point_id === p);
    return r ? `${r.instance}.${r.instance_point}${r.description ? ` — ${r.description}` : ''}` : '';
  };
  const control = can(site.role, 'operator');
  const [linkAct, setLinkAct] = useState<'restart' | 'enable' | 'disable' | null>(null);
  const [note, setNote] = useState('');
  return (
    <div class="page">
      <p>
        <a href={`${site.base}channels`}>← Channels</a>
      </p>
      <Status of={status}>
        {(c) => (
          <>
            <h2>
              {c.name} <span class={`link-state st-${c.enabled ? (c.status?.state ?? 'unknown') : 'disabled'}`}>{c.enabled ? (c.status?.state ?? 'unknown') : 'disabled'}</span>
              <small>
                {' '}
                channel {c.id} · {c.protocol} · polls {c.status?.polls ?? '—'} · errors {c.status?.errors ?? '—'}
              </small>
            </h2>
            {c.status?.last_error && <p class="hint">Last error: {c.status.last_error}</p>}
            {(control || can(site.role, 'engineer')) && (
              <p class="actions">
                {control && c.enabled && <button onClick={() => setLinkAct('restart')}>Restart link…</button>}{' '}
                {can(site.role, 'engineer') && (
                  <button onClick={() => setLinkAct(c.enabled ? 'disable' : 'enable')}>{c.enabled ? 'Disable channel…' : 'Enable channel…'}</button>
                )}
              </p>
            )}
          </>
        )}
      </Status>
      {note && <div class="notice">{note}</div>}
      {linkAct && (
        <Confirm
          title={`${linkAct === 'restart' ? 'Restart the link of' : linkAct === 'enable' ? 'Enable' : 'Disable'} channel ${id}`}
          confirmText={linkAct === 'restart' ? 'Restart' : linkAct === 'enable' ? 'Enable' : 'Disable'}
          onClose={(r) => {
            setLinkAct(null);
            if (r) {
              setNote(r);
              status.reload();
            }
          }}
          run={async () => {
            const path = { params: { path: { channel: id } } };
            if (linkAct === 'restart') await unwrap(site.api.POST('/channels/{channel}/restart', path));
            else if (linkAct === 'enable') await unwrap(site.api.POST('/channels/{channel}/enable', path));
            else await unwrap(site.api.POST('/channels/{channel}/disable', path));
            return linkAct === 'restart' ? 'Link restarted.' : `Channel ${linkAct}d (written into channels.yaml).`;
          }}
        >
          {linkAct === 'disable' && <p>comsrv stops polling the channel; its points keep their last values with quality comm_lost.</p>}
          {linkAct === 'restart' && <p>The link is closed and opened again; commands wait until it is up.</p>}
        </Confirm>
      )}
      <Status of={points} empty={(p) => p.length === 0} emptyText="This channel has no points with values yet.">
        {(initial) => {
          const all = merge(new Map(initial.map((v) => [keyOf(v as Value), v as Value])), [...live.values()]);
          return (['T', 'S', 'C', 'A'] as PointType[]).map((t) => {
            const rows = [...all.values()].filter((v) => v.type === t).sort((a, b) => a.point - b.point);
            if (!rows.length) return null;
            const writable = t === 'C' || t === 'A';
            return (
              <section key={t}>
                <h3>{typeNames[t]}</h3>
                <table class="grid points" data-testid={`points-${t}`}>
                  <thead>
                    <tr>
                      <th>Point</th>
                      <th>Name</th>
                      <th class="num">Value</th>
                      <th>Quality</th>
                      <th>Time</th>
                      {writable && control && <th>Command</th>}
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map((v) => {
                      const k = keyOf(v);
                      return (
                        <tr key={k} data-testid={`point-${k}`}>
                          <td>{k}</td>
                          <td>{label(t, v.point)}</td>
                          <td class="num" data-testid="value">
                            {formatValue(v.value)}
                          </td>
                          <td>
                            <Quality q={v.quality} />
                          </td>
                          <td title={formatTime(v.ts)}>{age(v.ts, now)}</td>
                          {writable && control && (
                            <td>
                              <button onClick={() => setCmd({ type: t, point: v.point, label: label(t, v.point) || k })} data-testid="send">
                                Send…
                              </button>{' '}
                              <span data-testid="cmd-result" class="cmd-result">
                                {results.get(k) ?? ''}
                              </span>
                            </td>
                          )}
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </section>
            );
          });
        }}
      </Status>
      {cmd && (
        <CommandDialog
          channel={id}
          type={cmd.type}
          point={cmd.point}
          label={cmd.label}
          onClose={(r) => {
            const k = `${id}:${cmd.type}:${cmd.point}`;
            if (r) {
              setResult(k, commandOutcome(r));
              if (!final(r.status)) {
                void follow(
                  async () => (await unwrap(site.api.GET('/commands/{id}', { params: { path: { id: r.id } } }))) as CommandResult,
                  (text) => setResult(k, text),
                  following.current.signal,
                );
              }
            }
            setCmd(null);
          }}
        />
      )}
    </div>
  );
}

function CommandDialog(p: { channel: number; type: PointType; point: number; label: string; onClose: (r?: CommandResult) => void }) {
  const site = useSite();
  const [value, setValue] = useState(p.type === 'C' ? '1' : '');
  return (
    <Confirm<CommandResult>
      title={`Send a command to ${p.channel}:${p.type}:${p.point}`}
      confirmText="Send"
      onClose={p.onClose}
      run={async () => {
        const v = Number(value);
        if (value.trim() === '' || !Number.isFinite(v)) throw new Error('enter a number');
        const r = await site.api.POST('/commands', { body: { channel: p.channel, type: p.type as 'C' | 'A', point: p.point, value: v, wait_ms: 10000 } });
        if (r.error || !r.data) {
          const e = r.error as { detail?: string } | undefined;
          throw new Error(e?.detail ?? `refused (${r.response.status})`);
        }
        return r.data as CommandResult;
      }}
    >
      <p>{p.label}</p>
      <label>
        Value{' '}
        {p.type === 'C' ? (
          <select value={value} onChange={(e) => setValue((e.target as HTMLSelectElement).value)} name="value">
            <option value="1">1 (on)</option>
            <option value="0">0 (off)</option>
          </select>
        ) : (
          <input
            name="value"
            inputMode="decimal"
            value={value}
            onInput={(e) => setValue((e.target as HTMLInputElement).value)}
            autoFocus
            required
          />
        )}
      </label>
      <p class="hint">The device is written between polls; the result comes back within 10 s.</p>
    </Confirm>
  );
}
