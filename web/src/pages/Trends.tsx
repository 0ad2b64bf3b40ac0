import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { unwrap, useLive, useLoad, useSite } from '../ui/hooks';
import { Status } from '../ui/parts';
import { append, columns, historyName, parseHistory, ranges, type RangeChoice, type Series } from '../lib/trend';
import { parseRef } from '../lib/points';
import type { Subscription } from '../lib/live';

interface Instance {
  id: number;
  name: string;
  measurements?: { id: number; name: string; unit?: string }[];
}

const palette = ['#2f80ed', '#eb5757', '#27ae60', '#f2994a', '#9b51e0', '#56ccf2', '#333333'];

/** Trends: chosen points over a time range, history with live values appended; drag to zoom. */
export function Trends({ query }: { query: URLSearchParams }) {
  const site = useSite();
  const instances = useLoad(async () => {
    const r = await unwrap<unknown>(site.api.GET('/instances'));
    return Array.isArray(r) ? (r as Instance[]) : [];
  }, [site.api]);
  const [chosen, setChosen] = useState<string[]>(() => (query.get('points') ?? '').split(',').filter(Boolean));
  const [rangeIdx, setRangeIdx] = useState(1);
  const [extra, setExtra] = useState('');
  const [extraErr, setExtraErr] = useState('');
  const labels = useMemo(() => {
    const m = new Map<string, string>();
    for (const i of instances.data ?? []) for (const x of i.measurements ?? []) m.set(`inst:${i.id}:M:${x.id}`, `${i.name}.${x.name}${x.unit ? ` (${x.unit})` : ''}`);
    return m;
  }, [instances.data]);
  const toggle = (k: string) => setChosen((c) => (c.includes(k) ? c.filter((x) => x !== k) : [...c, k]));
  return (
    <div class="page">
      <h2>Trends</h2>
      <div class="trend-layout">
        <aside class="picker">
          <label>
            Range{' '}
            <select value={rangeIdx} onChange={(e) => setRangeIdx(Number((e.target as HTMLSelectElement).value))} name="range">
              {ranges.map((r, i) => (
                <option key={r.label} value={i}>
                  {r.label}
                </option>
              ))}
            </select>
          </label>
          <form
            class="add-point"
            onSubmit={(e) => {
              e.preventDefault();
              const ref = parseRef(extra);
              if (!ref) {
                setExtraErr('a channel point is channel:type:point, e.g. 1:T:1');
                return;
              }
              setExtraErr('');
              const k = `${ref.channel}:${ref.type}:${ref.point}`;
              if (!chosen.includes(k)) setChosen([...chosen, k]);
              setExtra('');
            }}
          >
            <input placeholder="channel point, e.g. 1:T:1" value={extra} onInput={(e) => setExtra((e.target as HTMLInputElement).value)} name="point" />
            <button type="submit">Add</button>
            {extraErr && <div class="error">{extraErr}</div>}
          </form>
          <Status of={instances} empty={(l) => l.length === 0} emptyText="No instances: add channel points above.">
            {(list) => (
              <div class="measure-list">
                {list.map((i) => (
                  <details key={i.id} open={i.id === list[0]?.id}>
                    <summary>{i.name}</summary>
                    {(i.measurements ?? []).map((x) => {
                      const k = `inst:${i.id}:M:${x.id}`;
                      return (
                        <label key={k} class="check">
                          <input type="checkbox" checked={chosen.includes(k)} onChange={() => toggle(k)} data-testid={`pick-${i.name}.${x.name}`} />
                          {x.name}
                        </label>
                      );
                    })}
                  </details>
                ))}
              </div>
            )}
          </Status>
          {chosen.filter((k) => !k.startsWith('inst:')).map((k) => (
            <label key={k} class="check">
              <input type="checkbox" checked onChange={() => toggle(k)} />
              {k}
            </label>
          ))}
        </aside>
        <section class="chart-area">
          {chosen.length === 0 ? (
            <div class="empty">Choose one or more points to draw.</div>
          ) : (
            <Chart keys={chosen} labels={labels} rangeIdx={rangeIdx} />
          )}
        </section>
      </div>
    </div>
  );
}

/** loadHistory reads the history of points (hissrv names) over a range. */
export type LoadHistory = (points: string[], range: RangeChoice) => Promise<Series[]>;

/**
 * Chart draws keys (UI point keys: 1:T:5, inst:1:M:2) over a range: the history
 * load gives, with the live values of the WebSocket appended while shown.
 */
export function Chart({ keys, labels, rangeIdx, load }: { keys: string[]; labels: Map<string, string>; rangeIdx: number; load?: LoadHistory }) {
  const site = useSite();
  const range = ranges[rangeIdx];
  const hist = useLoad(async () => {
    if (load) return load(keys.map(historyName), range);
    const r = await unwrap<unknown>(
      site.api.GET('/history/range', { params: { query: { point: keys.map(historyName), start: range.start, step: range.step, agg: 'avg' } } }),
    );
    return parseHistory(r);
  }, [site.api, keys.join(','), range.start, load]);
  const [series, setSeries] = useState<Series[]>([]);
  useEffect(() => {
    if (!hist.data) return;
    setSeries(keys.map((k) => hist.data!.find((s) => s.point === historyName(k)) ?? { point: historyName(k), values: [] }));
  }, [hist.data]);
  const sub: Subscription = {
    instances: [...new Set(keys.filter((k) => k.startsWith('inst:')).map((k) => Number(k.split(':')[1])))],
    points: keys.filter((k) => !k.startsWith('inst:')),
  };
  useLive(sub, {
    values: (vs) =>
      setSeries((ss) => {
        let changed = false;
        const out = ss.map((s) => {
          for (const v of vs) {
            const k = v.instance ? `inst:${v.instance}:M:${v.point}` : `comsrv:${v.channel}:${v.type}:${v.point}`;
            if (k === s.point && v.value !== null && v.ts && v.quality !== 'missing') {
              const n = append(s, v.ts, v.value, Date.now(), range.spanMs);
              if (n !== s) {
                s = n;
                changed = true;
              }
            }
          }
          return s;
        });
        return changed ? out : ss;
      }),
  });
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoomed = useRef(false);
  const shape = keys.join(',');
  useEffect(() => {
    if (!box.current || !hist.data) return;
    const width = Math.max(300, box.current.clientWidth);
    const opts: uPlot.Options = {
      width,
      height: 360,
      series: [{}, ...keys.map((k, i) => ({ label: labels.get(k) ?? k, stroke: palette[i % palette.length], width: 1.5, spanGaps: false }))],
      axes: [{}, {}],
      scales: { x: { time: true } },
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setSelect: [() => (zoomed.current = true)],
      },
    };
    const u = new uPlot(opts, columns(keys.map((k) => ({ point: historyName(k), values: [] }))) as uPlot.AlignedData, box.current);
    plot.current = u;
    zoomed.current = false;
    const resize = () => box.current && u.setSize({ width: Math.max(300, box.current.clientWidth), height: 360 });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      u.destroy();
      plot.current = null;
    };
  }, [shape, hist.data !== undefined]);
  useEffect(() => {
    const u = plot.current;
    if (!u || series.length !== keys.length) return;
    u.setData(columns(series) as uPlot.AlignedData, !zoomed.current);
  }, [series]);
  const points = series.reduce((n, s) => n + s.values.length, 0);
  return (
    <Status of={hist}>
      {() => (
        <div>
          <div class="chart-tools">
            <span data-testid="trend-points">{points} values</span>
            <button
              onClick={() => {
                zoomed.current = false;
                plot.current?.setData(columns(series) as uPlot.AlignedData, true);
              }}
            >
              Reset zoom
            </button>
            <span class="hint">Drag across the chart to zoom.</span>
          </div>
          {points === 0 && <div class="empty">No stored values in this range yet; live values are added as they come.</div>}
          <div ref={box} class="chart" data-testid="chart" />
        </div>
      )}
    </Status>
  );
}
