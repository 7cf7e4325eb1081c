import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { ReportedStateSchema, type ReportedState } from '../../protocol/desired.js';
// @ts-expect-error: a plain ES module of the test scripts, without types
import { dockerInstance, startDockerd, stopChild } from '../../scripts/test-services.mjs';
import { fleetCli } from '../support/deploy-cli.js';
import { sleep, startFaultDevice } from '../support/fault-device.js';
import type { TestFleet } from '../support/fleet.js';
import { fleetSession } from '../support/fleet-session.js';
import type { TestBroker } from '../support/mosquitto.js';
import { dockerTestEnv, TEST_LABEL, type TestImages } from '../support/supervisor-harness.js';
import { waitFor } from '../support/wait-for.js';
import { removeContainers, testDocker } from '../support/test-docker.js';
import { closeFleetWorld, startFleetWorld } from '../support/fleet-world.js';

interface Instance { socket: string; host: string; execRoot: string }
interface Started { child: { pid: number; exitCode: number | null }; exited: Promise<unknown> }
const startEngine = startDockerd as (stateDir: string, instance: Instance) => Promise<Started | undefined>;
const stopEngine = stopChild as (started: Started | undefined, name: string) => Promise<void>;
const engineInstance = dockerInstance as (name: string) => Instance;

// Scenario 7: dockerd stopped in the middle of a deploy and started again.
// The engine is this test's own (its own socket and data root, named after
// the checkout's instance), never the one the other tests share. The shipped
// agent must report the outage clearly, then finish the deploy by itself once
// the engine is back: every service on the desired version, one container
// each, nothing left behind, within a bound worked out below.
const ENGINE_DOWN_MS = 8_000;
const PROBATION_MS = 1_500;
// The engine retry doubles from 1 s (1, 2, 4, 8, 16 s: docs/agent.md): after an outage of up to
// 31 s the next try comes at most 16 s after the engine is back. Then a stale container waits
// out the first restart back-off (2 s) before it is replaced, the new containers their
// probation, and the engine does the work (three starts, a remove, a create: 10 s on a loaded machine).
const RECOVERY_BOUND_MS = 16_000 + 2_000 + PROBATION_MS + 10_000;
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
  docker = testDocker(instance.socket);
  ({ broker, tf, work } = await startFleetWorld('tsunagu-fault-engine-work-'));
  fleet = await fleetSession(tf, broker.url);
});

after(async () => {
  if (engine !== undefined) {
    await removeContainers(docker, `${TEST_LABEL}=${scope}`);
  }
  await stopEngine(engine, 'dockerd (fault scenario 7)');
  await fleet?.close();
  await closeFleetWorld({ broker, tf, work });
  rmSync(engineDir, { recursive: true, force: true });
});

/** Every container of the agent's scope (its own ownership label, whatever else it carries), by service. */
async function containersByService(): Promise<Map<string, Docker.ContainerInfo[]>> {
  const by = new Map<string, Docker.ContainerInfo[]>();
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABELS.scope}=${scope}`] } })) {
    const service = c.Labels[LABELS.service] ?? '?';
    by.set(service, [...(by.get(service) ?? []), c]);
  }
  return by;
}

/**
 * The tasks containerd holds for the engine (its `moby` namespace), through
 * the engine's own containerd socket: a task no container of the engine
 * answers for is a process nobody supervises. Undefined without `ctr`.
 */
function containerdTasks(): string[] | undefined {
  const r = spawnSync('ctr', ['--address', join(instance.execRoot, 'containerd', 'containerd.sock'), '--namespace', 'moby', 'tasks', 'ls', '--quiet'], { encoding: 'utf8' });
  if (r.error !== undefined) return undefined;
  assert.equal(r.status, 0, `ctr tasks ls: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).sort();
}

test('dockerd stopped during a deploy and started again: failed/RUNTIME_UNAVAILABLE with every service unknown meanwhile, then the version synced by itself, one container per service, nothing left behind', async (t) => {
  const device = await startFaultDevice({
    work, name: 'device', tf, brokerUrl: broker.url,
    configYaml: `
enrollment: { startupJitterMs: 0 }
link: { keepaliveSeconds: 5, backoffBaseMs: 100, backoffCapMs: 1000 }
runtime: { socket: ${instance.socket}, scope: ${scope} }
rollout: { probationMs: ${PROBATION_MS} }
`,
  });
  const states: { at: number; state: ReportedState }[] = [];
  const events: Record<string, unknown>[] = [];
  await fleet.link.watch(device.deviceId, ['state', 'events'], (r) => {
    const body = JSON.parse(r.payload.toString()) as Record<string, unknown>;
    if (r.kind === 'events') events.push(body);
    else states.push({ at: Date.now(), state: ReportedStateSchema.parse(body) });
  });
  const last = (): ReportedState | undefined => states.at(-1)?.state;
  try {
    const file = join(work, 'compose.yaml');
    const service = { image: images.busybox1, network_mode: 'none', restart: 'always', stop_grace_period: '1s', labels: { [TEST_LABEL]: scope } };
    writeFileSync(file, stringify({ services: { web: service, api: service, worker: service } }));
    const published = await fleetCli(['deploy', '--dir', tf.fleet.dir, device.deviceId, file, '--no-wait', '--json']);
    assert.equal(published.status, 0, published.stderr);
    const version = Number((JSON.parse(published.stdout.trim().split('\n')[0]!) as { version: number }).version);

    // The first service event (api started): the other services are being created and started
    // while the engine goes down, which is what leaves a start half done in containerd.
    await device.agent.waitForMsg(/^service (web|api|worker): /, 30_000);
    const stoppedAt = Date.now();
    await stopEngine(engine, 'dockerd (fault scenario 7)');
    engine = undefined;
    await waitFor('the fleet to see RUNTIME_UNAVAILABLE', () => last()?.status === 'failed' && last()?.error?.code === 'RUNTIME_UNAVAILABLE', 20_000);
    const reportedMs = Date.now() - stoppedAt;
    const firstUnavailable = states.length - 1;

    await sleep(ENGINE_DOWN_MS - (Date.now() - stoppedAt));
    const restartingAt = Date.now();
    engine = await startEngine(engineDir, instance);
    const upAt = Date.now();
    // What the fleet saw while the engine was away: the version being deployed, failed for want of
    // the engine (named by its socket), and nothing claimed of the services.
    for (const { state } of states.slice(firstUnavailable).filter((x) => x.at < restartingAt)) {
      assert.equal(state.status, 'failed');
      assert.equal(state.desiredVersion, version, 'the failure names the version being deployed');
      assert.equal(state.error?.code, 'RUNTIME_UNAVAILABLE');
      assert.ok(state.error.message.includes(instance.socket), `the error names the engine: ${state.error.message}`);
      assert.deepEqual(state.services.map((x) => `${x.name}:${x.state}`).sort(), ['api:unknown', 'web:unknown', 'worker:unknown']);
    }

    await waitFor('the fleet to see the version synced', () => last()?.status === 'synced' && last()?.appliedVersion === version, RECOVERY_BOUND_MS).catch((err: Error) => {
      const tail = device.agent.lines.slice(-12).map((l) => JSON.stringify(l).slice(0, 300)).join('\n');
      throw new Error(`${err.message}; last state ${JSON.stringify(last()).slice(0, 600)}\nagent:\n${tail}`);
    });
    const recoveryMs = Date.now() - upAt;

    // What an operator checks: every service on the desired version and running, nothing counted as a crash,
    // no error left; in the engine exactly one container per service and no other in the agent's scope.
    const final = last()!;
    assert.equal(final.error, null);
    for (const s of final.services) {
      assert.deepEqual({ state: s.state, image: s.image, outdated: s.outdated, restartCount: s.restartCount, lastError: s.lastError },
        { state: 'running', image: images.busybox1, outdated: false, restartCount: 0, lastError: null }, `${s.name}: an engine outage is not a crash`);
    }
    const by = await containersByService();
    assert.deepEqual([...by.keys()].sort(), ['api', 'web', 'worker'], 'no container of another service in the scope');
    for (const [name, list] of by) {
      assert.equal(list.length, 1, `exactly one container of ${name}: ${list.map((c) => c.State).join(', ')}`);
      assert.equal(list[0]!.State, 'running', `${name} runs`);
      assert.equal(list[0]!.Labels[LABELS.version], String(version), `${name} was created by the version deployed`);
    }
    // No orphan below the engine either: containerd runs a task for each running container and for nothing else.
    const tasks = containerdTasks();
    if (tasks === undefined) t.diagnostic('ctr not installed: containerd tasks not checked');
    else assert.deepEqual(tasks, [...by.values()].map((list) => list[0]!.Id).sort(), 'containerd holds no task the engine does not answer for');

    // No probation was failed, and every stale container that was replaced said so.
    assert.deepEqual(events.filter((e) => e.type === 'service-probation-failed'), []);
    assert.ok(!states.some(({ state }) => state.error?.code === 'PROBATION_FAILED'), 'never PROBATION_FAILED');
    const recreated = events.filter((e) => e.type === 'service-recreated');
    const running = new Set([...by.values()].map((list) => list[0]!.Id));
    for (const e of recreated) {
      assert.ok(!running.has(String(e.containerId)), `${String(e.service)}: the replaced container is gone`);
      assert.match(String(e.reason), /already exists|with id exists|already in use/);
    }
    // The step names the container (`start web (<id>)`): each one refused was replaced once.
    const refused = new Set(device.agent.lines.filter((l) => l.msg === 'start failed on stale runtime state; the container will be replaced').map((l) => String(l.step)));
    assert.equal(recreated.length, refused.size, 'each container whose start failed on stale runtime state was replaced, once');
    console.log(`# engine stopped during the deploy: RUNTIME_UNAVAILABLE at the fleet after ${reportedMs} ms; down ${upAt - stoppedAt} ms; ` +
      `synced ${recoveryMs} ms after the engine was back (bound ${RECOVERY_BOUND_MS} ms); ${refused.size} container(s) refused to start on stale runtime state, ` +
      `${recreated.length} recreated (${recreated.map((e) => String(e.service)).join(', ') || 'none'})`);
  } finally {
    await device.agent.stop();
  }
});
