import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AgentStatusSchema } from '../../agent/status/agent-status.js';
import { AGENT_BUNDLE, AgentProcess } from '../support/agent-process.js';
import { fleetSession } from '../support/fleet-session.js';
import { closeFleetWorld, startFleetWorld, type FleetWorld } from '../support/fleet-world.js';
import { runBundle } from '../support/deploy-cli.js';

// `tsunagu-agent status` and `doctor` beside the real agent bundle, a real
// Mosquitto and the test dockerd (DOCKER_HOST from the test run).

let world: FleetWorld;

before(async () => {
  world = await startFleetWorld('tsunagu-status-');
});

after(async () => {
  await closeFleetWorld(world);
});

/** The agent CLI; its exit status as `code`. */
async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runBundle(AGENT_BUNDLE, args);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

type DoctorJson = { exitCode: number; checks: { check: string; verdict: string; detail: string; fix?: string }[] };

test('status shows identity, link and errors of the running agent; doctor checks engine and broker without taking the agent\'s session, and its CONNECT loses no queued command', async () => {
  const { stateDir, bootstrapPath } = world;
  const serial = 'status-doctor-board';
  const start = (): AgentProcess => new AgentProcess({ stateDir, bootstrapPath, serial });
  let agent = start();
  let queued: Promise<{ data: { ok: boolean } }> | undefined;
  const fleet = await fleetSession(world.tf, world.broker.url);
  try {
    const deviceId = String((await agent.waitForMsg('enrolled', 20_000)).deviceId);
    await agent.waitForMsg(/→ online/, 10_000);

    const shown = await cli(['status', '--json', '--state-dir', stateDir]);
    assert.equal(shown.code, 0, shown.stderr);
    const { running, lock, ...rest } = JSON.parse(shown.stdout) as Record<string, unknown>;
    assert.equal(running, true);
    assert.equal((lock as { state: string }).state, 'held');
    assert.equal((lock as { pid: number }).pid, agent.pid);
    const status = AgentStatusSchema.parse(rest);
    assert.equal(status.identity?.deviceId, deviceId);
    assert.equal(status.identity?.fleetId, world.tf.bootstrap.fleetId);
    assert.equal(status.link.state, 'online');
    assert.equal(status.pid, agent.pid);
    const human = await cli(['status', '--state-dir', stateDir]);
    assert.match(human.stdout, new RegExp(`device\\s+${deviceId}`));
    assert.match(human.stdout, /link\s+online/);

    const online = await cli(['doctor', '--json', '--state-dir', stateDir]);
    const report = JSON.parse(online.stdout) as DoctorJson;
    assert.equal(report.checks.find((c) => c.check === 'engine')?.verdict, 'ok', online.stdout);
    assert.match(report.checks.find((c) => c.check === 'engine')!.detail, /Docker Engine .*, API \d/);
    const brokerCheck = report.checks.find((c) => c.check === 'broker')!;
    assert.equal(brokerCheck.verdict, 'ok');
    assert.match(brokerCheck.detail, /running agent is connected/);
    assert.equal(online.code, report.exitCode);
    // Doctor did not disturb the agent's own connection.
    assert.equal(agent.lines.filter((l) => /online → /.test(String(l.msg))).length, 0);

    await agent.stop();
    const stopped = await cli(['status', '--state-dir', stateDir]);
    assert.equal(stopped.code, 3);
    assert.match(stopped.stdout, /NOT RUNNING/);

    // A command for the device while it is away waits in its persistent session.
    queued = fleet.link.send(deviceId, { name: 'ping', args: {} }, { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 500));
    const offline = JSON.parse((await cli(['doctor', '--json', '--state-dir', stateDir])).stdout) as DoctorJson;
    assert.match(offline.checks.find((c) => c.check === 'broker')!.detail, /MQTT CONNECT accepted with the device's credentials/);
    // The agent comes back and still gets it: doctor's CONNECT took nothing from the session.
    agent = start();
    const reply = await queued;
    assert.equal(reply.data.ok, true);
  } finally {
    await agent.stop();
    await queued?.catch(() => undefined);
    await fleet.close();
  }
});

test('doctor with a broker that refuses the device: says so, says what to do, exit 2', async () => {
  const stateDir = join(world.work, 'refused');
  const bootstrapPath = join(world.work, 'bootstrap-refused.json');
  writeFileSync(bootstrapPath, JSON.stringify(world.tf.bootstrap));
  const agent = new AgentProcess({ stateDir, bootstrapPath, serial: 'refused-board' });
  const identityPath = join(stateDir, 'identity.json');
  try {
    await agent.waitForMsg('enrolled', 20_000);
    // 'enrolled' is logged before the grant is written: wait for the file, not the line.
    for (let i = 0; i < 100 && !existsSync(identityPath); i++) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await agent.stop();
  }
  // The fleet forgets the device's credential: its identity file still has the old one.
  const identity = JSON.parse(readFileSync(identityPath, 'utf8')) as { grant: { password: string } };
  identity.grant.password = 'not-the-password-the-broker-knows';
  writeFileSync(identityPath, JSON.stringify(identity));
  const doctor = await cli(['doctor', '--json', '--state-dir', stateDir]);
  const check = (JSON.parse(doctor.stdout) as DoctorJson).checks.find((c) => c.check === 'broker')!;
  assert.equal(check.verdict, 'fail');
  assert.match(check.detail, /refused the device's credentials/);
  assert.match(String(check.fix), /re-enrolls/);
  assert.equal(doctor.code, 2);
});
