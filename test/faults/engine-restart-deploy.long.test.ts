import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { stringify } from 'yaml';
import { ReportedStateSchema, type ReportedState } from '../../protocol/desired.js';
// @ts-expect-error: a plain ES module of the test scripts, without types
import { dockerInstance, startDockerd, stopChild } from '../../scripts/test-services.mjs';
import { fleetCli } from '../support/deploy-cli.js';
import { sleep, startFaultDevice, until } from '../support/fault-device.js';
import { createTestFleet, type TestFleet } from '../support/fleet.js';
import { fleetSession } from '../support/fleet-session.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { dockerTestEnv, TEST_LABEL, type TestImages } from '../support/supervisor-harness.js';

interface Instance { socket: string; host: string }
interface Started { child: { pid: number; exitCode: number | null }; exited: Promise<unknown> }
const startEngine = startDockerd as (stateDir: string, instance: Instance) => Promise<Started | undefined>;
const stopEngine = stopChild as (started: Started | undefined, name: string) => Promise<void>;
const engineInstance = dockerInstance as (name: string) => Instance;

// Scenario 7: dockerd stopped in the middle of a deploy and started again.
// The engine is this test's own (its own socket and data root, named after
// the checkout's instance), never the one the other tests share. The shipped
// agent must report the outage with a clear error, then finish the deploy
// once the engine is back: exactly one container per service, the version
// synced, within the engine retry's back-off ceiling (30 s, docs/agent.md).
const ENGINE_DOWN_MS = 8_000;
const RECOVERY_BOUND_MS = 30_000 + 10_000;
const scope = `fault-engine-${randomBytes(3).toString('hex')}`;
const instance = engineInstance(`${process.env.TSUNAGU_TEST_DOCKER_INSTANCE ?? 'main'}-f7`.slice(-20).replace(/^-+/, ''));

let broker: TestBroker;
let tf: TestFleet;
let work: string;
let engineDir: string;
let engine: Started | undefined;
let docker: Docker;
let images: TestImages;
let fleet: Awaited<ReturnType<typeof fleetSession>>;

before(async () => {
  images = dockerTestEnv().images;
  engineDir = mkdtempSync(join(tmpdir(), 'tsunagu-fault-engine-'));
  engine = await startEngine(engineDir, instance);
  assert.ok(engine, `another dockerd already answers on ${instance.socket}; stop it first`);
  docker = new Docker({ socketPath: instance.socket });
  broker = await startMosquitto();
  tf = await createTestFleet(broker);
  await tf.startServer();
  work = mkdtempSync(join(tmpdir(), 'tsunagu-fault-engine-work-'));
  fleet = await fleetSession(tf, broker.url);
});

after(async () => {
  if (engine !== undefined) {
    for (const c of await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${scope}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
  }
  await stopEngine(engine, 'dockerd (fault scenario 7)');
  await fleet?.close();
  await tf?.close();
  await broker?.close();
  rmSync(work, { recursive: true, force: true });
  rmSync(engineDir, { recursive: true, force: true });
});

async function containersByService(): Promise<Map<string, Docker.ContainerInfo[]>> {
  const by = new Map<string, Docker.ContainerInfo[]>();
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${scope}`] } })) {
    const service = c.Labels['io.tsunagu.service'] ?? '?';
    by.set(service, [...(by.get(service) ?? []), c]);
  }
  return by;
}

test('dockerd stopped during a deploy and started again: a clear RUNTIME_UNAVAILABLE meanwhile, then the deploy completes, one container per service', async () => {
  const device = await startFaultDevice({
    work, name: 'device', tf, brokerUrl: broker.url,
    configYaml: `
enrollment: { startupJitterMs: 0 }
link: { keepaliveSeconds: 5, backoffBaseMs: 100, backoffCapMs: 1000 }
runtime: { socket: ${instance.socket}, scope: ${scope} }
rollout: { probationMs: 1500 }
`,
  });
  const states: ReportedState[] = [];
  await fleet.link.watch(device.deviceId, ['state'], (r) => { states.push(ReportedStateSchema.parse(JSON.parse(r.payload.toString()))); });
  try {
    const file = join(work, 'compose.yaml');
    const service = { image: images.busybox1, network_mode: 'none', restart: 'always', stop_grace_period: '1s', labels: { [TEST_LABEL]: scope } };
    writeFileSync(file, stringify({ services: { web: service, api: service, worker: service } }));
    const published = await fleetCli(['deploy', '--dir', tf.fleet.dir, device.deviceId, file, '--no-wait', '--json']);
    assert.equal(published.status, 0, published.stderr);
    const version = Number((JSON.parse(published.stdout.trim().split('\n')[0]!) as { version: number }).version);

    await device.agent.waitForMsg(/^service (web|api|worker): /, 30_000);
    const stoppedAt = Date.now();
    await stopEngine(engine, 'dockerd (fault scenario 7)');
    engine = undefined;
    await until('the fleet to see RUNTIME_UNAVAILABLE', () => states.at(-1)?.status === 'failed' && states.at(-1)?.error?.code === 'RUNTIME_UNAVAILABLE', 20_000);
    const reportedMs = Date.now() - stoppedAt;
    assert.equal(states.at(-1)!.desiredVersion, version, 'the failure names the version being deployed');

    await sleep(ENGINE_DOWN_MS - (Date.now() - stoppedAt));
    engine = await startEngine(engineDir, instance);
    const upAt = Date.now();
    await until('the fleet to see the version synced', () => states.at(-1)?.status === 'synced' && states.at(-1)?.appliedVersion === version, RECOVERY_BOUND_MS).catch((err: Error) => {
      const tail = device.agent.lines.slice(-12).map((l) => JSON.stringify(l).slice(0, 300)).join('\n');
      throw new Error(`${err.message}; last state ${JSON.stringify(states.at(-1)).slice(0, 600)}\nagent:\n${tail}`);
    });
    const recoveryMs = Date.now() - upAt;
    console.log(`# engine stopped during the deploy: RUNTIME_UNAVAILABLE at the fleet after ${reportedMs} ms; synced ${recoveryMs} ms after the engine was back (down ${upAt - stoppedAt} ms)`);

    const by = await containersByService();
    assert.deepEqual([...by.keys()].sort(), ['api', 'web', 'worker']);
    for (const [name, list] of by) {
      assert.equal(list.length, 1, `exactly one container of ${name}: ${list.map((c) => c.State).join(', ')}`);
      assert.equal(list[0]!.State, 'running', `${name} runs`);
    }
    for (const s of states.at(-1)!.services) assert.equal(s.restartCount, 0, `${s.name}: an engine outage is not a crash`);
  } finally {
    await device.agent.stop();
  }
});
