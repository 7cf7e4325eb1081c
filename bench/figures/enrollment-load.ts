import { spawn, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { createInterface } from 'node:readline';
import { silentLogger } from '../../common/logger.js';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import { generateKeyPairs, type KeyPairs } from '../../protocol/keys.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { enroll } from '../../agent/enrollment/enroller.js';
import { FLEET_BUNDLE } from '../../test/support/agent-process.js';
import { createTestFleet } from '../../test/support/fleet.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import type { FigureResult } from '../figure.js';
import { whenInterrupted } from '../interrupts.js';
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

/** A run that has not enrolled everyone by then reports how many it enrolled. */
const RUN_LIMIT_MS = 5 * 60_000;

interface EnrollmentRun {
  enrolled: number;
  latenciesMs: number[];
  totalMs: number;
  serviceCpuMs: number;
}

/**
 * `devices` simulated boards powered up at the same instant enroll through
 * one enrollment service instance: each is the agent's own enrollment code
 * (agent/enrollment) with its own key pairs, MQTT connection and claim, in
 * this process, with the agent's default start-up jitter and back-off (a
 * fleet without them retries in lockstep: every answer later than the
 * device's 20 s timeout becomes a second request); the service is the
 * shipped fleet bundle in its own process, against a real Mosquitto with
 * dynamic security (every grant creates the device's broker account and
 * role). A fresh broker and fleet per run.
 */
async function enrollmentRun(devices: number): Promise<EnrollmentRun> {
  const broker = await startMosquitto();
  const fleet = await createTestFleet(broker, { fleetId: 'enroll-bench' });
  let service: ChildProcess | undefined;
  const abort = new AbortController();
  const forget = whenInterrupted(async () => {
    service?.kill('SIGKILL');
    await fleet.close();
    await broker.close();
  });
  try {
    service = await startService(fleet.fleet.dir);
    // Key pairs first: they are made once at a device's first boot, not part of enrolling.
    const keys: KeyPairs[] = Array.from({ length: devices }, () => generateKeyPairs());
    const ed = defaultEd25519();
    const logger = silentLogger();
    const defaults = AgentConfigSchema.parse({}).enrollment;
    setMaxListeners(devices + 10, abort.signal);
    const limit = setTimeout(() => abort.abort(), RUN_LIMIT_MS);
    const cpu0 = processCpu(service.pid!).selfMs;
    const t0 = performance.now();
    const outcomes = await Promise.all(keys.map(async (k, i) => {
      // The device's own random draw, fixed so that its first attempt's instant is known.
      const draw = Math.random();
      const firstAttemptMs = Math.floor(draw * defaults.startupJitterMs);
      try {
        await enroll({
          bootstrap: fleet.bootstrap, keys: k, ed, logger, signal: abort.signal, random: () => draw,
          startupJitterMs: defaults.startupJitterMs, backoff: { baseMs: defaults.backoffBaseMs, capMs: defaults.backoffCapMs },
          claim: { serial: `bench-${String(i).padStart(4, '0')}`, model: 'bench board', arch: 'arm64', macs: [], hostname: `bench-${i}`, claimToken: fleet.claimToken },
        });
        return { latencyMs: performance.now() - t0 - firstAttemptMs, doneMs: performance.now() - t0 };
      } catch {
        return undefined; // aborted at the run's limit
      }
    }));
    clearTimeout(limit);
    const done = outcomes.flatMap((o) => (o === undefined ? [] : [o]));
    return {
      enrolled: done.length, latenciesMs: done.map((o) => o.latencyMs), totalMs: Math.max(0, ...done.map((o) => o.doneMs)),
      serviceCpuMs: processCpu(service.pid!).selfMs - cpu0,
    };
  } finally {
    abort.abort();
    if (service !== undefined && service.exitCode === null) {
      const gone = new Promise((r) => service!.once('exit', r));
      service.kill('SIGTERM');
      await gone;
    }
    forget();
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
  const note = `${devices} simulated devices powered up at the same instant, each running the agent's own enrollment code with the agent's defaults (start-up jitter up to 10 s, then back-off) and its own MQTT connection, in the bench process; one \`tsunagu-fleet serve\` process answers, against a real Mosquitto with dynamic security; a fresh broker and fleet per run (n = runs, each given ${RUN_LIMIT_MS / 60_000} min). Throughput: devices over the time from power-up to the last grant, so at most ${devices / 10} devices/s, the rate at which the jitter brings them; the service's own capacity shows in its CPU: ${summarize(results.map((r) => r.serviceCpuMs / devices)).median.toFixed(1)} ms per enrollment. Latency: from a device's first attempt (after its jitter) to its grant; p50 ${summarize(results.map((r) => quantile(r.latenciesMs, 0.5))).median.toFixed(0)} ms.`;
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
