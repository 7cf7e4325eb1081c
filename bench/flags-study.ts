import { BenchDevice } from './bench-device.js';
import type { BenchWorld } from './bench-world.js';
import { bareNode, deployIdleServices, steadyRss, traceWindow } from './figures/steady-footprint.js';
import { summarize } from './stats.js';

/** One way to launch the agent: node flags and environment. */
export interface LaunchVariant {
  name: string;
  flags: string[];
  env?: Record<string, string>;
  why: string;
}

const SEMI = '--max-semi-space-size=1';
const TRIM = { MALLOC_TRIM_THRESHOLD_: '131072' };
// --lite-mode and --jitless turn WebAssembly off and say so on stderr unless told.
const NO_WASM = '--no-expose-wasm';

/** The candidates, each extending the one it names; all measured side by side in one window. */
export const LAUNCH_VARIANTS: LaunchVariant[] = [
  { name: 'none', flags: [], why: 'node defaults' },
  { name: 'semi-1', flags: [SEMI], why: 'young generation capped at 1 MB per semi-space (default: grows to 16 MB under bursts)' },
  { name: 'semi-1 + trim', flags: [SEMI], env: TRIM, why: "glibc's trim threshold fixed at its default: freed memory at the top of the heap (the compiler's zones at load) goes back to the system instead of raising the threshold" },
  { name: 'semi-1 + trim + no-opt', flags: [SEMI, '--no-opt'], env: TRIM, why: 'no optimizing compiler (TurboFan); interpreter, baseline compiler and regexp JIT stay' },
  { name: 'semi-1 + trim + jitless', flags: [SEMI, '--jitless', NO_WASM], env: TRIM, why: 'no executable memory at all: interpreter only, regexps interpreted, no WebAssembly' },
  { name: 'semi-1 + trim + lite', flags: [SEMI, '--lite-mode', NO_WASM], env: TRIM, why: 'jitless plus lazy feedback and smaller caches' },
  { name: 'semi-1 + trim + lite + single-threaded', flags: [SEMI, '--lite-mode', NO_WASM, '--single-threaded'], env: TRIM, why: 'no V8 background threads (GC, compiler)' },
  { name: 'semi-1 + trim + lite + arena-2', flags: [SEMI, '--lite-mode', NO_WASM], env: { ...TRIM, MALLOC_ARENA_MAX: '2' }, why: 'at most 2 glibc malloc arenas instead of 8 per core' },
  { name: 'semi-1 + trim + lite + gc-1-thread', flags: [SEMI, '--lite-mode', NO_WASM, '--single-threaded-gc'], env: TRIM, why: 'no background GC threads (the compiler threads stay, idle in lite mode)' },
  { name: 'semi-1 + trim + lite + bytecode-age-2', flags: [SEMI, '--lite-mode', NO_WASM, '--bytecode-old-age=2'], env: TRIM, why: 'bytecode of functions not run for 2 major GCs (default 5) is dropped: the start-up code (config, schemas) goes sooner' },
  { name: 'semi-1 + trim + lite + uv-pool-1', flags: [SEMI, '--lite-mode', NO_WASM], env: { ...TRIM, UV_THREADPOOL_SIZE: '1' }, why: "one libuv worker thread instead of 4 (async fs, DNS): fewer thread stacks and malloc arenas" },
];

/**
 * All variants at once, each an agent of its own with 10 services, beside
 * one bare node: the same minutes of the same machine for every variant.
 * Returns Markdown for docs/benchmarks.md.
 */
export async function runFlagsStudy(world: BenchWorld, windowMs: number, warmupMs: number, log: (line: string) => void): Promise<string> {
  const devices = LAUNCH_VARIANTS.map((v, i) => new BenchDevice(world, `flags-${i}`, v.flags, v.env ?? {}));
  const bare = bareNode();
  try {
    for (const d of devices) {
      await d.startOnline();
      await deployIdleServices(world, d);
      log(`  ${d.name}: online with 10 services`);
    }
    log(`flags: warm-up ${warmupMs / 1000} s, window ${windowMs / 1000} s`);
    await new Promise((r) => setTimeout(r, warmupMs));
    const traces = await traceWindow([...devices.map((d) => d.pid), bare.pid!], windowMs, 10_000, log);
    const bareRss = steadyRss(traces.at(-1)!);
    const MB = 1024 * 1024;
    const none = steadyRss(traces[0]!);
    const rows = LAUNCH_VARIANTS.map((v, i) => {
      const t = traces[i]!;
      const rss = steadyRss(t);
      const spread = summarize(t.samples.map((s) => s.rssBytes / MB));
      return `| ${v.name} | \`${[...Object.entries(v.env ?? {}).map(([k, val]) => `${k}=${val}`), ...v.flags].join(' ') || '—'}\` | ${(rss / MB).toFixed(1)} MB (${spread.min.toFixed(1)}–${spread.max.toFixed(1)}) | ${((rss - bareRss) / MB).toFixed(1)} MB | ${((none - rss) / MB).toFixed(1)} MB | ${((t.cpuMs / t.windowMs) * 100).toFixed(3)} % | ${v.why} |`;
    });
    return [
      `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench -- --flags\`: every variant at once, each an agent with 10 services, over a ${windowMs / 1000} s window after ${warmupMs / 1000} s of warm-up; RSS is the median of samples every 10 s (min–max). Bare node idling in the same window: ${(bareRss / MB).toFixed(1)} MB.`,
      '',
      '| variant | flags / environment | agent RSS | above bare node | saved vs none | CPU in window | what it does |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
    ].join('\n');
  } finally {
    bare.kill();
    for (const d of devices) await d.stop();
  }
}
