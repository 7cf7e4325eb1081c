/**
 * `new Date(ms).toISOString()`, built from the getUTC* fields. The first
 * toISOString call makes V8 load ICU's time-zone code and data, about 1 MB
 * of resident memory for the process's life (docs/benchmarks.md); the UTC
 * getters need none of it. The logger stamps every line with this.
 */
export function isoTimeUtc(ms: number): string {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  // toISOString writes years outside 0000–9999 with a sign and six digits.
  const y = year >= 0 && year <= 9999 ? pad(year, 4) : `${year < 0 ? '-' : '+'}${pad(Math.abs(year), 6)}`;
  return `${y}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}
