import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { ReportedStateSchema, type ReportedState } from '../../protocol/desired.js';
import { fleetCli } from '../support/deploy-cli.js';
import { isLinkState, logTime, sleep, startFaultDevice } from '../support/fault-device.js';
import { TEST_LABEL } from '../support/supervisor-harness.js';
import { waitFor } from '../support/wait-for.js';
import { closeEngineFleetWorld, startEngineFleetWorld, type EngineFleetWorld } from '../support/fleet-world.js';

// Scenario 1: the broker killed (SIGKILL: no clean shutdown, its last second
// of persistence lost) in the middle of a deploy, and started again a minute
// later. The device must finish the deploy on its own, keep exactly one
// container per service, and once the broker is back tell the fleet
// everything that happened meanwhile, in order; the operator's next deploy
// must then go through as usual.
const DOWN_MS = 60_000;
const BACKOFF_CAP_MS = 5_000;
/** Stated recovery bound after the broker is back: one back-off ceiling plus the connection and its setup. */
const RECOVERY_BOUND_MS = BACKOFF_CAP_MS + 3_000;

let world: EngineFleetWorld | undefined;

before(async () => {
  world = await startEngineFleetWorld('fault-broker');
});

after(async () => {
  await closeEngineFleetWorld(world ?? {});
});

function compose(image: string): string {
  const { work, scope } = world!;
  const file = join(work, `compose-${randomBytes(3).toString('hex')}.yaml`);
  const service = { image, network_mode: 'none', restart: 'always', stop_grace_period: '1s', labels: { [TEST_LABEL]: scope } };
  writeFileSync(file, stringify({ services: { web: service, api: service } }));
  return file;
}

async function containersByService(): Promise<Map<string, Docker.ContainerInfo[]>> {
  const { docker, scope } = world!;
  const by = new Map<string, Docker.ContainerInfo[]>();
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${scope}`] } })) {
    const service = c.Labels['com.docker.compose.service'] ?? c.Labels['io.tsunagu.service'] ?? '?';
    by.set(service, [...(by.get(service) ?? []), c]);
  }
  return by;
}

test(`the broker killed during a deploy and back ${DOWN_MS / 1000} s later: the deploy completes offline, the fleet learns all of it, one container per service`, async () => {
  const { broker, tf, work, images, scope, fleet } = world!;
  const device = await startFaultDevice({
    work, name: 'device', tf, brokerUrl: broker.url,
    configYaml: `
enrollment: { startupJitterMs: 0 }
link: { keepaliveSeconds: 5, backoffBaseMs: 1000, backoffCapMs: ${BACKOFF_CAP_MS} }
runtime: { scope: ${scope} }
rollout: { probationMs: 1500 }
`,
  });
  const events: Record<string, unknown>[] = [];
  let state: ReportedState | undefined;
  await fleet.link.watch(device.deviceId, ['events', 'state'], (r) => {
    const body = JSON.parse(r.payload.toString()) as Record<string, unknown>;
    if (r.kind === 'events') events.push(body);
    else state = ReportedStateSchema.parse(body);
  });
  try {
    const published = await fleetCli(['deploy', '--dir', tf.fleet.dir, device.deviceId, compose(images.busybox1), '--no-wait', '--json']);
    assert.equal(published.status, 0, published.stderr);
    const version = Number((JSON.parse(published.stdout.trim().split('\n')[0]!) as { version: number }).version);

    // The device has begun (the supervisor's first step): the broker dies now.
    const begun = await device.agent.waitForMsg(/^service (web|api): /, 30_000);
    await broker.kill();
    const killedAt = Date.now();
    assert.ok(logTime(begun) <= killedAt, 'logTime(begun) <= killedAt');

    // Offline, the device finishes the deploy by itself.
    await waitFor('both services running while the broker is down', async () => {
      const by = await containersByService();
      return ['web', 'api'].every((s) => by.get(s)?.length === 1 && by.get(s)![0]!.State === 'running');
    }, 30_000);
    await sleep(DOWN_MS - (Date.now() - killedAt));
    await broker.start();
    const upAt = Date.now();
    const online = await device.agent.waitForLog((l) => isLinkState('online')(l) && logTime(l) >= upAt, RECOVERY_BOUND_MS + 5_000);
    const recoveryMs = logTime(online) - upAt;

    // The fleet learns what happened while the broker was down.
    await waitFor('the fleet to see the version synced', () => state?.appliedVersion === version && state.status === 'synced', 20_000);
    const started = events.filter((e) => e.type === 'service-started').map((e) => e.service).sort();
    const ats = events.map((e) => Number(e.at));
    console.log(`# broker killed ${killedAt - logTime(begun)} ms into the deploy, down ${upAt - killedAt} ms; device online ${recoveryMs} ms after it was back; ${events.length} events delivered (${events.map((e) => e.type).join(', ')})`);
    assert.ok(recoveryMs <= RECOVERY_BOUND_MS, `back online in ${recoveryMs} ms, bound ${RECOVERY_BOUND_MS} ms`);
    assert.deepEqual(started, ['api', 'web'], 'a service-started event for each service reached the fleet');
    for (let i = 1; i < ats.length; i++) assert.ok(ats[i]! >= ats[i - 1]!, 'events delivered in order');
    assert.equal(new Set(events.map((e) => JSON.stringify(e))).size, events.length, 'no event delivered twice');

    // Exactly one container per service, and no restart counted for the broker's absence.
    const by = await containersByService();
    assert.deepEqual([...by.keys()].sort(), ['api', 'web']);
    for (const [service, list] of by) assert.equal(list.length, 1, `one container of ${service}`);
    for (const s of state!.services) assert.equal(s.restartCount, 0, `${s.name} restarted`);

    // The operator's next deploy goes through as usual (the CLI follows it to the end).
    const next = await fleetCli(['deploy', '--dir', tf.fleet.dir, device.deviceId, compose(images.busybox2), '--timeout', '60']);
    assert.equal(next.status, 0, next.stderr + next.stdout);
    const after = await containersByService();
    for (const service of ['web', 'api']) {
      const list = after.get(service) ?? [];
      assert.equal(list.filter((c) => c.State === 'running').length, 1, `one running container of ${service} after the next deploy`);
      assert.equal(list[0]!.Image, images.busybox2);
    }
  } finally {
    await device.agent.stop();
  }
});
