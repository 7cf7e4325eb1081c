import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type Docker from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { fromBase64, toBase64 } from '../../protocol/bytes.js';
import { DESIRED_TYPE } from '../../protocol/commands.js';
import { type DesiredData, type ReportedState } from '../../protocol/desired.js';
import { readDeviceEvent } from '../../protocol/events/device-events.js';
import { seal } from '../../protocol/seal.js';
import { deviceTopic } from '../../protocol/topics.js';
import { AgentProcess, TRUSTED_QUIET_CONFIG } from '../support/agent-process.js';
import type { TestFleet } from '../support/fleet.js';
import { REPORT_NOW_REPLY_MS } from '../support/fleet-session.js';
import type { TestBroker } from '../support/mosquitto.js';
import { startRegistryFront } from '../support/registry-front.js';
import { dockerTestEnv, TEST_LABEL, type TestImages } from '../support/supervisor-harness.js';
import { inspectListed } from '../support/inspect-listed.js';
import { waitFor } from '../support/wait-for.js';
import { testDocker } from '../support/test-docker.js';
import { closeDeviceWorld, startDeviceWorld, type DeviceWorld, type FleetSession, type FleetWorld } from '../support/fleet-world.js';

// Desired state end to end: the shipped agent bundle, a real Mosquitto, the
// test dockerd and the local registry. The fleet publishes signed desired
// states, retained, exactly as `tsunagu-fleet deploy` does; the test reads
// the device's retained `state`, its `events`, and the engine itself.
let world: DeviceWorld;
let broker: TestBroker;
let tf: TestFleet;
let agent: AgentProcess;
let stateDir: string;
let deviceId: string;
let fleet: FleetSession;
let docker: Docker;
let images: TestImages;
const scope = `e2e-${randomBytes(3).toString('hex')}`;
const states: ReportedState[] = [];
const events: Record<string, unknown>[] = [];
const retainedDesired: Buffer[] = [];
const reports: { kind: string; body: Record<string, unknown> }[] = [];
const TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

const CONFIG = `${TRUSTED_QUIET_CONFIG}runtime: { scope: ${scope} }
rollout: { probationMs: 1500 }
policy: { devices: ['/dev/ttyUSB*'] }
`;

function startAgent(w: FleetWorld = world): AgentProcess {
  return new AgentProcess({ stateDir: w.stateDir, bootstrapPath: w.bootstrapPath, configYaml: CONFIG });
}

function compose(services: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return {
    services: Object.fromEntries(Object.entries(services).map(([k, v]) => [k, { network_mode: 'none', restart: 'always', ...v, labels: { [TEST_LABEL]: scope } }])),
  };
}

async function publishDesired(data: DesiredData, traceparent = TP): Promise<void> {
  await fleet.link.publishSigned(deviceId, DESIRED_TYPE, data, { lifetimeMs: 365 * 86_400_000, retain: true, traceparent });
}

/** What a timeout error shows: the last reported state. */
const lastState = { detail: () => states.at(-1) };

const waitState = (what: string, match: (s: ReportedState) => boolean, timeoutMs = 20_000): Promise<ReportedState> =>
  waitFor(what, () => { const s = states.at(-1); return s !== undefined && match(s) ? s : undefined; }, timeoutMs, lastState);

/**
 * Have the agent apply its persisted desired state again and return once it has: the reply to
 * `reread-desired` comes after the supervisor's passes for it are done (`Supervisor.apply`), and
 * after everything the desired channel received before it. A change the agent were to make to
 * the containers is made by then; a test that checks that nothing changed checks after this.
 */
async function reconciledAgain(version: number): Promise<void> {
  const reread = await fleet.link.send(deviceId, { name: 'reread-desired', args: {} }, { timeoutMs: 20_000 });
  assert.equal(reread.data.ok, true, JSON.stringify(reread.data));
  assert.equal(reread.data.ok && (reread.data.result as { reapplied: number | null }).reapplied, version, JSON.stringify(reread.data));
}

async function containers(service?: string): Promise<ContainerInspectInfo[]> {
  const label = [`${LABELS.scope}=${scope}`, ...(service === undefined ? [] : [`${LABELS.service}=${service}`])];
  return inspectListed(docker, label);
}

async function only(service: string): Promise<ContainerInspectInfo> {
  const found = await containers(service);
  assert.equal(found.length, 1, `one container of ${service}`);
  return found[0] as ContainerInspectInfo;
}

before(async () => {
  const env = dockerTestEnv();
  images = env.images;
  docker = testDocker();
  // The registry tags are pulled for real by the agent.
  for (const ref of [images.busybox1, images.busybox2]) await docker.getImage(ref).remove({ noprune: true }).catch(() => undefined);
  world = await startDeviceWorld('tsunagu-desired-', startAgent, { events, states });
  ({ broker, tf, agent, stateDir, deviceId, fleet } = world);
  await fleet.link.watch(deviceId, ['inventory', 'metrics'], (r) => reports.push({ kind: r.kind, body: JSON.parse(r.payload.toString()) as Record<string, unknown> }));
  await fleet.client.subscribeAsync(deviceTopic(deviceId, 'desired'), { qos: 1 });
  fleet.client.on('message', (topic, payload) => {
    if (topic === deviceTopic(deviceId, 'desired')) retainedDesired.push(payload);
  });
});

after(async () => {
  await closeDeviceWorld({ ...world, agent }, { docker, label: `${LABELS.scope}=${scope}` });
});

test('deploy from the registry: running, reported synced with the version applied, events carry the traceparent', async () => {
  await publishDesired({ version: 1, compose: compose({ web: { image: images.busybox1 } }) });
  const state = await waitState('v1 synced', (s) => s.appliedVersion === 1 && s.status === 'synced');
  assert.equal(state.desiredVersion, 1);
  assert.deepEqual(state.services.map((s) => [s.name, s.state, s.image]), [['web', 'running', images.busybox1]]);
  const web = await only('web');
  assert.equal(web.State.Running, true);
  assert.equal(web.Config.Labels[LABELS.version], '1');
  // (Not the pull event: other test runs on a shared engine may have pulled the image already.)
  const started = await waitFor('started event', () => events.find((e) => e.type === 'service-started'), 20_000, lastState);
  assert.equal(started.traceparent, TP);
  assert.equal((await waitFor('accepted event', () => events.find((e) => e.type === 'desired-accepted'), 20_000, lastState)).traceparent, TP);
  const logged = await agent.waitForMsg('applying desired state');
  assert.equal(logged.traceparent, TP);
  // The inventory names the engine; metrics carry the service's usage from its cgroup.
  const sent = reports.length;
  const now = await fleet.link.send(deviceId, { name: 'report-now', args: {} }, { timeoutMs: REPORT_NOW_REPLY_MS });
  assert.equal(now.data.ok, true);
  const inventory = await waitFor('inventory', () => reports.slice(sent).find((r) => r.kind === 'inventory'), 20_000, lastState);
  assert.match(String(inventory.body.containerRuntime), /^docker \d+\./);
  const metrics = await waitFor('metrics', () => reports.slice(sent).find((r) => r.kind === 'metrics'), 20_000, lastState);
  const usage = (metrics.body.services as { name: string; cpu: number; memoryBytes: number }[] | undefined)?.find((u) => u.name === 'web');
  assert.ok(usage !== undefined && usage.memoryBytes > 0, JSON.stringify(metrics.body.services));
});

test('an update to a new image replaces the container; a lower version is refused and the running one kept', async () => {
  await publishDesired({ version: 2, compose: compose({ web: { image: images.busybox2 } }) });
  await waitState('v2 synced', (s) => s.appliedVersion === 2 && s.status === 'synced' && s.services[0]?.image === images.busybox2);
  const web2 = await only('web');
  assert.equal(web2.Config.Image, images.busybox2);

  await publishDesired({ version: 1, compose: compose({ web: { image: images.busybox1 } }) });
  const refused = await waitFor('OLD_VERSION event', () => events.find((e) => e.type === 'desired-refused' && e.code === 'OLD_VERSION'), 20_000, lastState);
  assert.equal(refused.version, 1);
  await reconciledAgain(2);
  const after = await only('web');
  assert.equal(after.Id, web2.Id);
  assert.equal(after.Config.Image, images.busybox2);
  assert.equal(states.at(-1)?.appliedVersion, 2);
});

test('a refused compose field is reported with its path and nothing changes', async () => {
  const before = await only('web');
  await publishDesired({ version: 3, compose: compose({ web: { image: images.busybox1, build: '.' } }) });
  const state = await waitState('v3 refused', (s) => s.status === 'refused' && s.desiredVersion === 3);
  assert.equal(state.appliedVersion, 2);
  assert.match(state.error?.message ?? '', /services\.web\.build/);
  assert.ok(state.error?.services?.web !== undefined, JSON.stringify(state.error));
  const event = events.find((e) => e.type === 'desired-refused' && e.version === 3);
  assert.equal(event?.field, 'services.web.build');
  const after = await only('web');
  assert.equal(after.Id, before.Id);
  assert.equal(after.State.StartedAt, before.State.StartedAt);
});

test('admission: a desired state that does not fit is refused as a whole, with a reason per service, and what runs is kept', async () => {
  const before = await only('web');
  const cases: { version: number; services: Record<string, Record<string, unknown>>; code: string; reasons: Record<string, RegExp> }[] = [
    {
      version: 4, code: 'MISSING_LABEL',
      services: { web: { image: images.busybox2 }, accel: { image: images.busybox2, 'x-tsunagu': { requires: ['gpu'] } } },
      reasons: { accel: /x-tsunagu\.requires gpu: this device lacks that label/ },
    },
    {
      // Each limit alone fits in this machine; together they are far beyond it.
      version: 5, code: 'ADMISSION_REFUSED',
      services: { web: { image: images.busybox2, mem_limit: '4096g' }, db: { image: images.busybox2, mem_limit: '2048g' } },
      reasons: { web: /memory limit 4194304 MiB: the services' limits add up to 6291456 MiB, more than the \d+ MiB this device has/, db: /memory limit 2097152 MiB/ },
    },
    {
      version: 6, code: 'ADMISSION_REFUSED',
      services: { web: { image: images.busybox2, devices: ['/dev/ttyUSB-tsunagu-absent:/dev/ttyUSB0'] } },
      reasons: { web: /devices: \/dev\/ttyUSB-tsunagu-absent is not present on this device/ },
    },
  ];
  for (const c of cases) {
    await publishDesired({ version: c.version, compose: compose(c.services) });
    const state = await waitState(`v${c.version} refused`, (st) => st.status === 'refused' && st.desiredVersion === c.version);
    assert.equal(state.error?.code, c.code);
    for (const [service, reason] of Object.entries(c.reasons)) assert.match(state.error?.services?.[service] ?? '', reason, JSON.stringify(state.error));
    assert.ok(events.some((e) => e.type === 'desired-refused' && e.version === c.version && e.code === c.code), "events.some((e) => e.type === 'desired-refused' && e.version === c.version && e.code === c.code)");
  }
  // Nothing of the refused versions reached the engine.
  const after = await only('web');
  assert.equal(after.Id, before.Id);
  assert.equal(after.State.StartedAt, before.State.StartedAt);
  assert.equal((await containers('accel')).length + (await containers('db')).length, 0);
});

test('a sealed secret reaches the container environment, never the logs nor the broker', async () => {
  const secret = `s3cret-${randomBytes(8).toString('hex')}`;
  const registryPassword = `regpw-${randomBytes(8).toString('hex')}`;
  // A private registry (a front on loopback demanding Basic credentials), reached with sealed credentials.
  const front = await startRegistryFront(process.env.TSUNAGU_TEST_REGISTRY ?? '', { basicAuth: { username: 'device', password: registryPassword } });
  const privateRef = images.busybox1.replace(/^[^/]+/, front.host);
  const boxPublicKey = fromBase64(tf.server?.database.byId(deviceId)?.boxPublicKey ?? '', 'box key', 32);
  try {
    await publishDesired({
      version: 7,
      compose: compose({ web: { image: images.busybox2, environment: { MODE: 'plain' } }, private: { image: privateRef } }),
      sealed: {
        environment: { web: { API_TOKEN: toBase64(seal(Buffer.from(secret), boxPublicKey)) } },
        registries: toBase64(seal(Buffer.from(JSON.stringify({ [front.host]: { username: 'device', password: registryPassword } })), boxPublicKey)),
      },
    });
    await waitState('v7 synced', (s) => s.appliedVersion === 7 && s.status === 'synced');
    assert.ok(front.authorized > 0, 'the private registry saw the sealed credentials');
    assert.equal((await only('private')).State.Running, true);
  } finally {
    await front.close();
    await docker.getImage(privateRef).remove({ noprune: true, force: true }).catch(() => undefined);
  }
  const web = await only('web');
  assert.ok(web.Config.Env.includes(`API_TOKEN=${secret}`), 'web.Config.Env.includes(`API_TOKEN=${secret}`)');
  assert.ok(web.Config.Env.includes('MODE=plain'), "web.Config.Env.includes('MODE=plain')");
  await waitFor('retained desired seen', () => retainedDesired.length > 0, 20_000, lastState);
  for (const bytes of retainedDesired) assert.ok(!bytes.toString().includes(secret) && !Buffer.from(bytes.toString(), 'utf8').toString('base64').includes(secret), "!bytes.toString().includes(secret) && !Buffer.from(bytes.toString(), 'utf8').toString('base64').i...");
  const body = Buffer.from((JSON.parse(retainedDesired.at(-1)?.toString() ?? '{}') as { body: string }).body, 'base64').toString();
  assert.ok(!body.includes(secret), 'the signed payload carries it sealed only');
  assert.ok(!readFileSync(join(stateDir, 'desired.msg')).toString().includes(secret), "!readFileSync(join(stateDir, 'desired.msg')).toString().includes(secret)");
  for (const value of [secret, registryPassword]) {
    assert.ok(!agent.lines.some((l) => JSON.stringify(l).includes(value)), 'no log line carries a secret');
    assert.ok(!events.some((e) => JSON.stringify(e).includes(value)), '!events.some((e) => JSON.stringify(e).includes(value))');
    assert.ok(!states.some((e) => JSON.stringify(e).includes(value)), '!states.some((e) => JSON.stringify(e).includes(value))');
    assert.ok(!readFileSync(join(stateDir, 'desired.msg')).toString().includes(value), "!readFileSync(join(stateDir, 'desired.msg')).toString().includes(value)");
  }
});

test('service commands: stop sticks across a reconcile, start, restart, logs', async () => {
  const stop = await fleet.link.send(deviceId, { name: 'stop', args: { service: 'web' } }, { timeoutMs: 20_000 });
  assert.equal(stop.data.ok, true, JSON.stringify(stop.data));
  assert.equal((await only('web')).State.Running, false);
  await waitState('web stopped', (s) => s.services.find((x) => x.name === 'web')?.state === 'stopped');
  // Re-applying the desired state runs a full reconcile; the operator's stop holds.
  await reconciledAgain(7);
  assert.equal((await only('web')).State.Running, false, 'a stopped service stays down');
  // ... and across an agent restart: the hold is persisted with its version.
  assert.deepEqual(JSON.parse(readFileSync(join(stateDir, 'service-holds.json'), 'utf8')), { v: 1, version: 7, services: ['web'] });
  await agent.stop();
  agent = startAgent();
  await agent.waitForLog((l) => l.msg === 'applying desired state' && l.source === 'disk');
  await agent.waitForMsg(/→ online/);
  // Queued behind the boot's apply: both passes are done when it answers.
  await reconciledAgain(7);
  assert.equal((await only('web')).State.Running, false, 'still down after the agent restarted');

  const start = await fleet.link.send(deviceId, { name: 'start', args: { service: 'web' } }, { timeoutMs: 20_000 });
  assert.equal(start.data.ok, true, JSON.stringify(start.data));
  const started = await only('web');
  assert.equal(started.State.Running, true);

  const restart = await fleet.link.send(deviceId, { name: 'restart', args: { service: 'web' } }, { timeoutMs: 30_000 });
  assert.equal(restart.data.ok, true, JSON.stringify(restart.data));
  const restarted = await only('web');
  assert.equal(restarted.Id, started.Id);
  assert.equal(restarted.State.Running, true);
  assert.notEqual(restarted.State.StartedAt, started.State.StartedAt);
  await waitState('synced after restart', (s) => s.status === 'synced' && s.services.find((x) => x.name === 'web')?.restartCount === 0);

  const logs = await fleet.link.send(deviceId, { name: 'logs', args: { service: 'web', lines: 5 } }, { timeoutMs: 8000 });
  assert.equal(logs.data.ok, true, JSON.stringify(logs.data));
  assert.match(String((logs.data.ok && (logs.data.result as { text: string }).text) || ''), /^2$/m);
  const unknown = await fleet.link.send(deviceId, { name: 'stop', args: { service: 'nope' } }, { timeoutMs: 8000 });
  assert.equal(!unknown.data.ok && unknown.data.code, 'UNKNOWN_SERVICE');
});

test('an agent restart and the same retained version delivered again leave the containers alone', async () => {
  const before = await only('web');
  await agent.stop();
  agent = startAgent();
  await agent.waitForLog((l) => l.msg === 'applying desired state' && l.source === 'disk' && l.desiredVersion === 7);
  await agent.waitForMsg(/→ online/);
  // The persistent session does not resend retained messages; a resubscription does.
  await reconciledAgain(7);
  await agent.waitForMsg('desired state redelivered with the version held; ignored');
  const after = await only('web');
  assert.equal(after.Id, before.Id);
  assert.equal(after.State.StartedAt, before.State.StartedAt);
});

test('offline reboot: no broker, agent killed, container removed by hand — the agent restores it from its persisted state', async () => {
  await broker.stop();
  await agent.stop('SIGKILL');
  const old = await only('web');
  await docker.getContainer(old.Id).remove({ force: true });
  agent = startAgent();
  await agent.waitForLog((l) => l.msg === 'applying desired state' && l.source === 'disk');
  const web = await waitFor('web restored', async () => {
    const found = await containers('web');
    return found.length === 1 && found[0]?.State.Running === true ? found[0] : undefined;
  }, 20_000, lastState);
  assert.notEqual(web.Id, old.Id);
  assert.ok(web.Config.Env.some((e) => e.startsWith('API_TOKEN=')), 'the sealed secret was opened again from disk');
  await broker.start();
});

test('every event the agent sent during these tests is one the protocol knows, with the members of its type', () => {
  assert.ok(events.length > 0, 'events.length > 0');
  for (const e of events) assert.equal(readDeviceEvent(e)?.known, true, `not a known event: ${JSON.stringify(e)}`);
});
