import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Docker from 'dockerode';
import { stringify } from 'yaml';
import { AgentProcess } from '../support/agent-process.js';
import { fleetCli } from '../support/deploy-cli.js';
import { createTestFleet } from '../support/fleet.js';
import { startMosquitto } from '../support/mosquitto.js';
import { dockerTestEnv, TEST_LABEL } from '../support/supervisor-harness.js';

// Scenario 4: the real agent SIGKILLed at a random instant of a deploy (receiving it, pulling,
// stopping, creating, starting), restarted each time; every round it must converge to the
// version deployed with exactly one container per service and nothing left over.

// `npm run test:faults` runs 50 rounds; `npm test` 5 (each round costs a few seconds of engine work).
const ROUNDS = process.env.TSUNAGU_FAULTS_FULL === '1' ? 50 : 3;
const SERVICES = ['alpha', 'beta', 'gamma'];
const CONVERGE_WITHIN_MS = 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test(`SIGKILL at random points of a deploy, ${ROUNDS} times: converges, one container per service, no orphans`, { timeout: ROUNDS * 90_000 + 60_000 }, async () => {
  const { dockerHost, images } = dockerTestEnv();
  const docker = new Docker({ socketPath: dockerHost.replace(/^unix:\/\//, '') });
  const scope = `kill-${randomBytes(3).toString('hex')}`;
  const broker = await startMosquitto();
  const tf = await createTestFleet(broker);
  await tf.startServer();
  const work = mkdtempSync(join(tmpdir(), 'tsunagu-deploy-kill-'));
  const bootstrapPath = join(work, 'bootstrap.json');
  writeFileSync(bootstrapPath, JSON.stringify(tf.bootstrap));
  const stateDir = join(work, 'device');
  const config = `enrollment: { startupJitterMs: 0 }\nlink: { backoffBaseMs: 100, backoffCapMs: 1000 }\nruntime: { scope: ${scope} }\nrollout: { probationMs: 0 }\n`;
  let agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: config });
  const convergeMs: number[] = [];
  try {
    const deviceId = String((await agent.waitForMsg('enrolled', 30_000)).deviceId);
    await agent.waitForMsg(/→ online/);

    const converged = async (round: number, image: string): Promise<string | undefined> => {
      const all = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${scope}`] } });
      const byService = new Map<string, Docker.ContainerInfo[]>();
      for (const c of all) byService.set(c.Labels['io.tsunagu.service'] ?? '?', [...(byService.get(c.Labels['io.tsunagu.service'] ?? '?') ?? []), c]);
      if (all.length !== SERVICES.length || SERVICES.some((s) => byService.get(s)?.length !== 1)) {
        return `containers: ${all.map((c) => `${c.Labels['io.tsunagu.service']}:${c.State}`).join(', ')}`;
      }
      for (const c of all) {
        if (c.State !== 'running' || c.Image !== image) return `${c.Labels['io.tsunagu.service']} ${c.State} ${c.Image}`;
        const env = (await docker.getContainer(c.Id).inspect()).Config.Env;
        if (!env.includes(`ROUND=${round}`)) return `${c.Labels['io.tsunagu.service']} still on an older round`;
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
    for (const c of await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${scope}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    await tf.close();
    await broker.close();
    rmSync(work, { recursive: true, force: true });
  }
});
