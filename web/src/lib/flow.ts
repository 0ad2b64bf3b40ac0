// The energy flow of a site from its station measurements (config/modsrv:
// pv_power, ess_power positive = discharge, grid_power positive = import,
// load_power, soc).
export interface FlowInput {
  pv_power?: number | null;
  ess_power?: number | null;
  grid_power?: number | null;
  load_power?: number | null;
  soc?: number | null;
}

export type Direction = 'in' | 'out' | 'idle' | 'unknown';

export interface Flow {
  pv: { kw: number | null; dir: Direction }; // out: producing
  battery: { kw: number | null; dir: Direction; soc: number | null }; // out: discharging, in: charging
  grid: { kw: number | null; dir: Direction }; // in: import, out: export
  load: { kw: number | null; dir: Direction }; // in: consuming
}

/** Below this magnitude (kW) a flow counts as idle. */
export const idleKW = 0.05;

function dir(v: number | null | undefined, positive: Direction, negative: Direction): Direction {
  if (v === null || v === undefined || Number.isNaN(v)) return 'unknown';
  if (Math.abs(v) < idleKW) return 'idle';
  return v > 0 ? positive : negative;
}

function num(v: number | null | undefined): number | null {
  return v === null || v === undefined || Number.isNaN(v) ? null : v;
}

export function flow(m: FlowInput): Flow {
  const load = num(m.load_power);
  return {
    pv: { kw: num(m.pv_power), dir: dir(m.pv_power, 'out', 'in') },
    battery: { kw: num(m.ess_power), dir: dir(m.ess_power, 'out', 'in'), soc: num(m.soc) },
    grid: { kw: num(m.grid_power), dir: dir(m.grid_power, 'in', 'out') },
    load: { kw: load, dir: dir(load, 'in', 'out') },
  };
}

/** gridLabel names what the grid connection is doing. */
export function gridLabel(d: Direction): string {
  return d === 'in' ? 'importing' : d === 'out' ? 'exporting' : d === 'idle' ? 'balanced' : 'no data';
}

/** batteryLabel names what the battery is doing. */
export function batteryLabel(d: Direction): string {
  return d === 'out' ? 'discharging' : d === 'in' ? 'charging' : d === 'idle' ? 'idle' : 'no data';
}
