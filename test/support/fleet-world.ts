import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { ReportedStateSchema, type ReportedState } from '../../protocol/desired.js';
import type { AgentProcess } from './agent-process.js';
import { createTestFleet, type TestFleet } from './fleet.js';
import { fleetSession } from './fleet-session.js';
import { startMosquitto, type TestBroker } from './mosquitto.js';
import { TcpProxy } from './tcp-proxy.js';
import { dockerTestEnv, removeContainers, TEST_LABEL, testDocker, type TestImages } from './test-docker.js';

export type FleetSession = Awaited<ReturnType<typeof fleetSession>>;

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

/**
 * Start a {@link FleetWorld}; `workPrefix` names the work directory in the temp dir (`tsunagu-<test>-`).
 * `enrollmentService: false`: the fleet's server is not started (a test of a device waiting for its fleet starts it).
 */
export async function startFleetWorld(workPrefix: string, options: { enrollmentService?: boolean } = {}): Promise<FleetWorld> {
  const broker = await startMosquitto();
  const tf = await createTestFleet(broker);
  if (options.enrollmentService ?? true) await tf.startServer();
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

/** A {@link FleetWorld} whose devices reach the broker through a relay the test can cut or black-hole: give them `proxy.url`. */
export interface ProxiedFleetWorld extends FleetWorld {
  proxy: TcpProxy;
}

/** Start a {@link ProxiedFleetWorld}; see {@link startFleetWorld}. */
export async function startProxiedFleetWorld(workPrefix: string): Promise<ProxiedFleetWorld> {
  const world = await startFleetWorld(workPrefix);
  return { ...world, proxy: await TcpProxy.start({ host: '127.0.0.1', port: world.broker.port }) };
}

/** Stop what {@link startProxiedFleetWorld} started; undefined parts are skipped. */
export async function closeProxiedFleetWorld(world: Partial<ProxiedFleetWorld>): Promise<void> {
  await world.proxy?.close();
  await closeFleetWorld(world);
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

/** Where {@link watchDevice} collects what a device publishes, in order of arrival; leave out what the test does not read. */
export interface DeviceReports {
  events?: Record<string, unknown>[];
  states?: ReportedState[];
}

/**
 * Wait until `agent` is enrolled and online, then open a fleet session on `brokerUrl` that
 * collects the device's events and reported states into `reports`. The watches are set before
 * this returns, so nothing the device publishes afterwards is missed.
 */
export async function watchDevice(tf: TestFleet, brokerUrl: string, agent: AgentProcess, reports: DeviceReports): Promise<{ deviceId: string; fleet: FleetSession }> {
  const deviceId = await agent.enrolledAndOnline();
  const fleet = await fleetSession(tf, brokerUrl);
  const { events, states } = reports;
  if (events !== undefined) await fleet.link.watch(deviceId, ['events'], (r) => events.push(JSON.parse(r.payload.toString()) as Record<string, unknown>));
  if (states !== undefined) await fleet.link.watch(deviceId, ['state'], (r) => states.push(ReportedStateSchema.parse(JSON.parse(r.payload.toString()))));
  return { deviceId, fleet };
}

/** A {@link FleetWorld} with one device in it: the shipped agent, enrolled and online, and a fleet session watching it. */
export interface DeviceWorld extends FleetWorld {
  agent: AgentProcess;
  deviceId: string;
  fleet: FleetSession;
}

/**
 * Start a {@link DeviceWorld}: `startAgent` starts the device's agent in the fresh world (its
 * `stateDir` and `bootstrapPath`, or paths of its own below `work`); see {@link watchDevice} for `reports`.
 */
export async function startDeviceWorld(workPrefix: string, startAgent: (world: FleetWorld) => AgentProcess, reports: DeviceReports): Promise<DeviceWorld> {
  const world = await startFleetWorld(workPrefix);
  let agent: AgentProcess | undefined;
  try {
    agent = startAgent(world);
    return { ...world, agent, ...await watchDevice(world.tf, world.broker.url, agent, reports) };
  } catch (err) {
    // before() failing skips nothing in after(), but after() only knows what before() returned.
    await closeDeviceWorld({ ...world, agent });
    throw err;
  }
}

/**
 * Stop what {@link startDeviceWorld} started; undefined parts are skipped. A test that restarted
 * the device passes its current agent: `{ ...world, agent }`. `containers`: the engine's
 * containers to remove (by label), once the agent that would start them again is stopped.
 */
export async function closeDeviceWorld(world: Partial<DeviceWorld>, containers?: { docker: Docker | undefined; label: string }): Promise<void> {
  await world.agent?.stop();
  if (containers?.docker !== undefined) await removeContainers(containers.docker, containers.label);
  await world.fleet?.close();
  await closeFleetWorld(world);
}
