// Measures the CPU cost of one periodic metrics report, child processes
// included, and prints the median of 20. Not a test: timings depend on the
// machine. Run: node --import tsx bench/report-cost.ts [--compare]
//
// Children are counted through cutime+cstime of /proc/self/stat. Those are
// in clock ticks (usually 10 ms) and only cover children already reaped, so
// they are read after each collection has fully resolved; a collection that
// spawns nothing shows 0 there, which is the point. With --compare, a child
// of one systeminformation call can be reaped during the next measurement:
// the medians are robust to that, the per-call totals are not.
import { readFileSync } from 'node:fs';
import si from 'systeminformation';
import { computeMetrics } from '../agent/resources/metrics.js';
import type { RawSample } from '../agent/resources/probe.js';
import { SystemProbe } from '../agent/resources/system-probe.js';

const RUNS = 20;
const TICKS_PER_SEC = 100; // USER_HZ on every Linux ABI Node supports

function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 (cutime, cstime) of proc(5), counted from field 3 here.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / TICKS_PER_SEC;
}

async function measure(name: string, collect: () => Promise<unknown>): Promise<void> {
  await collect(); // warm up: module loading and first-call caches are not per-report costs
  const self: number[] = [];
  const children: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const c0 = childrenCpuMs();
    const u0 = process.cpuUsage();
    const t0 = performance.now();
    await collect();
    const t1 = performance.now();
    const u = process.cpuUsage(u0);
    self.push((u.user + u.system) / 1000);
    children.push(childrenCpuMs() - c0);
    wall.push(t1 - t0);
    await new Promise((r) => setTimeout(r, 50));
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return ((s[(s.length - 1) >> 1] ?? 0) + (s[s.length >> 1] ?? 0)) / 2;
  };
  const total = self.map((s, i) => s + (children[i] ?? 0));
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  console.log(
    `${name.padEnd(34)} median cpu ${median(total).toFixed(2)} ms (self ${median(self).toFixed(2)}, children ${median(children).toFixed(1)}; children total over ${RUNS}: ${sum(children).toFixed(0)} ms)  wall ${median(wall).toFixed(2)} ms`,
  );
}

const probe = new SystemProbe();
let previous: RawSample | undefined;
await measure('metrics report (SystemProbe)', async () => {
  const current = await probe.sample();
  const report = computeMetrics(previous, current);
  previous = current;
  return JSON.stringify(report);
});

if (process.argv.includes('--compare')) {
  // The calls the probe avoids, for comparison.
  await measure('si.fsSize (spawns df)', () => si.fsSize());
  await measure('si.networkStats(*)', () => si.networkStats('*'));
  await measure('si.cpuTemperature', () => si.cpuTemperature());
  await measure('si.currentLoad', () => si.currentLoad());
  await measure('naive: mem+load+fs+net+temp via si', () => Promise.all([si.mem(), si.currentLoad(), si.fsSize(), si.networkStats('*'), si.cpuTemperature()]));
}
