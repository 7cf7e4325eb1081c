import type { Summary } from './stats.js';

/** A bound a figure must stay within. `<=`, `<`: at most; `>=`: at least. */
export interface Target {
  op: '<=' | '<' | '>=';
  limit: number;
}

/** One measured quantity: the median of its runs and their spread. */
export interface Measured {
  summary: Summary;
  unit: string;
  /** How many decimals to print. */
  digits: number;
}

/**
 * One line of the benchmark table. `judged` is what the target applies to:
 * the value itself, or its difference or ratio to the baseline measured in
 * the same run (the machines are shared and noisy; side by side, a slow
 * minute slows both). Without a target the figure is reported only.
 */
export interface FigureResult {
  key: string;
  title: string;
  value: Measured;
  baseline?: { title: string; value: Measured };
  judged?: { label: string; value: Measured };
  target?: Target;
  /** What the reader must know to read the line: the window, how it was counted. */
  note?: string;
}

export type Verdict = 'met' | 'missed' | 'reported';

/** The verdict is taken on the median; the spread is shown beside it for the reader to weigh. */
export function verdict(f: FigureResult): Verdict {
  if (f.target === undefined) return 'reported';
  const x = (f.judged ?? f).value.summary.median;
  const { op, limit } = f.target;
  const ok = op === '<=' ? x <= limit : op === '<' ? x < limit : x >= limit;
  return ok ? 'met' : 'missed';
}

function num(x: number, digits: number): string {
  return x.toFixed(digits);
}

/** "52.3 MB (51.9–53.0, n=3)"; a single run or no spread prints the value alone. */
export function formatMeasured(m: Measured): string {
  const s = m.summary;
  const unit = m.unit === '' ? '' : m.unit === '%' || m.unit === '×' ? m.unit : ` ${m.unit}`;
  const head = `${num(s.median, m.digits)}${unit}`;
  if (s.runs <= 1) return head;
  return `${head} (${num(s.min, m.digits)}–${num(s.max, m.digits)}, n=${s.runs})`;
}

export function formatTarget(t: Target | undefined, unit: string): string {
  if (t === undefined) return '—';
  const sym = t.op === '<=' ? '≤' : t.op === '<' ? '<' : '≥';
  const u = unit === '' ? '' : unit === '%' || unit === '×' ? unit : ` ${unit}`;
  return `${sym} ${t.limit}${u}`;
}
