import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { fleetCli } from '../../test/support/deploy-cli.js';
import { TEST_LABEL } from '../../test/support/supervisor-harness.js';
import type { BenchDevice } from '../bench-device.js';
import type { BenchWorld } from '../bench-world.js';
import type { FigureResult } from '../figure.js';
import { serviceNames } from '../services-compose.js';
import { summarize } from '../stats.js';
import { SERVICES_PER_DEVICE } from './steady-footprint.js';

const GRACE_S = 2;
/** PID 1 without a handler: the kernel drops SIGTERM for it, so every stop waits out the grace (the case of issue 13). */
const DEAF = ['sleep', '1000000'];

interface EngineEvent { action: string; scope: string; service: string; name: string; atMs: number }

/** Kill and start events of this run's containers, with the engine's own timestamps. */
async function followEvents(docker: Docker, runLabel: string): Promise<{ events: EngineEvent[]; close: () => void }> {
  const stream = await docker.getEvents({ filters: { type: ['container'], event: ['kill', 'start'], label: [`${TEST_LABEL}=${runLabel}`] } });
  const events: EngineEvent[] = [];
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const e = JSON.parse(buffered.slice(0, nl)) as { Action: string; timeNano: number; Actor: { Attributes: Record<string, string> } };
      buffered = buffered.slice(nl + 1);
      const a = e.Actor.Attributes;
      events.push({ action: e.Action, scope: a[LABELS.scope] ?? '', service: a[LABELS.service] ?? '', name: a.name ?? '', atMs: e.timeNano / 1e6 });
    }
  });
  return { events, close: () => (stream as unknown as { destroy: () => void }).destroy() };
}

function dockerCli(args: string[], dockerHost: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/docker', args, { env: { ...process.env, DOCKER_HOST: dockerHost }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (status) => (status === 0 ? resolve() : reject(new Error(`docker ${args[0]} exited ${status}: ${stderr}`))));
  });
}

async function until<T>(what: string, find: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no ${what} in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The longest downtime of any of 10 services updated in one version, each
 * a PID 1 that ignores SIGTERM with a 2 s grace: from the engine's first
 * kill event of a service's old container to the start event of its new
 * one, deployed through `tsunagu-fleet deploy`. Beside it, in each run, one
 * container replaced by hand the same way: `docker stop` then `docker run -d`
 * of the same image, command and stop timeout, timed between the same two
 * engine events. Run after the other figures: it replaces the device's idle
 * services.
 */
export async function measureUpdateDowntime(world: BenchWorld, device: BenchDevice, runs: number, log: (line: string) => void): Promise<FigureResult> {
  const names = serviceNames(SERVICES_PER_DEVICE);
  const watch = await followEvents(world.docker, world.runLabel);
  const deploy = async (round: number): Promise<void> => {
    const file = join(world.work, `${device.name}-update-${round}.yaml`);
    writeFileSync(file, stringify({
      services: Object.fromEntries(names.map((name) => [name, {
        image: world.images.busybox1, command: DEAF, network_mode: 'none', restart: 'always', stop_grace_period: `${GRACE_S}s`,
        environment: { ROUND: String(round) }, labels: { [TEST_LABEL]: world.runLabel },
      }])),
    }));
    const r = await fleetCli(['deploy', '--dir', world.fleet.fleet.dir, device.deviceId!, file, '--timeout', '180']);
    if (r.status !== 0) throw new Error(`deploy to ${device.name} exited ${r.status}: ${r.stderr}${r.stdout}`);
  };
  const agentMs: number[] = [];
  const dockerMs: number[] = [];
  try {
    await deploy(0); // the services as they will be updated, untimed
    for (let run = 1; run <= runs; run++) {
      const mark = watch.events.length;
      await deploy(run);
      const mine = watch.events.slice(mark).filter((e) => e.scope === device.scope);
      const downtimes = names.map((service) => {
        const kill = mine.find((e) => e.service === service && e.action === 'kill');
        const start = mine.find((e) => e.service === service && e.action === 'start' && e.atMs > (kill?.atMs ?? Infinity));
        if (kill === undefined || start === undefined) throw new Error(`run ${run}: no stop and start of ${service} seen`);
        return start.atMs - kill.atMs;
      });
      agentMs.push(Math.max(...downtimes));

      const old = `${world.runLabel}-stop-run-${run}-a`;
      const replacement = `${world.runLabel}-stop-run-${run}-b`;
      const runArgs = (name: string): string[] => ['run', '-d', '--name', name, '--network', 'none', '--stop-timeout', String(GRACE_S), '--label', `${TEST_LABEL}=${world.runLabel}`, world.images.busybox1, ...DEAF];
      await dockerCli(runArgs(old), world.dockerHost);
      await until('start of the container to stop', () => watch.events.find((e) => e.name === old && e.action === 'start'));
      await dockerCli(['stop', old], world.dockerHost);
      await dockerCli(runArgs(replacement), world.dockerHost);
      const killed = await until('kill event', () => watch.events.find((e) => e.name === old && e.action === 'kill'));
      const started = await until('start of the replacement', () => watch.events.find((e) => e.name === replacement && e.action === 'start'));
      dockerMs.push(started.atMs - killed.atMs);
      await dockerCli(['rm', '-f', old, replacement], world.dockerHost);
      log(`  run ${run}/${runs}: agent, longest of ${names.length}: ${agentMs.at(-1)!.toFixed(0)} ms; docker stop + run of one: ${dockerMs.at(-1)!.toFixed(0)} ms`);
    }
  } finally {
    watch.close();
  }
  return {
    key: 'update-downtime',
    title: `longest downtime of any service, ${SERVICES_PER_DEVICE} updated in one version (PID 1 ignores SIGTERM, ${GRACE_S} s grace)`,
    value: { summary: summarize(agentMs), unit: 'ms', digits: 0 },
    baseline: { title: 'one `docker stop` + `docker run -d`, same image, command and stop timeout', value: { summary: summarize(dockerMs), unit: 'ms', digits: 0 } },
    judged: { label: 'ratio', value: { summary: summarize(agentMs.map((a, i) => a / dockerMs[i]!)), unit: '×', digits: 2 } },
    note: `${runs} runs, each a version that changes all ${SERVICES_PER_DEVICE} services (an environment variable), deployed through \`tsunagu-fleet deploy\` to a device running them; per service, from the engine's first kill event of its old container to the start event of its new one, the longest of the ${SERVICES_PER_DEVICE} per run. Replaced one after another, the last service would be down for all ${SERVICES_PER_DEVICE} graces (${SERVICES_PER_DEVICE * GRACE_S} s) and more. Baseline: one such container replaced by hand right after, between the same two engine events. Ratio per run.`,
  };
}
