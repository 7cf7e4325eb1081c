import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { silentLogger } from '../../common/logger.js';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import { generateKeyPairs } from '../../protocol/keys.js';
import { ContainerUsage } from '../../agent/resources/container-usage.js';
import { enroll } from '../../agent/enrollment/enroller.js';
import { DeviceLink } from '../../agent/link/device-link.js';
import { Outbound } from '../../agent/link/outbound.js';
import { Outbox } from '../../agent/link/outbox.js';
import { Reporter } from '../../agent/reporting/reporter.js';
import { InventoryService } from '../../agent/resources/inventory.js';
import { MetricsSampler } from '../../agent/resources/metrics-sampler.js';
import { SystemProbe } from '../../agent/resources/system-probe.js';
import type { BootstrapFile } from '../../protocol/bootstrap.js';
import type { FigureResult } from '../figure.js';
import { whenInterrupted } from '../interrupts.js';
import { processCpu } from '../proc-usage.js';
import { summarize } from '../stats.js';

/**
 * Count every child process this process starts from now on: the async
 * paths all go through ChildProcess.prototype.spawn, the sync ones through
 * the module's functions (patched on the CommonJS object and synced to the
 * ES module namespace).
 */
function countSpawns(): { count(): number; restore(): void } {
  let n = 0;
  const cp = createRequire(import.meta.url)('node:child_process') as Record<string, unknown>;
  // Not in the typings: the method every asynchronous spawn goes through.
  const proto = ChildProcess.prototype as unknown as { spawn: (...args: unknown[]) => unknown };
  const originalSpawn = proto.spawn;
  proto.spawn = function (this: ChildProcess, ...args: unknown[]) {
    n++;
    return originalSpawn.apply(this, args);
  };
  const syncNames = ['spawnSync', 'execSync', 'execFileSync'] as const;
  const originals = syncNames.map((name) => cp[name]);
  for (const name of syncNames) {
    const original = cp[name] as (...a: unknown[]) => unknown;
    cp[name] = ((...a: unknown[]) => { n++; return original(...a); });
  }
  syncBuiltinESMExports();
  return {
    count: () => n,
    restore: () => {
      proto.spawn = originalSpawn;
      syncNames.forEach((name, i) => { cp[name] = originals[i]; });
      syncBuiltinESMExports();
    },
  };
}

export interface ReportCostInput {
  bootstrap: BootstrapFile;
  claimToken: string;
  containers: { name: string; containerId: string }[];
  runs: number;
}

/**
 * One periodic resource report as the agent's timer runs it (Reporter.tick:
 * hot-plug check, /proc and /sys sample, cgroup usage of the device's
 * running containers, the metrics JSON, its QoS 1 publish to the real broker
 * and the PUBACK), timed in this process: CPU of every thread plus reaped
 * children, and every process spawned counted. The device is one simulated
 * board enrolled through the real enrollment path; a clock advanced by 10 s
 * per round makes every round a due report. Run it under the agent's node
 * flags (report-cost-child.ts): they change what the same code costs.
 */
export async function measureReportCostHere(input: ReportCostInput): Promise<FigureResult> {
  const { bootstrap, containers, runs } = input;
  const ed = defaultEd25519();
  const logger = silentLogger();
  const abort = new AbortController();
  const grant = await enroll({
    bootstrap, keys: generateKeyPairs(), ed, logger, signal: abort.signal,
    claim: { serial: 'bench-report-cost', model: 'bench', arch: 'amd64', macs: [], hostname: 'bench', claimToken: input.claimToken },
  });
  const link = new DeviceLink({
    deviceId: grant.deviceId, clientId: grant.clientId, logger, agentVersion: 'bench',
    endpoint: { url: bootstrap.broker.url, username: grant.username, password: grant.password, protocolVersion: 5 },
  });
  const online = new Promise<void>((resolve) => link.on('state', (s) => { if (s === 'online') resolve(); }));
  link.start();
  await online;
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-bench-outbox-'));
  const outbox = Outbox.open({ dir, maxBytes: 1024 * 1024 });
  const probe = new SystemProbe();
  const usage = new ContainerUsage();
  const services = containers.map((c) => ({ ...c, state: 'running' }));
  let now = Date.now();
  const reporter = new Reporter({
    inventory: new InventoryService({ probe }), sampler: new MetricsSampler(probe), outbound: new Outbound(link, outbox, logger), logger,
    intervalMs: 10_000, sampleMs: 10_000, clock: () => now,
    runtimeVersion: () => 'docker bench', serviceUsage: () => Promise.resolve(usage.sample(services)),
  });
  const cpuMs: number[] = [];
  const wallMs: number[] = [];
  let childrenMs = 0;
  let spawned = 0;
  const spawns = countSpawns();
  try {
    // Warm-up: the first round reads the static facts, and code is compiled once.
    for (let i = 0; i < 3; i++) { now += 10_000; await reporter.tick(); }
    for (let i = 0; i < runs; i++) {
      now += 10_000;
      const c0 = processCpu(process.pid).childrenMs;
      const u0 = process.cpuUsage();
      const t0 = performance.now();
      await reporter.tick();
      const t1 = performance.now();
      const u = process.cpuUsage(u0);
      const children = processCpu(process.pid).childrenMs - c0;
      childrenMs += children;
      cpuMs.push((u.user + u.system) / 1000 + children);
      wallMs.push(t1 - t0);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    spawned = spawns.count();
    spawns.restore();
    abort.abort();
    await link.close();
    outbox.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    key: 'report-cpu',
    title: 'one periodic resource report, CPU time including spawned processes',
    value: { summary: summarize(cpuMs), unit: 'ms', digits: 2 },
    target: { op: '<=', limit: 15 },
    note: `${runs} reports after 3 of warm-up, in a process under the agent's node flags and environment (${process.execArgv.filter((a) => a.startsWith('--') && a !== '--import').join(' ')}), with the cgroup usage of ${containers.length} running containers: the agent's own Reporter round (sample, JSON, QoS 1 publish and PUBACK from the real broker) in one process; CPU of all its threads plus reaped children. Processes spawned during the ${runs} rounds: ${spawned}; children's CPU: ${childrenMs.toFixed(0)} ms. Wall time per report, median: ${summarize(wallMs).median.toFixed(2)} ms.`,
  };
}

/** The figure measured by report-cost-child.ts under the agent's flags and environment. */
export async function measureReportCost(input: ReportCostInput, flags: readonly string[], env: Readonly<Record<string, string>>): Promise<FigureResult> {
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', 'bench/report-cost-child.ts'], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const forget = whenInterrupted(() => child.kill());
  child.once('exit', forget);
  child.stdin.end(JSON.stringify(input));
  const [out, code] = await Promise.all([text(child.stdout), new Promise((resolve) => child.once('exit', resolve))]);
  if (code !== 0) throw new Error(`report-cost child exited ${String(code)}`);
  return JSON.parse(out) as FigureResult;
}
