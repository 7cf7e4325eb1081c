import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { fleetCli } from '../../test/support/deploy-cli.js';
import type { BenchDevice } from '../bench-device.js';
import type { BenchWorld } from '../bench-world.js';
import type { FigureResult } from '../figure.js';
import type { FloorProcess } from '../floor/floor-processes.js';
import { whenInterrupted } from '../interrupts.js';
import { liveChildren, processCpu, processMemory } from '../proc-usage.js';
import { idleServicesCompose, serviceNames } from '../services-compose.js';
import { median, summarize } from '../stats.js';

export const SERVICES_PER_DEVICE = 10;
const MB = 1024 * 1024;

/** Deploy the 10 idle services to a device through the shipped fleet CLI, as an operator would. */
export async function deployIdleServices(world: BenchWorld, device: BenchDevice): Promise<void> {
  const file = join(world.work, `${device.name}-services.yaml`);
  writeFileSync(file, stringify(idleServicesCompose(world.images.busybox1, world.runLabel, serviceNames(SERVICES_PER_DEVICE))));
  const r = await fleetCli(['deploy', '--dir', world.fleet.fleet.dir, device.deviceId!, file, '--timeout', '180']);
  if (r.status !== 0) throw new Error(`deploy to ${device.name} exited ${r.status}: ${r.stderr}${r.stdout}`);
}

/** A bare node process that idles, as the baseline of resident memory. */
export function bareNode(flags: readonly string[] = [], env: Readonly<Record<string, string>> = {}): ChildProcess {
  const child = spawn(process.execPath, [...flags, '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', env: { ...process.env, ...env } });
  const forget = whenInterrupted(() => child.kill());
  child.once('exit', forget);
  return child;
}

export interface Sample {
  atMs: number;
  rssBytes: number;
  pssBytes: number | undefined;
}

export interface WindowTrace {
  samples: Sample[];
  /** CPU ms (own + reaped children) over the window. */
  cpuMs: number;
  childrenCpuMs: number;
  /** Most children seen alive at one sample. */
  maxLiveChildren: number;
  windowMs: number;
}

/**
 * Follow processes side by side for `windowMs`: resident memory every
 * `everyMs`, CPU time at both ends. All of them are read at the same
 * instants, so a noisy neighbour shows in every series at once.
 */
export async function traceWindow(pids: readonly number[], windowMs: number, everyMs: number, log: (line: string) => void): Promise<WindowTrace[]> {
  const start = performance.now();
  const cpu0 = pids.map((p) => processCpu(p));
  const traces: WindowTrace[] = pids.map(() => ({ samples: [], cpuMs: 0, childrenCpuMs: 0, maxLiveChildren: 0, windowMs }));
  for (;;) {
    const at = performance.now() - start;
    pids.forEach((pid, i) => {
      const m = processMemory(pid);
      traces[i]!.samples.push({ atMs: at, rssBytes: m.rssBytes, pssBytes: m.pssBytes });
      traces[i]!.maxLiveChildren = Math.max(traces[i]!.maxLiveChildren, liveChildren(pid).length);
    });
    if (traces[0]!.samples.length % 6 === 1) log(`  t=${(at / 1000).toFixed(0)} s  RSS ${traces.map((t) => (t.samples.at(-1)!.rssBytes / MB).toFixed(1)).join(' / ')} MB`);
    if (at >= windowMs) break;
    await new Promise((r) => setTimeout(r, Math.min(everyMs, Math.max(0, windowMs - at))));
  }
  const elapsed = performance.now() - start;
  pids.forEach((pid, i) => {
    const c = processCpu(pid);
    traces[i]!.cpuMs = c.selfMs - cpu0[i]!.selfMs + (c.childrenMs - cpu0[i]!.childrenMs);
    traces[i]!.childrenCpuMs = c.childrenMs - cpu0[i]!.childrenMs;
    traces[i]!.windowMs = elapsed;
  });
  return traces;
}

/** Resident memory of a trace: the median of its samples, so one GC's moment does not decide it. */
export function steadyRss(t: WindowTrace): number {
  return median(t.samples.map((s) => s.rssBytes));
}

/** Growth from the window's start to its end, each end the median of three samples. */
export function growth(t: WindowTrace): number {
  const ends = (xs: Sample[]): number => median(xs.map((s) => s.rssBytes));
  return ends(t.samples.slice(-3)) - ends(t.samples.slice(0, 3));
}

export interface SteadyPlan {
  devices: BenchDevice[];
  warmupMs: number;
  windowMs: number;
  everyMs: number;
  /** How the agent is launched, for the second baseline (bare node launched the same way). */
  nodeFlags: readonly string[];
  nodeEnv: Readonly<Record<string, string>>;
  /** The floor variants (bench/floor), traced in the same window; the first is the whole floor. */
  floor?: { bundleBytes: number; processes: readonly FloorProcess[] };
  log: (line: string) => void;
}

/**
 * The agent idle with 10 services, reports every 10 s, several devices at
 * once (each its own agent process, state and containers), each beside a bare
 * node idling. Three figures from one window: resident memory, its growth,
 * and CPU.
 */
export async function measureSteadyFootprint(world: BenchWorld, plan: SteadyPlan): Promise<{ figures: FigureResult[]; traces: WindowTrace[] }> {
  const { devices, log } = plan;
  const bare = devices.map(() => bareNode());
  const bareFlagged = bareNode(plan.nodeFlags, plan.nodeEnv);
  try {
    log(`steady: warm-up ${plan.warmupMs / 1000} s, then a ${plan.windowMs / 1000} s window over ${devices.length} agents and their baselines`);
    await new Promise((r) => setTimeout(r, plan.warmupMs));
    const floors = plan.floor?.processes ?? [];
    const pids = [...devices.map((d) => d.pid), ...bare.map((b) => b.pid!), bareFlagged.pid!, ...floors.map((f) => f.child.pid!)];
    const traces = await traceWindow(pids, plan.windowMs, plan.everyMs, log);
    const agents = traces.slice(0, devices.length);
    const bases = traces.slice(devices.length, 2 * devices.length);
    const flagged = traces[2 * devices.length]!;
    const floorTraces = traces.slice(2 * devices.length + 1);
    const mb = (xs: number[]): ReturnType<typeof summarize> => summarize(xs.map((x) => x / MB));
    const windowText = plan.windowMs >= 60_000 ? `${(plan.windowMs / 60_000).toFixed(plan.windowMs % 60_000 === 0 ? 0 : 1)} min` : `${plan.windowMs / 1000} s`;
    const childrenCpu = agents.reduce((a, t) => a + t.childrenCpuMs, 0);
    const liveMax = Math.max(...agents.map((t) => t.maxLiveChildren));
    const pss = agents.map((t) => median(t.samples.flatMap((s) => (s.pssBytes === undefined ? [] : [s.pssBytes]))));
    const figures: FigureResult[] = [
      {
        key: 'rss',
        title: `agent resident memory (VmRSS), steady, ${SERVICES_PER_DEVICE} services, a report every 10 s`,
        value: { summary: mb(agents.map(steadyRss)), unit: 'MB', digits: 1 },
        baseline: { title: 'bare `node` idling', value: { summary: mb(bases.map(steadyRss)), unit: 'MB', digits: 1 } },
        judged: { label: 'above baseline', value: { summary: mb(agents.map((t, i) => steadyRss(t) - steadyRss(bases[i]!))), unit: 'MB', digits: 1 } },
        target: { op: '<=', limit: 10 },
        note: `Each agent is one device with its own state and ${SERVICES_PER_DEVICE} containers, measured beside its own bare node; n = agents, each the median of its samples every ${plan.everyMs / 1000} s over the ${windowText} window after ${plan.warmupMs / 1000} s of warm-up. Agent launched with \`${[...Object.entries(plan.nodeEnv).map(([k, v]) => `${k}=${v}`), ...plan.nodeFlags].join(' ') || '(nothing)'}\`; a bare node launched the same way: ${(steadyRss(flagged) / MB).toFixed(1)} MB. Agent Pss: ${(median(pss) / MB).toFixed(1)} MB (shared pages of the node binary split with the other node processes on this machine).`,
      },
      {
        key: 'growth',
        title: `memory growth over ${windowText} of the same`,
        value: { summary: mb(agents.map(growth)), unit: 'MB', digits: 2 },
        baseline: { title: 'its own start', value: { summary: mb(agents.map((t) => median(t.samples.slice(0, 3).map((s) => s.rssBytes)))), unit: 'MB', digits: 1 } },
        target: { op: '<', limit: 2 },
        note: plan.windowMs >= 30 * 60_000
          ? 'The 30-minute run: median of the last three samples minus median of the first three, per agent.'
          : `Over the default ${windowText} window (median of the last three samples minus the first three, per agent); the target is for 30 minutes: \`npm run bench -- --long\`, whose last result is in the section below the table.`,
      },
      {
        key: 'idle-cpu',
        title: `agent CPU while idle with ${SERVICES_PER_DEVICE} services, ${windowText}`,
        value: { summary: summarize(agents.map((t) => (t.cpuMs / t.windowMs) * 100)), unit: '%', digits: 3 },
        target: { op: '<=', limit: 0.5 },
        note: `% of one core: utime+stime of the agent plus its reaped children (/proc/PID/stat) over the window. Children over all agents: ${childrenCpu.toFixed(0)} ms of CPU, at most ${liveMax} alive at any sample.${plan.windowMs < 5 * 60_000 ? ' The target is for 5 minutes; `--long` measures 30.' : ''}`,
      },
    ];
    if (plan.floor !== undefined) figures.push(floorFigure(plan.floor, floors, floorTraces, agents, bases, flagged));
    return { figures, traces };
  } finally {
    for (const b of [...bare, bareFlagged]) b.kill();
  }
}

/**
 * The floor (bench/floor/floor-program.ts) beside the agents: what the four
 * required packages cost by themselves, each part alone, and what the agent
 * costs above that. Reported, not judged: it is the evidence for the
 * resident-memory verdict.
 */
function floorFigure(floor: NonNullable<SteadyPlan['floor']>, floors: readonly FloorProcess[], traces: readonly WindowTrace[], agents: readonly WindowTrace[], bases: readonly WindowTrace[], flagged: WindowTrace): FigureResult {
  const bareRss = median(bases.map(steadyRss));
  const rssOf = (name: string): number => steadyRss(traces[floors.findIndex((f) => f.name === name)]!);
  const whole = traces[0]!;
  const agentRss = median(agents.map(steadyRss));
  const above = (x: number): string => `${((x - bareRss) / MB).toFixed(1)} MB`;
  const parts = floors.slice(1).map((f) => `${f.name === 'none' ? 'its bundle loaded, nothing used' : `${f.name} alone`}: ${above(rssOf(f.name))}`);
  return {
    key: 'floor',
    title: 'floor: the four required packages alone, doing the I/O the agent cannot do without, beside the agent (bench/floor)',
    value: { summary: summarize(whole.samples.map((s) => s.rssBytes / MB)), unit: 'MB', digits: 1 },
    baseline: { title: 'bare `node` idling', value: { summary: summarize(bases.map((t) => steadyRss(t) / MB)), unit: 'MB', digits: 1 } },
    judged: { label: 'above baseline', value: { summary: summarize([(steadyRss(whole) - bareRss) / MB]), unit: 'MB', digits: 1 } },
    note: `mqtt, dockerode, systeminformation and tweetnacl with node:crypto, doing what the agent does with them and nothing more (bench/floor/floor-program.ts: one MQTT 5 connection with the agent's client options and a QoS 1 request every 10 s that the broker answers; the engine's containers of one device listed and inspected, its event stream followed; Ed25519 verification of each message; the static facts read in a child), bundled as the agent is (${(floor.bundleBytes / 1024).toFixed(0)} KiB) and started with the agent's flags (a bare node started the same way: ${(steadyRss(flagged) / MB).toFixed(1)} MB), in the same window; the value is the median of its samples (n = samples). Above the bare node, each part alone — ${parts.join('; ')}. The agent above this floor: ${((agentRss - steadyRss(whole)) / MB).toFixed(1)} MB (median agent RSS minus the floor's).`,
  };
}
