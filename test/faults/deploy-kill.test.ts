import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { parseState } from '../../provisioning/deploy/rollout.js';
import type { ReportedState } from '../../protocol/desired.js';
import { AgentProcess } from '../support/agent-process.js';
import { fleetCli } from '../support/deploy-cli.js';
import { fleetSession } from '../support/fleet-session.js';
import { dockerTestEnv, TEST_LABEL } from '../support/supervisor-harness.js';
import { waitFor } from '../support/wait-for.js';
import { removeContainers, testDocker } from '../support/test-docker.js';
import { closeFleetWorld, startFleetWorld } from '../support/fleet-world.js';
import { inspectIfPresent } from '../support/inspect-listed.js';

// Scenario 4: the real agent SIGKILLed at a random instant of a deploy (receiving it, pulling,
// stopping, creating, starting), restarted each time; every round it must converge to the
// version deployed with exactly one container per service and nothing left over.

// `npm run test:faults` runs 50 rounds; `npm test` 5 (each round costs a few seconds of engine work).
const ROUNDS = process.env.TSUNAGU_FAULTS_FULL === '1' ? 50 : 3;
const SERVICES = ['alpha', 'beta', 'gamma'];
const CONVERGE_WITHIN_MS = 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test(`SIGKILL at random points of a deploy, ${ROUNDS} times: converges, one container per service, no orphans`, { timeout: ROUNDS * 90_000 + 60_000 }, async () => {
  const { images } = dockerTestEnv();
  const docker = testDocker();
  const scope = `kill-${randomBytes(3).toString('hex')}`;
  const { broker, tf, work, bootstrapPath, stateDir } = await startFleetWorld('tsunagu-deploy-kill-');
  const config = `enrollment: { startupJitterMs: 0 }\nlink: { backoffBaseMs: 100, backoffCapMs: 1000 }\nruntime: { scope: ${scope} }\nrollout: { probationMs: 0 }\n`;
  let agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: config });
  const convergeMs: number[] = [];
  try {
    const deviceId = await agent.enrolledAndOnline(30_000);

    const converged = async (round: number, image: string): Promise<string | undefined> => {
      const all = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${scope}`] } });
      const byService = new Map<string, Docker.ContainerInfo[]>();
      for (const c of all) byService.set(c.Labels['io.tsunagu.service'] ?? '?', [...(byService.get(c.Labels['io.tsunagu.service'] ?? '?') ?? []), c]);
      if (all.length !== SERVICES.length || SERVICES.some((s) => byService.get(s)?.length !== 1)) {
        return `containers: ${all.map((c) => `${c.Labels['io.tsunagu.service']}:${c.State}`).join(', ')}`;
      }
      for (const c of all) {
        if (c.State !== 'running' || c.Image !== image) return `${c.Labels['io.tsunagu.service']} ${c.State} ${c.Image}`;
        const info = await inspectIfPresent(docker, c.Id);
        if (info === undefined) return `${c.Labels['io.tsunagu.service']} replaced since the listing`;
        if (!info.Config.Env.includes(`ROUND=${round}`)) return `${c.Labels['io.tsunagu.service']} still on an older round`;
      }
      return undefined;
    };

    for (let round = 0; round < ROUNDS; round++) {
      const image = round % 2 === 0 ? images.busybox1 : images.busybox2;
      const file = join(work, `compose-${round}.yaml`);
      writeFileSync(file, stringify({
        services: Object.fromEntries(SERVICES.map((s) => [s, {
          image, network_mode: 'none', restart: 'always', environment: { ROUND: String(round) }, labels: { [TEST_LABEL]: scope }, stop_grace_period: '1s',
        }])),
      }));
      const r = await fleetCli(['deploy', '--dir', tf.fleet.dir, deviceId, file, '--no-wait']);
      assert.equal(r.status, 0, r.stderr);
      // The deploy of three services takes 1-4 s here: the kill lands anywhere in it.
      await sleep(Math.floor(Math.random() * 3000));
      await agent.stop('SIGKILL');
      agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: config });
      const began = Date.now();
      let why: string | undefined = 'not checked';
      while (Date.now() - began < CONVERGE_WITHIN_MS) {
        why = await converged(round, image);
        if (why === undefined) break;
        await sleep(300);
      }
      assert.equal(why, undefined, `round ${round}: not converged within ${CONVERGE_WITHIN_MS} ms`);
      convergeMs.push(Date.now() - began);
    }
    assert.equal(agent.lines.some((l) => String(l.msg).startsWith('stderr:')), false, 'no uncaught error');
    const sorted = [...convergeMs].sort((a, b) => a - b);
    process.stdout.write(`converged after restart: median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms over ${ROUNDS} rounds\n`);
  } finally {
    await agent.stop();
    await removeContainers(docker, `${TEST_LABEL}=${scope}`);
    await closeFleetWorld({ broker, tf, work });
  }
});

test('SIGKILL during a probation: after the restart the version is still on probation, not synced; a failure in the rest of the window returns to the proven version', { timeout: 150_000 }, async () => {
  const { images } = dockerTestEnv();
  const docker = testDocker();
  const scope = `probe-${randomBytes(3).toString('hex')}`;
  const { broker, tf, work, bootstrapPath, stateDir } = await startFleetWorld('tsunagu-probation-kill-');
  // A window long enough to kill and restart the agent inside it, with room to spare on a loaded machine.
  const PROBATION_MS = 20_000;
  const config = `enrollment: { startupJitterMs: 0 }\nlink: { backoffBaseMs: 100, backoffCapMs: 1000 }\nruntime: { scope: ${scope} }\nrollout: { probationMs: ${PROBATION_MS} }\n`;
  let agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: config });
  const session = await fleetSession(tf, broker.url);
  const states: ReportedState[] = [];
  try {
    const deviceId = await agent.enrolledAndOnline(30_000);
    await session.link.watch(deviceId, ['state'], (r) => {
      const s = parseState(r.payload);
      if (s !== undefined) states.push(s);
    });
    /** What a timeout error shows: the last reports. */
    const lastStates = { detail: () => states.slice(-3) };
    const deploy = async (name: string, service: Record<string, unknown>): Promise<number> => {
      const file = join(work, `${name}.yaml`);
      writeFileSync(file, stringify({ services: { web: { network_mode: 'none', restart: 'always', stop_grace_period: '1s', labels: { [TEST_LABEL]: scope }, ...service } } }));
      const known = Math.max(0, ...states.map((s) => s.desiredVersion ?? 0));
      const r = await fleetCli(['deploy', '--dir', tf.fleet.dir, deviceId, file, '--no-wait']);
      assert.equal(r.status, 0, r.stderr);
      await waitFor(`${name} accepted`, () => states.some((s) => (s.desiredVersion ?? 0) > known), 60_000, lastStates);
      return states.find((s) => (s.desiredVersion ?? 0) > known)?.desiredVersion ?? -1;
    };

    const v1 = await deploy('v1', { image: images.busybox1 });
    await waitFor('v1 synced after its probation', () => states.some((s) => s.desiredVersion === v1 && s.status === 'synced'), PROBATION_MS + 30_000, lastStates);

    // v2 runs well for 12 s, then exits 3: inside its window, but only after the agent has been killed and is back.
    const v2 = await deploy('v2', { image: images.busybox1, command: ['sh', '-c', 'sleep 12; exit 3'] });
    assert.ok(v2 > v1, 'v2 > v1');
    let startedAt = 0;
    await waitFor('the v2 container running', async () => {
      const [c] = await docker.listContainers({ filters: { label: [`${TEST_LABEL}=${scope}`, `io.tsunagu.version=${v2}`], status: ['running'] } });
      const info = c === undefined ? undefined : await inspectIfPresent(docker, c.Id);
      if (info === undefined) return false;
      startedAt = Date.parse(info.State.StartedAt);
      return true;
    }, 60_000, lastStates);
    await agent.stop('SIGKILL');
    const killedAt = Date.now();
    assert.ok(killedAt - startedAt < 10_000, 'killed well inside the window, before the service fails');
    const before = states.length;
    agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: config });
    await waitFor('a report of v2 from the restarted agent', () => states.slice(before).some((s) => s.desiredVersion === v2), 60_000, lastStates);
    const after = states.slice(before).find((s) => s.desiredVersion === v2);
    assert.equal(after?.status, 'applying', `still on probation after the restart, not synced: ${JSON.stringify(after)}`);

    await waitFor('v2 reported failed', () => states.some((s) => s.desiredVersion === v2 && s.status === 'failed'), PROBATION_MS + 30_000, lastStates);
    const failed = states.find((s) => s.desiredVersion === v2 && s.status === 'failed');
    assert.equal(failed?.error?.code, 'PROBATION_FAILED');
    assert.match(failed?.error?.message ?? '', new RegExp(`web: exited with code 3 within the probation window \\(20 s\\); rolled back to its configuration of version ${v1}`));
    assert.equal(states.some((s) => s.desiredVersion === v2 && s.status === 'synced'), false, 'v2 was never reported synced');
    assert.equal(states.at(-1)?.appliedVersion, v1, 'the applied version is still the proven one');
    await waitFor('web back on its v1 configuration', async () => {
      const list = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${scope}`] } });
      if (list.length !== 1 || list[0]?.State !== 'running') return false;
      const info = await inspectIfPresent(docker, list[0].Id);
      return info !== undefined && info.Config.Cmd?.includes('exit 3') !== true;
    }, 60_000, lastStates);
    assert.equal(agent.lines.some((l) => String(l.msg).startsWith('stderr:')), false, 'no uncaught error');
  } finally {
    await agent.stop();
    await removeContainers(docker, `${TEST_LABEL}=${scope}`);
    await session.close();
    await closeFleetWorld({ broker, tf, work });
  }
});
