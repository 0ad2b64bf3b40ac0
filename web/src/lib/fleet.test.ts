import { describe, expect, it } from 'vitest';
import { fleetAlarms, sortSites, valueKey, type SiteSummary } from './fleet';

describe('fleet', () => {
  it('flattens the hub alarms with their site, dropping garbage', () => {
    const a = fleetAlarms({
      alarms: [
        { site: 'n1', key: 'soc:l', alarm: { key: 'soc:l', severity: 'major', name: 'SOC low' } },
        { site: 'n2', key: 'x', alarm: null },
        { key: 'nosite' },
      ],
    });
    expect(a).toEqual([
      { key: 'soc:l', severity: 'major', name: 'SOC low', site: 'n1' },
      { key: 'x', severity: 'info', site: 'n2' },
    ]);
    expect(fleetAlarms(null)).toEqual([]);
  });
  it('names site values as the site pages do', () => {
    expect(valueKey({ key: 'comsrv:1:T', point: '5' })).toBe('1:T:5');
    expect(valueKey({ key: 'inst:3:M', point: '12' })).toBe('inst:3:M:12');
  });
  it('lists sites with alarms first, then offline ones', () => {
    const s = (id: string, online: boolean, alarms: number): SiteSummary => ({
      id, online, active_alarms: alarms, configured: true, points: 0, channels: 0, channels_up: 0, messages: 0,
    });
    expect(sortSites([s('c', true, 0), s('b', false, 0), s('a', true, 2)]).map((x) => x.id)).toEqual(['a', 'b', 'c']);
  });
});
