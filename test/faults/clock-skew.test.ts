import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { AgentProcess } from '../support/agent-process.js';
import { fleetCli } from '../support/deploy-cli.js';
import { isLinkState, startFaultDevice } from '../support/fault-device.js';
import { waitFor } from '../support/wait-for.js';
import { TEST_LABEL } from '../support/supervisor-harness.js';
import { removeContainers } from '../support/test-docker.js';
import { closeEngineFleetWorld, runningIn, startEngineFleetWorld, type EngineFleetWorld } from '../support/fleet-world.js';

// Scenario 13: the device clock in 1970 (a board without RTC before NTP) and
// five years ahead. The agent has no clock seam of its own, so the shipped
// bundle runs under Debian's libfaketime (LD_PRELOAD; the monotonic clock
// left alone, so timers run normally). The rule under test is
// docs/protocol.md §9.1: with the clock untrusted (the default `auto`
// without an NTP sync) commands are accepted whatever the clock says; with
// `clock.trust: always` a command from the fleet's present is NOT_YET_VALID
// to a device in 1970 and EXPIRED to one five years ahead. Either way the
// desired state never expires: the workload is never torn down because of
// the clock, not at deploy, not at a restart, not when commands are refused.
// Probation is off here: it compares the engine's container start times with
// the agent's clock, and only the agent's clock is faked (the engine is
// shared). On a device both read one clock; with probation on, an agent in
// 1970 would wait for a window that ends 50 years later (found by this test).
const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1'].find((p) => existsSync(p));

let world: EngineFleetWorld | undefined;
/** One scope a test, each removed at the end (the world removes only its own). */
const scopes: string[] = [];

before(async () => {
  assert.ok(LIBFAKETIME, 'libfaketime is missing: run the tests through `npm test` (installs the faketime package)');
  world = await startEngineFleetWorld('fault-clock');
});

after(async () => {
  for (const scope of scopes) {
    if (world !== undefined) await removeContainers(world.docker, `${TEST_LABEL}=${scope}`);
  }
  await closeEngineFleetWorld(world ?? {});
});

const config = (scope: string, trust: 'auto' | 'always'): string => `
enrollment: { startupJitterMs: 0, backoffBaseMs: 200, backoffCapMs: 2000 }
link: { keepaliveSeconds: 5, backoffBaseMs: 100, backoffCapMs: 1000 }
runtime: { scope: ${scope} }
rollout: { probationMs: 0 }
clock: { trust: ${trust} }
`;

const running = (scope: string): Promise<Docker.ContainerInfo[]> => runningIn(world!.docker, scope);

for (const skew of [
  { name: '1970', faketime: '@1970-01-02 00:00:00', trustedRefusal: 'NOT_YET_VALID' },
  { name: 'five years ahead', faketime: '+5y', trustedRefusal: 'EXPIRED' },
]) {
  test(`device clock ${skew.name}: commands accepted while the clock is untrusted, ${skew.trustedRefusal} once it is trusted; the workload never torn down`, async () => {
    const { broker, tf, work, images, fleet } = world!;
    const scope = `fault-clock-${randomBytes(3).toString('hex')}`;
    scopes.push(scope);
    const name = skew.name.replace(/\W+/g, '-');
    const env = { LD_PRELOAD: LIBFAKETIME!, FAKETIME: skew.faketime, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    const device = await startFaultDevice({ work, name, tf, brokerUrl: broker.url, configYaml: config(scope, 'auto'), env });
    let agent: AgentProcess = device.agent;
    try {
      // The fake clock reached the agent (its log lines carry its own time).
      const year = new Date(String(agent.lines.find((l) => l.time !== undefined)?.time)).getUTCFullYear();
      assert.ok(skew.name === '1970' ? year === 1970 : year >= new Date().getUTCFullYear() + 4, `agent clock says ${year}`);

      const file = join(work, `${name}.yaml`);
      writeFileSync(file, stringify({ services: { web: { image: images.busybox1, network_mode: 'none', restart: 'always', labels: { [TEST_LABEL]: scope } } } }));
      const deployed = await fleetCli(['deploy', '--dir', tf.fleet.dir, device.deviceId, file, '--timeout', '60']);
      assert.equal(deployed.status, 0, deployed.stderr + deployed.stdout);
      const [web] = await running(scope);
      assert.ok(web, 'the service runs');

      const untrusted = await fleet.link.send(device.deviceId, { name: 'ping', args: {} }, { timeoutMs: 15_000 });
      assert.equal(untrusted.data.ok, true, `untrusted clock: ${JSON.stringify(untrusted.data)}`);

      // The device's reported states: the retained one first, then each the agent publishes.
      const states: { status: string }[] = [];
      await fleet.link.watch(device.deviceId, ['state'], (r) => states.push(JSON.parse(r.payload.toString()) as { status: string }));
      await waitFor('the retained state', () => states.length > 0);
      const statesBefore = states.length;

      // The owner now says the clock is to be trusted (as timesyncd would, but the clock is still wrong).
      await agent.stop();
      agent = new AgentProcess({ stateDir: device.stateDir, bootstrapPath: device.bootstrapPath, configYaml: config(scope, 'always'), env });
      await agent.waitForLog(isLinkState('online'), 30_000);
      const trusted = await fleet.link.send(device.deviceId, { name: 'ping', args: {} }, { timeoutMs: 15_000 });
      assert.equal(trusted.data.ok, false, `trusted clock: ${JSON.stringify(trusted.data)}`);
      assert.equal(trusted.data.ok === false && trusted.data.code, skew.trustedRefusal);

      // The desired state restored from disk at the restart is not judged by the clock: same container, still running.
      // Checked once the restarted agent's supervisor has converged (it reports `synced` only after a round with nothing left to do).
      await waitFor('a synced state from the restarted agent', () => states.slice(statesBefore).some((st) => st.status === 'synced'), 30_000, { detail: () => states.slice(statesBefore) });
      const after = await running(scope);
      assert.equal(after.length, 1, 'exactly one container');
      assert.equal(after[0]!.Id, web.Id, 'the container was never replaced');
      assert.equal(agent.lines.some((l) => /desired/.test(String(l.msg)) && /EXPIRED|NOT_YET_VALID/.test(JSON.stringify(l))), false, 'the desired state was never refused for its time');
      console.log(`# clock ${skew.name} (agent year ${year}): ping accepted untrusted, ${skew.trustedRefusal} trusted; container ${web.Id.slice(0, 12)} kept`);
    } finally {
      await agent.stop();
    }
  });
}
