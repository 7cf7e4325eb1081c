import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { fleetPaths } from '../../provisioning/fleet-dir.js';
import type { BenchDevice } from '../bench-device.js';
import type { BenchWorld } from '../bench-world.js';
import type { FigureResult } from '../figure.js';
import { idleServicesCompose, serviceNames } from '../services-compose.js';
import { summarize } from '../stats.js';
import { dockerCli, PROBE, sameOptionsAsAgent, StartEvents } from './deploy-latency.js';
import { SERVICES_PER_DEVICE } from './steady-footprint.js';

const FLEET_CLI = 'dist/tsunagu-fleet.js';

/** Run the shipped fleet CLI as an operator would; resolves with its exit status. */
function fleetCli(args: string[], fleetDir: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FLEET_CLI, ...args], { env: { ...process.env, TSUNAGU_FLEET_DIR: fleetDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('close', (status) => resolve({ status, output }));
  });
}

/**
 * What the operator waits for: `tsunagu-fleet deploy DEVICE compose.yaml`
 * typed (the bundled CLI spawned) → the new container's `start` event, with
 * `serve` running (it takes the work over the fleet directory's socket),
 * against `docker run -d` of the same image and options, in pairs,
 * alternating, in the same run. The CLI runs to its end (the device applied)
 * before the pair's `docker run`; an untimed `deploy` takes the service away
 * again before the next pair.
 */
export async function measureDeployCommandLatency(world: BenchWorld, device: BenchDevice, pairs: number, log: (line: string) => void): Promise<FigureResult> {
  const fleetDir = world.fleet.fleet.dir;
  if (!existsSync(fleetPaths(fleetDir).serveSocket)) throw new Error('serve does not listen on its socket: the figure would measure the path without it');
  const deviceId = device.deviceId!;
  const base = serviceNames(SERVICES_PER_DEVICE);
  const withProbe = join(world.work, 'compose-probe.yaml');
  const without = join(world.work, 'compose-base.yaml');
  writeFileSync(withProbe, stringify(idleServicesCompose(world.images.busybox1, world.runLabel, [...base, PROBE])));
  writeFileSync(without, stringify(idleServicesCompose(world.images.busybox1, world.runLabel, base)));
  const events = new StartEvents();
  await events.open(world.docker, world.runLabel);
  const cliMs: number[] = [];
  const dockerMs: number[] = [];
  const deploy = async (file: string): Promise<void> => {
    const r = await fleetCli(['deploy', deviceId, file], fleetDir);
    if (r.status !== 0) throw new Error(`tsunagu-fleet deploy exited with ${r.status}: ${r.output}`);
  };
  try {
    for (let i = 0; i < pairs; i++) {
      const started = events.next((a) => a[LABELS.scope] === device.scope && a[LABELS.service] === PROBE);
      const t0 = Date.now();
      const done = deploy(withProbe);
      cliMs.push((await started) - t0);
      await done;
      const probe = (await world.docker.listContainers({ filters: { label: [`${LABELS.scope}=${device.scope}`, `${LABELS.service}=${PROBE}`] } }))[0];
      const info = await world.docker.getContainer(probe!.Id).inspect();

      const name = `${world.runLabel}-docker-run-cli-${i}`;
      const dockerStarted = events.next((a) => a.name === name);
      const t1 = Date.now();
      const run = await dockerCli(sameOptionsAsAgent(info, name, world.runLabel), world.dockerHost);
      if (run.status !== 0) throw new Error(`docker run failed: ${run.stderr}`);
      dockerMs.push((await dockerStarted) - t1);
      await dockerCli(['rm', '-f', name], world.dockerHost);

      await deploy(without);
      log(`  pair ${i + 1}/${pairs}: tsunagu-fleet deploy ${cliMs.at(-1)!.toFixed(0)} ms, docker run ${dockerMs.at(-1)!.toFixed(0)} ms`);
    }
  } finally {
    events.close();
  }
  return {
    key: 'deploy-command',
    title: '`tsunagu-fleet deploy DEVICE compose.yaml` typed → container running (image on disk)',
    value: { summary: summarize(cliMs), unit: 'ms', digits: 0 },
    baseline: { title: '`docker run -d`, same image and options', value: { summary: summarize(dockerMs), unit: 'ms', digits: 0 } },
    judged: { label: 'ratio', value: { summary: summarize(cliMs.map((a, i) => a / dockerMs[i]!)), unit: '×', digits: 2 } },
    target: { op: '<=', limit: 1.2 },
    note: `${pairs} pairs, alternating. From the spawn of the bundled CLI (\`node ${FLEET_CLI} deploy DEVICE compose.yaml\`) to the engine's start event of the one new service, on a device running ${SERVICES_PER_DEVICE} others; \`serve\` runs (in the bench process, as the library \`serve\` is built from) and the CLI hands it the deployment over the fleet directory's socket, so the CLI neither connects to the broker nor opens the database. \`docker run -d\`: CLI spawn to the start event, options read back from the agent's container. Ratio per pair.`,
  };
}
