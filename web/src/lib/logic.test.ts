import { describe, expect, it } from 'vitest';
import { age, formatValue, keyOf, merge, parseRef, type Value } from './points';
import { flow, gridLabel, batteryLabel } from './flow';
import { append, columns, historyName, parseHistory } from './trend';
import { asAlarms, countBySeverity, sortAlarms } from './alarms';
import { parseHash, href } from './router';
import { can } from './roles';
import { commandOutcome, final, follow } from './commands';

describe('points', () => {
  it('names channel points and instance measurements', () => {
    expect(keyOf({ channel: 1, type: 'T', point: 5 })).toBe('1:T:5');
    expect(keyOf({ instance: 3, point: 2 })).toBe('inst:3:M:2');
  });
  it('parses channel point names strictly', () => {
    expect(parseRef(' 2:A:1 ')).toEqual({ channel: 2, type: 'A', point: 1 });
    expect(parseRef('2:X:1')).toBeNull();
    expect(parseRef('2:A')).toBeNull();
    expect(parseRef('a:T:1')).toBeNull();
  });
  it('merges newer values and keeps newer ones held', () => {
    const v = (value: number, ts: number): Value => ({ channel: 1, type: 'T', point: 1, value, quality: 'good', ts });
    let m = merge(new Map(), [v(1, 100)]);
    m = merge(m, [v(2, 200)]);
    expect(m.get('1:T:1')?.value).toBe(2);
    m = merge(m, [v(0, 150)]); // a late snapshot
    expect(m.get('1:T:1')?.value).toBe(2);
  });
  it('formats values and ages', () => {
    expect(formatValue(null)).toBe('—');
    expect(formatValue(98.3456, 'kW')).toBe('98.35 kW');
    expect(formatValue(123.45)).toBe('123.5');
    expect(formatValue(-20)).toBe('-20');
    expect(formatValue(0.01234)).toBe('0.012');
    expect(formatValue(12345.6)).toBe('12,346');
    expect(age(1000, 6000)).toBe('5 s ago');
    expect(age(0, 6000)).toBe('—');
    expect(age(0 + 1, 7_200_001)).toBe('2 h ago');
  });
});

describe('energy flow', () => {
  it('reads directions from the signs', () => {
    const f = flow({ pv_power: 98, ess_power: -20, grid_power: -22, load_power: 56, soc: 50 });
    expect(f.pv.dir).toBe('out');
    expect(f.battery.dir).toBe('in');
    expect(batteryLabel(f.battery.dir)).toBe('charging');
    expect(gridLabel(f.grid.dir)).toBe('exporting');
    expect(f.battery.soc).toBe(50);
  });
  it('treats tiny powers as idle and missing ones as unknown', () => {
    const f = flow({ pv_power: 0.01, grid_power: 5, ess_power: null });
    expect(f.pv.dir).toBe('idle');
    expect(gridLabel(f.grid.dir)).toBe('importing');
    expect(f.battery.dir).toBe('unknown');
    expect(f.load.kw).toBeNull();
  });
});

describe('trend', () => {
  it('appends live samples in order within the window', () => {
    let s = { point: 'inst:1:M:1', values: [[1000, 1], [2000, 2]] as [number, number][] };
    s = append(s, 3000, 3, 3000, 10_000);
    expect(s.values.map((x) => x[1])).toEqual([1, 2, 3]);
    expect(append(s, 3000, 9, 3000, 10_000)).toBe(s); // same time: no duplicate
    expect(append(s, 2500, 9, 3000, 10_000)).toBe(s); // older: ignored
    s = append(s, 12_500, 4, 12_500, 10_000);
    expect(s.values.map((x) => x[0])).toEqual([3000, 12_500]); // 1000 and 2000 fell out
  });
  it('aligns series on one axis with gaps', () => {
    const c = columns([
      { point: 'a', values: [[1000, 1], [3000, 3]] },
      { point: 'b', values: [[2000, 20]] },
    ]);
    expect(c).toEqual([[1, 2, 3], [1, null, 3], [null, 20, null]]);
  });
  it('names points as hissrv does and reads its answer', () => {
    expect(historyName('1:T:1')).toBe('comsrv:1:T:1');
    expect(historyName('inst:1:M:2')).toBe('inst:1:M:2');
    expect(parseHistory({ points: [{ point: 'x', values: [[1, 2], ['bad', 3], [4, 5]] }] })).toEqual([{ point: 'x', values: [[1, 2], [4, 5]] }]);
    expect(parseHistory(null)).toEqual([]);
    expect(parseHistory({ points: 'nope' })).toEqual([]);
  });
});

describe('alarms', () => {
  const list = asAlarms([
    { key: 'a', severity: 'minor', acked: true, raised_at: 3 },
    { key: 'b', severity: 'critical', raised_at: 1 },
    { key: 'c', severity: 'minor', raised_at: 2 },
    { nokey: true },
  ]);
  it('accepts both envelopes and drops garbage', () => {
    expect(list.length).toBe(3);
    expect(asAlarms({ alarms: [{ key: 'x', severity: 'info' }] }).length).toBe(1);
    expect(asAlarms('x')).toEqual([]);
  });
  it('counts by severity with zeros', () => {
    expect(countBySeverity(list)).toEqual({ critical: 1, major: 0, minor: 2, warning: 0, info: 0 });
  });
  it('puts unacknowledged and severe first', () => {
    expect(sortAlarms(list).map((a) => a.key)).toEqual(['b', 'c', 'a']);
  });
});

describe('router, roles, commands', () => {
  it('parses fragments', () => {
    expect(parseHash('')).toMatchObject({ page: 'overview', params: [] });
    const r = parseHash('#/channels/2?tab=x');
    expect(r.page).toBe('channels');
    expect(r.params).toEqual(['2']);
    expect(r.query.get('tab')).toBe('x');
    expect(parseHash(href('alarms', 'a b'))).toMatchObject({ page: 'alarms', params: ['a b'] });
  });
  it('orders roles', () => {
    expect(can('operator', 'viewer')).toBe(true);
    expect(can('operator', 'engineer')).toBe(false);
    expect(can('admin', 'admin')).toBe(true);
    expect(can(undefined, 'viewer')).toBe(false);
  });
  it('describes command outcomes', () => {
    expect(commandOutcome({ id: '1', status: 'ok' })).toMatch(/^ok/);
    expect(commandOutcome({ id: '1', status: 'rejected', error: 'value 500 above max 100' })).toBe('rejected: value 500 above max 100');
    expect(commandOutcome({ id: '7', status: 'pending' })).toMatch(/command 7/);
    expect(final('executing')).toBe(false);
    expect(final('expired')).toBe(true);
  });
});

describe('follow', () => {
  it('asks until the command ends', async () => {
    const answers = [{ id: '1', status: 'executing' }, { id: '1', status: 'ok' }];
    const seen: string[] = [];
    await follow(async () => answers.shift()!, (t) => seen.push(t), new AbortController().signal, 1, 10);
    expect(seen).toEqual(['ok — written to the device']);
  });
  it('gives up after its attempts and keeps asking through errors', async () => {
    let calls = 0;
    const seen: string[] = [];
    await follow(
      async () => {
        calls++;
        throw new Error('502');
      },
      (t) => seen.push(t),
      new AbortController().signal,
      1,
      3,
    );
    expect(calls).toBe(3);
    expect(seen[0]).toMatch(/no outcome yet/);
  });
  it('stops when the page goes away', async () => {
    const ac = new AbortController();
    ac.abort();
    const seen: string[] = [];
    await follow(async () => ({ id: '1', status: 'ok' }), (t) => seen.push(t), ac.signal, 1, 3);
    expect(seen).toEqual([]);
  });
});
