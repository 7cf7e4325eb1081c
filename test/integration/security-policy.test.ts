import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type Docker from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { DESIRED_TYPE } from '../../protocol/commands.js';
import type { ReportedState } from '../../protocol/desired.js';
import { AgentProcess, TRUSTED_QUIET_CONFIG } from '../support/agent-process.js';
import { dockerTestEnv, TEST_LABEL, type TestImages } from '../support/supervisor-harness.js';
import { inspectListed } from '../support/inspect-listed.js';
import { waitFor } from '../support/wait-for.js';
import { testDocker, testDockerSocket } from '../support/test-docker.js';
import { closeDeviceWorld, startDeviceWorld, type DeviceWorld, type FleetSession } from '../support/fleet-world.js';

// The device's own security policy end to end: the shipped agent bundle, a
// real Mosquitto, the test dockerd. The fleet publishes signed desired states
// exactly as `tsunagu-fleet deploy` does (the CLI cannot know a device's
// policy, so it lets these documents through); the device refuses what its
// config does not allow, and the test reads the retained `state`, the
// `events` and the engine itself.
let world: DeviceWorld;
let work: string;
let agent: AgentProcess;
let stateDir: string;
let bootstrapPath: string;
let deviceId: string;
let fleet: FleetSession;
let docker: Docker;
let images: TestImages;
/** The socket of the engine the agent drives (the test dockerd). */
let engineSocket: string;
let version = 0;
const scope = `policy-${randomBytes(3).toString('hex')}`;
const states: ReportedState[] = [];
const events: Record<string, unknown>[] = [];

function config(policy = ''): string {
  return `${TRUSTED_QUIET_CONFIG}runtime: { scope: ${scope} }
rollout: { probationMs: 1500 }
${policy}`;
}

/** What the second half of the tests allows: data dirs, a read-only dir, /run read-only (the socket stays out), one device, one capability. */
function widerPolicy(): string {
  return `policy:
  capabilities: [NET_ADMIN]
  binds:
    - ${work}/data/**
    - { path: ${work}/ro, readOnly: true }
    - { path: /run/**, readOnly: true }
  devices: [/dev/zero]
`;
}

async function startAgent(configYaml: string): Promise<void> {
  agent = new AgentProcess({ stateDir, bootstrapPath, configYaml });
  await agent.waitForMsg(/→ online/, 30_000);
}

function compose(services: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return {
    services: Object.fromEntries(Object.entries(services).map(([k, v]) => [k, { image: images.busybox1, network_mode: 'none', restart: 'always', ...v, labels: { [TEST_LABEL]: scope } }])),
  };
}

async function publish(doc: Record<string, unknown>): Promise<number> {
  version += 1;
  await fleet.link.publishSigned(deviceId, DESIRED_TYPE, { version, compose: doc }, { lifetimeMs: 365 * 86_400_000, retain: true });
  return version;
}

/** What a timeout error shows: the last reported state. */
const lastState = { detail: () => states.at(-1) };

const waitState = (what: string, match: (s: ReportedState) => boolean): Promise<ReportedState> =>
  waitFor(what, () => { const s = states.at(-1); return s !== undefined && match(s) ? s : undefined; }, 30_000, lastState);

async function containers(service: string): Promise<ContainerInspectInfo[]> {
  return inspectListed(docker, [`${LABELS.scope}=${scope}`, `${LABELS.service}=${service}`]);
}

async function only(service: string): Promise<ContainerInspectInfo> {
  const found = await containers(service);
  assert.equal(found.length, 1, `one container of ${service}`);
  return found[0] as ContainerInspectInfo;
}

/**
 * Deploy `web` unchanged beside a service `name` asking for `settings`: the
 * whole version must be refused with POLICY_REFUSED, the reason naming
 * `name` and the setting, nothing of it created, `web` untouched.
 */
async function assertRefused(settings: Record<string, unknown>, reason: string | RegExp, applied: number, name = 'extra'): Promise<void> {
  const web = await only('web');
  const v = await publish(compose({ web: {}, [name]: settings }));
  const state = await waitState(`version ${v} refused`, (s) => s.status === 'refused' && s.desiredVersion === v);
  assert.equal(state.error?.code, 'POLICY_REFUSED', JSON.stringify(state.error));
  assert.deepEqual(Object.keys(state.error?.services ?? {}), [name], 'only the service asking for more is named');
  const given = state.error?.services?.[name] ?? '';
  if (typeof reason === 'string') assert.equal(given, reason);
  else assert.match(given, reason);
  assert.match(state.error?.message ?? '', new RegExp(`^refused: ${name}: `));
  assert.equal(state.appliedVersion, applied, 'the version that runs is still the one reported applied');
  const event = await waitFor(`desired-refused event of ${v}`, () => events.find((e) => e.type === 'desired-refused' && e.version === v), 30_000, lastState);
  assert.equal(event.code, 'POLICY_REFUSED');
  assert.deepEqual(event.services, state.error?.services);
  assert.equal((await containers(name)).length, 0, 'nothing of the refused version reaches the engine');
  const after = await only('web');
  assert.equal(after.Id, web.Id);
  assert.equal(after.State.StartedAt, web.State.StartedAt);
  assert.equal(after.State.Running, true);
}

before(async () => {
  const env = dockerTestEnv();
  images = env.images;
  engineSocket = testDockerSocket();
  docker = testDocker(engineSocket);
  world = await startDeviceWorld('tsunagu-policy-', (w) => {
    ({ work, bootstrapPath } = w);
    // The agent's state (and its config file, written beside it) inside a directory the wider policy allows.
    stateDir = join(work, 'data', 'device');
    mkdirSync(join(work, 'data', 'sub'), { recursive: true });
    mkdirSync(join(work, 'ro'));
    symlinkSync('/', join(work, 'data', 'escape'));
    symlinkSync('/etc', join(work, 'data', 'etc-link'));
    return new AgentProcess({ stateDir, bootstrapPath, configYaml: config() });
  }, { events, states });
  ({ agent, deviceId, fleet } = world);
});

after(async () => {
  await closeDeviceWorld({ ...world, agent }, { docker, label: `${LABELS.scope}=${scope}` });
});

test('the default policy runs an ordinary service', async () => {
  const v = await publish(compose({ web: {} }));
  await waitState('web synced', (s) => s.appliedVersion === v && s.status === 'synced');
  assert.equal((await only('web')).State.Running, true);
  const logged = await agent.waitForMsg('device security policy');
  assert.deepEqual(logged.policy, { allowPrivileged: false, allowHostNetwork: false, allowHostPid: false, capabilities: [], binds: [], devices: [] });
});

test('the default policy refuses, each on its own: privileged, host PID, an added capability, the engine socket, / bound, a device, host network', async () => {
  const applied = states.at(-1)?.appliedVersion ?? 0;
  const cases: [Record<string, unknown>, string | RegExp][] = [
    [{ privileged: true }, "privileged: not allowed by this device's policy (policy.allowPrivileged)"],
    [{ pid: 'host' }, "pid host: not allowed by this device's policy (policy.allowHostPid)"],
    [{ cap_add: ['NET_ADMIN'] }, 'cap_add NET_ADMIN: not in policy.capabilities'],
    [{ volumes: [`${engineSocket}:/var/run/docker.sock`] }, `volumes[0] bind ${engineSocket}: the container engine's socket is never allowed`],
    [{ volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }, /^volumes\[0\] bind \/var\/run\/docker\.sock( \(→ \/run\/docker\.sock\))?: the container engine's socket is never allowed$/],
    [{ volumes: ['/:/host:ro'] }, /^volumes\[0\] bind \/: contains the container engine's socket \(.+\), never allowed$/],
    [{ devices: ['/dev/zero'] }, 'devices /dev/zero: not in policy.devices'],
    [{ network_mode: 'host' }, "network_mode host: not allowed by this device's policy (policy.allowHostNetwork)"],
  ];
  for (const [extra, reason] of cases) await assertRefused(extra, reason, applied);
});

test('every reason of every service is reported at once', async () => {
  const v = await publish(compose({ web: {}, a: { privileged: true, devices: ['/dev/full'] }, b: { cap_add: ['SYS_ADMIN'], volumes: [`${work}/data/sub:/data`] } }));
  const state = await waitState(`version ${v} refused`, (s) => s.status === 'refused' && s.desiredVersion === v);
  assert.deepEqual(state.error?.services, {
    a: "privileged: not allowed by this device's policy (policy.allowPrivileged); devices /dev/full: not in policy.devices",
    b: `cap_add SYS_ADMIN: not in policy.capabilities; volumes[0] bind ${work}/data/sub: not in policy.binds`,
  });
});

test('a wider policy in the config file admits the allowlisted bind, device and capability; the engine gets them', async () => {
  await agent.stop();
  await startAgent(config(widerPolicy()));
  const v = await publish(compose({
    web: {},
    extra: { volumes: [`${work}/data/sub:/data`, `${work}/ro:/ro:ro`], devices: ['/dev/zero:/dev/zero-in'], cap_add: ['CAP_NET_ADMIN'] },
  }));
  await waitState(`version ${v} synced`, (s) => s.appliedVersion === v && s.status === 'synced');
  const extra = await only('extra');
  assert.equal(extra.State.Running, true);
  assert.deepEqual(extra.HostConfig.CapAdd, ['NET_ADMIN']);
  assert.deepEqual(extra.HostConfig.Devices, [{ PathOnHost: '/dev/zero', PathInContainer: '/dev/zero-in', CgroupPermissions: 'rwm' }]);
  const mounts = (extra.Mounts as { Type: string; Source: string; Destination: string; RW: boolean }[]).map((m) => [m.Type, m.Source, m.Destination, m.RW]);
  assert.deepEqual(mounts.sort(), [['bind', `${work}/data/sub`, '/data', true], ['bind', `${work}/ro`, '/ro', false]]);
});

test('the wider policy is judged where paths lead: symlinks, .., a read-only rule, a device outside it, the socket and the agent\'s own files even inside it', async () => {
  const applied = states.at(-1)?.appliedVersion ?? 0;
  // The file the running agent was started with (each start writes a new one beside the state dir).
  const configFile = readdirSync(join(work, 'data')).find((f) => f.startsWith('agent-') && readFileSync(join(work, 'data', f), 'utf8') === config(widerPolicy()));
  assert.ok(configFile !== undefined, 'configFile !== undefined');
  const cases: [Record<string, unknown>, string | RegExp][] = [
    [{ volumes: [`${work}/data/escape:/host:ro`] }, new RegExp(`^volumes\\[0\\] bind ${work}/data/escape \\(→ /\\): contains the container engine's socket \\(.+\\), never allowed$`)],
    [{ volumes: [`${work}/data/etc-link/passwd:/p:ro`] }, `volumes[0] bind ${work}/data/etc-link/passwd (→ /etc/passwd): not in policy.binds`],
    [{ volumes: [`${work}/data/../bootstrap.json:/b:ro`] }, `volumes[0] bind ${work}/data/../bootstrap.json (→ ${work}/bootstrap.json): not in policy.binds`],
    [{ volumes: [`${work}/ro:/ro`] }, `volumes[0] bind ${work}/ro: policy.binds allows it read-only only (mount it with :ro)`],
    [{ devices: ['/dev/full'] }, 'devices /dev/full: not in policy.devices'],
    [{ volumes: [`${engineSocket}:/s:ro`] }, `volumes[0] bind ${engineSocket}: the container engine's socket is never allowed`],
    [{ volumes: [`${stateDir}/keys.json:/k:ro`] }, `volumes[0] bind ${stateDir}/keys.json: the agent's state directory is never allowed`],
    [{ volumes: [`${work}/data:/d`] }, `volumes[0] bind ${work}/data: contains the agent's state directory (${stateDir}), never allowed`],
    [{ volumes: [`${work}/data/${configFile}:/c:ro`] }, `volumes[0] bind ${work}/data/${configFile}: the agent's config file is never allowed`],
    [{ privileged: true }, "privileged: not allowed by this device's policy (policy.allowPrivileged)"],
  ];
  // `extra` of the version applied keeps running; the refused service is a new one.
  const extra = await only('extra');
  for (const [settings, reason] of cases) await assertRefused(settings, reason, applied, 'probe');
  assert.equal((await only('extra')).State.StartedAt, extra.State.StartedAt);
});

// Privileged mode itself is not run here: the test machine's own bounding set lacks capabilities a
// privileged container gets, so runc refuses to start one (the unit tests cover its admission and spec).
test('the owner\'s switches admit host PID and host network; the engine gets them', async () => {
  await agent.stop();
  await startAgent(config('policy: { allowHostPid: true, allowHostNetwork: true }\n'));
  const v = await publish(compose({ web: {}, extra: { pid: 'host', network_mode: 'host', cap_drop: ['NET_RAW'] } }));
  await waitState(`version ${v} synced`, (s) => s.appliedVersion === v && s.status === 'synced');
  const extra = await only('extra');
  assert.equal(extra.State.Running, true);
  assert.equal(extra.HostConfig.PidMode, 'host');
  assert.equal(extra.HostConfig.NetworkMode, 'host');
  assert.deepEqual(extra.HostConfig.CapDrop, ['NET_RAW']);
});

test('a policy tightened since: the version held is refused when restored at boot, and reported', async () => {
  const held = states.at(-1)?.appliedVersion;
  assert.ok(held !== null && held !== undefined, 'held !== null && held !== undefined');
  await agent.stop();
  const seen = states.length;
  await startAgent(config());
  const state = await waitFor('refused at boot', () => states.slice(seen).find((s) => s.status === 'refused' && s.desiredVersion === held), 30_000, lastState);
  assert.equal(state.error?.code, 'POLICY_REFUSED');
  assert.equal(state.desiredVersion, held);
  assert.equal(state.error?.services?.extra, [
    "network_mode host: not allowed by this device's policy (policy.allowHostNetwork)",
    "pid host: not allowed by this device's policy (policy.allowHostPid)",
  ].join('; '));
});
