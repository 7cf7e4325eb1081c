/**
 * Summaries of repeated measurements. The machines are shared and noisy, so
 * a figure is the median of its runs and the spread (min–max) is shown with
 * it: a reader can judge a figure whose spread crosses its target.
 */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/** Linear interpolation between closest ranks; `q` in [0, 1]. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile ${q} is outside [0, 1]`);
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new Error('summary of no values');
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), runs: values.length };
}
