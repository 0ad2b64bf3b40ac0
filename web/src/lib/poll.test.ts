import { describe, expect, it } from 'vitest';
import { matchPattern, Poller, reads, wanted } from './poll';
import type { Value } from './points';

const p = (channel: number, type: string, point: number, value = 1): Value => ({ channel, type, point, value, quality: 'good', ts: 1 });
const m = (instance: number, point: number, value = 1): Value => ({ instance, point, value, quality: 'good', ts: 1 });

describe('poll', () => {
  it('matches point patterns', () => {
    expect(matchPattern('1:*:*', p(1, 'T', 5))).toBe(true);
    expect(matchPattern('1:T:5', p(1, 'T', 5))).toBe(true);
    expect(matchPattern('1:t:*', p(1, 'T', 5))).toBe(true);
    expect(matchPattern('1:S:*', p(1, 'T', 5))).toBe(false);
    expect(matchPattern('2:*:*', p(1, 'T', 5))).toBe(false);
    expect(matchPattern('1:*:*', m(1, 5))).toBe(false);
  });
  it('gives each subscription what it names', () => {
    const vs = [p(1, 'T', 1), p(2, 'A', 1), m(3, 2), m(4, 1)];
    expect(wanted({ channels: [2] }, vs)).toEqual([p(2, 'A', 1)]);
    expect(wanted({ points: ['1:T:1'], instances: [4] }, vs)).toEqual([p(1, 'T', 1), m(4, 1)]);
    expect(wanted({ alarms: true }, vs)).toEqual([]);
  });
  it('reads each pattern and instance once', () => {
    expect(reads([{ channels: [1], points: ['1:*:*', '2:T:3'] }, { instances: [5, 5] }, { points: ['2:T:3'] }])).toEqual({
      patterns: ['1:*:*', '2:T:3'],
      instances: [5],
    });
  });
  it('polls for its subscribers and tells alarm subscribers to reload', async () => {
    const asked: string[] = [];
    const poll = new Poller(
      {
        points: async (pat) => (asked.push(pat), [p(1, 'T', 1, 7)]),
        measurements: async (i) => {
          asked.push(`inst ${i}`);
          if (i === 9) throw new Error('gone');
          return [{ point: 2, value: 3, quality: 'good' }];
        },
      },
      60_000,
    );
    const got: Value[][] = [];
    let alarms = 0;
    const stop1 = poll.subscribe({ points: ['1:T:*'], instances: [3, 9] }, { values: (vs) => got.push(vs) });
    const stop2 = poll.subscribe({ alarms: true }, { alarm: () => alarms++ });
    await poll.round();
    expect(asked.sort()).toEqual(['1:T:*', 'inst 3', 'inst 9']);
    expect(got).toEqual([[p(1, 'T', 1, 7), { instance: 3, point: 2, value: 3, quality: 'good' }]]);
    expect(alarms).toBe(1);
    stop1();
    stop2();
    asked.length = 0;
    await poll.round();
    expect(asked).toEqual([]);
  });
});
