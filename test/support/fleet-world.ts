import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { createTestFleet, type TestFleet } from './fleet.js';
import { fleetSession } from './fleet-session.js';
import { startMosquitto, type TestBroker } from './mosquitto.js';
import { dockerTestEnv, removeContainers, TEST_LABEL, testDocker, type TestImages } from './test-docker.js';

type FleetSession = Awaited<ReturnType<typeof fleetSession>>;

/** The fleet side of a device test: a real Mosquitto, a fleet on it with its enrollment service running, a work directory. */
export interface FleetWorld {
  broker: TestBroker;
  tf: TestFleet;
  /** A fresh directory for the device's state, bootstrap file and compose files. */
  work: string;
  /** `<work>/device`, not created: the state directory of the test's device. */
  stateDir: string;
  /** `<work>/bootstrap.json`, written: the fleet's bootstrap file, as the device is given it. */
  bootstrapPath: string;
}

/** Start a {@link FleetWorld}; `workPrefix` names the work directory in the temp dir (`tsunagu-<test>-`). */
export async function startFleetWorld(workPrefix: string): Promise<FleetWorld> {
  const broker = await startMosquitto();
  const tf = await createTestFleet(broker);
  await tf.startServer();
  const work = mkdtempSync(join(tmpdir(), workPrefix));
  const bootstrapPath = join(work, 'bootstrap.json');
  writeFileSync(bootstrapPath, JSON.stringify(tf.bootstrap));
  return { broker, tf, work, stateDir: join(work, 'device'), bootstrapPath };
}

/** Stop what {@link startFleetWorld} started; the parts a failed start left undefined are skipped. */
export async function closeFleetWorld(world: Partial<FleetWorld>): Promise<void> {
  await world.tf?.close();
  await world.broker?.close();
  if (world.work !== undefined) rmSync(world.work, { recursive: true, force: true });
}

/**
 * A {@link FleetWorld} beside the test dockerd (`npm test`'s): a client of it, the test images,
 * and the scope of this test's containers, which carry `TEST_LABEL=<scope>` (set it in the
 * compose files and as the agent's `runtime.scope`).
 */
export interface EngineFleetWorld extends FleetWorld {
  docker: Docker;
  images: TestImages;
  scope: string;
  /** A session of the fleet's own account on the broker, for signed commands and watching reports. */
  fleet: FleetSession;
}

/** Start an {@link EngineFleetWorld}; `name` names the scope (`<name>-<random>`) and the work directory. */
export async function startEngineFleetWorld(name: string): Promise<EngineFleetWorld> {
  const { images } = dockerTestEnv();
  const world = await startFleetWorld(`tsunagu-${name}-`);
  return { ...world, docker: testDocker(), images, scope: `${name}-${randomBytes(3).toString('hex')}`, fleet: await fleetSession(world.tf, world.broker.url) };
}

/** Stop what {@link startEngineFleetWorld} started and remove the scope's containers; undefined parts are skipped. */
export async function closeEngineFleetWorld(world: Partial<EngineFleetWorld>): Promise<void> {
  if (world.docker !== undefined && world.scope !== undefined) await removeContainers(world.docker, `${TEST_LABEL}=${world.scope}`);
  await world.fleet?.close();
  await closeFleetWorld(world);
}

/** The running containers of `scope` (by `TEST_LABEL`), as the engine lists them. */
export async function runningIn(docker: Docker, scope: string): Promise<Docker.ContainerInfo[]> {
  return (await docker.listContainers({ filters: { label: [`${TEST_LABEL}=${scope}`] } })).filter((c) => c.State === 'running');
}
