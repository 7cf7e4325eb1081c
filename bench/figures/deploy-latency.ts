import { spawn } from 'node:child_process';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { parseState } from '../../provisioning/deploy/rollout.js';
import { prepareDeployment, desiredDataFor } from '../../provisioning/deploy/compose-document.js';
import { DESIRED_TYPE } from '../../protocol/commands.js';
import { DESIRED_LIFETIME_MS } from '../../provisioning/deploy/deploy-device.js';
import { fleetSession } from '../../test/support/fleet-session.js';
import { TEST_LABEL } from '../../test/support/supervisor-harness.js';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import type { BenchDevice } from '../bench-device.js';
import type { BenchWorld } from '../bench-world.js';
import type { FigureResult } from '../figure.js';
import { idleServicesCompose, serviceNames } from '../services-compose.js';
import { summarize } from '../stats.js';
import { SERVICES_PER_DEVICE } from './steady-footprint.js';

export const PROBE = 'probe';

/** Start events of this run's containers, as the engine stamps them (ns since the epoch). */
export class StartEvents {
  private readonly waiters: { match: (attrs: Record<string, string>) => boolean; resolve: (atMs: number) => void }[] = [];
  private stream: NodeJS.ReadableStream | undefined;

  async open(docker: Docker, runLabel: string): Promise<void> {
    this.stream = await docker.getEvents({ filters: { type: ['container'], event: ['start'], label: [`${TEST_LABEL}=${runLabel}`] } });
    let buffered = '';
    this.stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const e = JSON.parse(line) as { timeNano: number; Actor: { Attributes: Record<string, string> } };
        for (const w of [...this.waiters]) {
          if (!w.match(e.Actor.Attributes)) continue;
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(e.timeNano / 1e6);
        }
      }
    });
  }

  /** Register before acting, so that a fast start is not missed. */
  next(match: (attrs: Record<string, string>) => boolean, timeoutMs = 60_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no container start event in time')), timeoutMs);
      this.waiters.push({ match, resolve: (at) => { clearTimeout(timer); resolve(at); } });
    });
  }

  close(): void {
    (this.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
  }
}

export function dockerCli(args: string[], dockerHost: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/docker', args, { env: { ...process.env, DOCKER_HOST: dockerHost }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

/**
 * `docker run -d` arguments for the very container the agent created: same
 * image, labels, network mode, log driver and options, stop timeout,
 * environment and restart policy, read back from the engine.
 */
export function sameOptionsAsAgent(info: Docker.ContainerInspectInfo, name: string, runLabel: string): string[] {
  const labels = Object.entries({ ...info.Config.Labels, [TEST_LABEL]: runLabel, [LABELS.scope]: `${runLabel}-docker-run` });
  // The engine reports it; dockerode's type leaves it out.
  const stopTimeout = (info.Config as { StopTimeout?: number }).StopTimeout;
  return [
    'run', '-d', '--name', name,
    '--network', info.HostConfig.NetworkMode ?? 'none',
    '--restart', info.HostConfig.RestartPolicy?.Name || 'no',
    '--log-driver', info.HostConfig.LogConfig?.Type ?? 'json-file',
    ...Object.entries((info.HostConfig.LogConfig?.Config ?? {}) as Record<string, string>).flatMap(([k, v]) => ['--log-opt', `${k}=${v}`]),
    ...(stopTimeout === undefined ? [] : ['--stop-timeout', String(stopTimeout)]),
    ...(info.Config.Env ?? []).flatMap((e) => ['--env', e]),
    ...labels.flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    info.Config.Image,
  ];
}

/**
 * Signed deploy message published → the new container's `start` event,
 * against `docker run -d` of the same image with the same options → its
 * `start` event, in pairs, alternating, on a device already running its 10
 * services with the image on disk. Both ends are clock readings of this
 * machine: the publish instant here, the engine's own event time there.
 * Each agent round adds one service (create + start, as `docker run` does);
 * an untimed round takes it away again before the next pair.
 */
export async function measureDeployLatency(world: BenchWorld, device: BenchDevice, pairs: number, log: (line: string) => void): Promise<FigureResult> {
  const session = await fleetSession(world.fleet, world.broker.url);
  const events = new StartEvents();
  await events.open(world.docker, world.runLabel);
  const deviceId = device.deviceId!;
  const boxPublicKey = world.fleet.server!.database.byId(deviceId)!.boxPublicKey;
  const states = new Map<number, string>();
  const stateWaiters: { version: number; resolve: () => void }[] = [];
  const stopWatch = await session.link.watch(deviceId, ['state'], (r) => {
    const s = parseState(r.payload);
    if (s?.desiredVersion == null) return;
    states.set(s.desiredVersion, s.status);
    for (const w of [...stateWaiters]) {
      if (s.desiredVersion === w.version && s.status === 'synced') {
        stateWaiters.splice(stateWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  const synced = (version: number): Promise<void> => (states.get(version) === 'synced' ? Promise.resolve() : new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`version ${version} not synced in time`)), 120_000);
    stateWaiters.push({ version, resolve: () => { clearTimeout(timer); resolve(); } });
  }));
  const base = serviceNames(SERVICES_PER_DEVICE);
  const publish = async (names: string[]): Promise<{ version: number; sentAt: number }> => {
    const prepared = prepareDeployment(stringify(idleServicesCompose(world.images.busybox1, world.runLabel, names)));
    const version = session.signer.reserveCounter();
    const data = desiredDataFor(prepared, version, boxPublicKey);
    const sentAt = Date.now();
    await session.link.publishSigned(deviceId, DESIRED_TYPE, data, { lifetimeMs: DESIRED_LIFETIME_MS, retain: true });
    return { version, sentAt };
  };
  const agentMs: number[] = [];
  const dockerMs: number[] = [];
  try {
    for (let i = 0; i < pairs; i++) {
      const started = events.next((a) => a[LABELS.scope] === device.scope && a[LABELS.service] === PROBE);
      const { version, sentAt } = await publish([...base, PROBE]);
      agentMs.push((await started) - sentAt);
      await synced(version);
      const probe = (await world.docker.listContainers({ filters: { label: [`${LABELS.scope}=${device.scope}`, `${LABELS.service}=${PROBE}`] } }))[0];
      const info = await world.docker.getContainer(probe!.Id).inspect();

      const name = `${world.runLabel}-docker-run-${i}`;
      const dockerStarted = events.next((a) => a.name === name);
      const t0 = Date.now();
      const run = await dockerCli(sameOptionsAsAgent(info, name, world.runLabel), world.dockerHost);
      if (run.status !== 0) throw new Error(`docker run failed: ${run.stderr}`);
      dockerMs.push((await dockerStarted) - t0);
      await dockerCli(['rm', '-f', name], world.dockerHost);

      const back = await publish(base);
      await synced(back.version);
      log(`  pair ${i + 1}/${pairs}: agent ${agentMs.at(-1)!.toFixed(0)} ms, docker run ${dockerMs.at(-1)!.toFixed(0)} ms`);
    }
  } finally {
    await stopWatch();
    events.close();
    await session.close();
  }
  return {
    key: 'deploy',
    title: 'signed deploy message sent → container running (image on disk)',
    value: { summary: summarize(agentMs), unit: 'ms', digits: 0 },
    baseline: { title: '`docker run -d`, same image and options', value: { summary: summarize(dockerMs), unit: 'ms', digits: 0 } },
    judged: { label: 'ratio', value: { summary: summarize(agentMs.map((a, i) => a / dockerMs[i]!)), unit: '×', digits: 2 } },
    target: { op: '<=', limit: 1.2 },
    note: `${pairs} pairs, alternating. Agent: publish of the signed desired state (fleet library, QoS 1, retained) to the engine's start event of the one new service, on a device running ${SERVICES_PER_DEVICE} others; the path is broker → verify → persist desired.msg (fsync) → plan → create → start. \`docker run -d\`: CLI spawn to the start event, with the options read back from the agent's container. Ratio per pair.`,
  };
}
