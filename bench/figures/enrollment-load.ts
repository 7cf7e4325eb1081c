import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { silentLogger } from '../../common/logger.js';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import { generateKeyPairs, type KeyPairs } from '../../protocol/keys.js';
import { enroll } from '../../agent/enrollment/enroller.js';
import { FLEET_BUNDLE } from '../../test/support/agent-process.js';
import { createTestFleet } from '../../test/support/fleet.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import type { FigureResult } from '../figure.js';
import { processCpu } from '../proc-usage.js';
import { quantile, summarize } from '../stats.js';

/** `tsunagu-fleet serve`, the shipped enrollment service, ready once it says it listens. */
async function startService(fleetDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [FLEET_BUNDLE, 'serve', '--dir', fleetDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the enrollment service did not start: ${stderr}`)), 30_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.includes('enrollment service listening')) { clearTimeout(timer); resolve(); }
    });
    child.once('exit', (code) => reject(new Error(`the enrollment service exited ${code}: ${stderr}`)));
  });
  return child;
}

interface EnrollmentRun {
  enrolled: number;
  latenciesMs: number[];
  totalMs: number;
  serviceCpuMs: number;
}

/**
 * `devices` simulated boards enroll at once through one enrollment service
 * instance: each is the agent's own enrollment code (agent/enrollment) with
 * its own key pairs, MQTT connection and claim, in this process; the service
 * is the shipped fleet bundle in its own process, against a real Mosquitto
 * with dynamic security (every grant creates the device's broker account
 * and role). A fresh broker and fleet per run.
 */
async function enrollmentRun(devices: number): Promise<EnrollmentRun> {
  const broker = await startMosquitto();
  const fleet = await createTestFleet(broker, { fleetId: 'enroll-bench' });
  let service: ChildProcess | undefined;
  const abort = new AbortController();
  try {
    service = await startService(fleet.fleet.dir);
    // Key pairs first: they are made once at a device's first boot, not part of enrolling.
    const keys: KeyPairs[] = Array.from({ length: devices }, () => generateKeyPairs());
    const ed = defaultEd25519();
    const logger = silentLogger();
    const cpu0 = processCpu(service.pid!).selfMs;
    const t0 = performance.now();
    const latencies = await Promise.all(keys.map(async (k, i) => {
      const began = performance.now();
      await enroll({
        bootstrap: fleet.bootstrap, keys: k, ed, logger, signal: abort.signal, backoff: { baseMs: 1000, capMs: 10_000 },
        claim: { serial: `bench-${String(i).padStart(4, '0')}`, model: 'bench board', arch: 'arm64', macs: [], hostname: `bench-${i}`, claimToken: fleet.claimToken },
      });
      return performance.now() - began;
    }));
    const totalMs = performance.now() - t0;
    return { enrolled: latencies.length, latenciesMs: latencies, totalMs, serviceCpuMs: processCpu(service.pid!).selfMs - cpu0 };
  } finally {
    abort.abort();
    if (service !== undefined && service.exitCode === null) {
      const gone = new Promise((r) => service!.once('exit', r));
      service.kill('SIGTERM');
      await gone;
    }
    await fleet.close();
    await broker.close();
  }
}

export async function measureEnrollment(devices: number, runs: number, log: (line: string) => void): Promise<FigureResult[]> {
  const results: EnrollmentRun[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await enrollmentRun(devices);
    results.push(r);
    log(`  run ${i + 1}/${runs}: ${r.enrolled} enrolled in ${(r.totalMs / 1000).toFixed(1)} s, p99 ${quantile(r.latenciesMs, 0.99).toFixed(0)} ms`);
  }
  const note = `${devices} simulated devices start enrolling at the same instant (no start-up jitter: the worst case), each with the agent's own enrollment code and its own MQTT connection, in the bench process; one \`tsunagu-fleet serve\` process answers, against a real Mosquitto with dynamic security; a fresh broker and fleet per run (n = runs). Latency: from a device's first connection attempt to its grant. Service CPU per enrollment: ${summarize(results.map((r) => r.serviceCpuMs / devices)).median.toFixed(1)} ms; p50 latency ${summarize(results.map((r) => quantile(r.latenciesMs, 0.5))).median.toFixed(0)} ms.`;
  return [
    {
      key: 'enroll-all',
      title: `enrollment of ${devices} simulated devices through one service instance: enrolled`,
      value: { summary: summarize(results.map((r) => r.enrolled)), unit: 'devices', digits: 0 },
      target: { op: '>=', limit: devices },
      note,
    },
    {
      key: 'enroll-rate',
      title: '… throughput',
      value: { summary: summarize(results.map((r) => devices / (r.totalMs / 1000))), unit: 'devices/s', digits: 1 },
    },
    {
      key: 'enroll-p99',
      title: '… p99 latency',
      value: { summary: summarize(results.map((r) => quantile(r.latenciesMs, 0.99))), unit: 'ms', digits: 0 },
    },
  ];
}
