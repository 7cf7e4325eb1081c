import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AGENT_BUNDLE, AgentProcess, FLEET_BUNDLE } from '../support/agent-process.js';
import { createTestFleet, type TestFleet } from '../support/fleet.js';
import { fleetSession } from '../support/fleet-session.js';
import { freePort, startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { runBundle, startServe } from '../support/deploy-cli.js';

// Two shipped agent bundles on one state directory (issue 13, finding 4), on
// both brokers: the second refuses to start and leaves the first alone; a
// killed first leaves a stale lock that the next start takes over; doctor
// names the holder. Also the leftovers of a power cut (finding 7).

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'tsunagu-state-lock-'));
});
after(() => {
  rmSync(work, { recursive: true, force: true });
});

/** A bundle's CLI; its exit status as `code`. */
async function cli(bundle: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runBundle(bundle, args);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function lockCheck(stateDir: string): Promise<string> {
  const doctor = await cli(AGENT_BUNDLE, ['doctor', '--json', '--state-dir', stateDir]);
  const checks = (JSON.parse(doctor.stdout) as { checks: { check: string; verdict: string; detail: string }[] }).checks;
  const lock = checks.find((c) => c.check === 'lock');
  assert.equal(lock?.verdict, 'ok', doctor.stdout);
  return lock.detail;
}

/** A pid that no process has now: one that just exited. */
function deadPid(): number {
  const gone = spawnSync(process.execPath, ['-e', '']);
  assert.equal(gone.status, 0);
  return gone.pid;
}

const onlineLines = (a: AgentProcess): number => a.lines.filter((l) => /→ online/.test(String(l.msg))).length;

/** The whole story on one broker; `ping` answers once the device replied to a signed command. */
async function twoAgentsOneStateDir(o: { name: string; bootstrapPath: string; ping: (deviceId: string) => Promise<void> }): Promise<void> {
  const stateDir = join(work, `${o.name}-device`);
  const start = (): AgentProcess => new AgentProcess({ stateDir, bootstrapPath: o.bootstrapPath, serial: `${o.name}-board` });

  // What a power cut leaves: the temp file of an interrupted write, an empty outbox directory.
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const leftover = join(stateDir, `.status.json.${deadPid()}.tmp`);
  writeFileSync(leftover, '{"half":');
  writeFileSync(join(stateDir, 'notes.tmp'), 'a person\'s file');
  mkdirSync(join(stateDir, 'outbox'));

  const first = start();
  let third: AgentProcess | undefined;
  try {
    const deviceId = String((await first.waitForMsg('enrolled', 20_000)).deviceId);
    await first.waitForMsg(/→ online/, 10_000);
    assert.deepEqual((await first.waitForMsg('removed temp files of interrupted writes')).files, [leftover]);
    assert.equal(existsSync(leftover), false);
    assert.equal(existsSync(join(stateDir, 'notes.tmp')), true, 'only the atomic writer\'s own temp files go');
    assert.equal(existsSync(join(stateDir, 'outbox')), false, 'an empty outbox directory goes when the outbox opens');

    const second = start();
    assert.equal(await second.exited, 75, 'EX_TEMPFAIL: systemd restarts it, so the unit takes over once the other stops');
    const refusal = String((await second.waitForMsg(/^stderr: .*STATE_DIR_LOCKED/)).msg);
    assert.match(refusal, new RegExp(`STATE_DIR_LOCKED: ${stateDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another agent: pid ${first.pid} \\(.*tsunagu-agent\\.js run .*\\) since 20`));
    assert.equal(second.lines.some((l) => l.msg === 'starting'), false, 'refused before anything else');

    // The first is untouched: its status file, and its session, which still answers a command.
    assert.equal((JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as { pid: number }).pid, first.pid);
    await o.ping(deviceId);
    assert.equal(onlineLines(first), 1, 'the first agent never lost its session');
    assert.equal(first.lines.some((l) => l.msg === 'reconnecting'), false);
    assert.match(await lockCheck(stateDir), new RegExp(`held by pid ${first.pid} \\(.*tsunagu-agent\\.js run --state-dir ${stateDir}.*\\) since 20`));

    // A killed holder (a power cut, the OOM killer) leaves its claim: stale, taken over by the next start.
    await first.stop('SIGKILL');
    assert.equal(existsSync(join(stateDir, `agent-${first.pid}.lock`)), true);
    assert.match(await lockCheck(stateDir), new RegExp(`no agent runs on it; left over by pid ${first.pid} \\(process ${first.pid} is gone\\)`));
    third = start();
    assert.deepEqual((await third.waitForMsg('state directory lock: removed the claims of agents that are gone', 20_000)).claims, [{ pid: first.pid, reason: `process ${first.pid} is gone` }]);
    await third.waitForMsg('identity found; skipping enrollment');
    await third.waitForMsg(/→ online/, 10_000);
    await o.ping(deviceId);
    assert.match(await lockCheck(stateDir), new RegExp(`held by pid ${third.pid} `));

    // A clean stop releases it.
    assert.equal(await third.stop('SIGTERM'), 0);
    assert.equal(existsSync(join(stateDir, `agent-${third.pid}.lock`)), false);
    assert.match(await lockCheck(stateDir), /no agent runs on it$/);
  } finally {
    await first.stop('SIGKILL');
    await third?.stop('SIGKILL');
  }
}

test('Mosquitto 2: a second agent on the same state directory refuses (exit 75) and the first stays online; a killed first is taken over', async () => {
  const broker: TestBroker = await startMosquitto();
  let tf: TestFleet | undefined;
  let fleet: Awaited<ReturnType<typeof fleetSession>> | undefined;
  try {
    tf = await createTestFleet(broker);
    await tf.startServer();
    const bootstrapPath = join(work, 'mosquitto-bootstrap.json');
    writeFileSync(bootstrapPath, JSON.stringify(tf.bootstrap));
    fleet = await fleetSession(tf, broker.url);
    const session = fleet;
    await twoAgentsOneStateDir({
      name: 'mosquitto', bootstrapPath,
      ping: async (deviceId) => {
        const reply = await session.link.send(deviceId, { name: 'ping', args: {} }, { timeoutMs: 8000 });
        assert.equal(reply.data.ok, true, JSON.stringify(reply.data));
      },
    });
  } finally {
    await fleet?.close();
    await tf?.close();
    await broker.close();
  }
});

test('the embedded broker of tsunagu-fleet serve: the same', async () => {
  const fleetDir = join(work, 'fleet');
  const bootstrapPath = join(work, 'embedded-bootstrap.json');
  const fleet = (...args: string[]) => cli(FLEET_BUNDLE, args);
  const init = await fleet('init', '--dir', fleetDir, '--fleet-id', 'lock', '--listen', `127.0.0.1:${await freePort()}`, '--claim-token', 'lock-token');
  assert.equal(init.code, 0, init.stderr);
  const boot = await fleet('bootstrap', '--dir', fleetDir, '--out', bootstrapPath, '--claim-token', 'lock-token');
  assert.equal(boot.code, 0, boot.stderr);
  const serve = await startServe(fleetDir);
  try {
    await twoAgentsOneStateDir({
      name: 'embedded', bootstrapPath,
      ping: async (deviceId) => {
        const ping = await fleet('send', '--dir', fleetDir, deviceId, 'ping', '--json', '--timeout', '10000');
        assert.equal(ping.code, 0, ping.stderr);
        assert.equal((JSON.parse(ping.stdout) as { ok: boolean }).ok, true);
      },
    });
  } finally {
    const exited = new Promise((resolve) => serve.once('exit', resolve));
    if (serve.exitCode === null) serve.kill('SIGTERM');
    await exited;
  }
});
