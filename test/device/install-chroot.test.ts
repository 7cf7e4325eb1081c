import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AgentStatusSchema } from '../../agent/status/agent-status.js';
import { AgentProcess } from '../support/agent-process.js';
import { chrootCommand, debianRoot, debianRootTools } from '../support/debian-root.js';
import { createTestFleet, type TestFleet } from '../support/fleet.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';

// The release archive on a Debian 12 root made by debootstrap (amd64, under
// chroot): install, the unit checked by systemd-analyze verify, first boot
// from the boot partition as the unprivileged agent user, status and doctor,
// a read-only boot partition, uninstall keeping the state, purge.
// The root is cached in /var/cache/tsunagu-test, built before the test files
// run (scripts/debian-roots.ts, test/support/debian-root-build.ts).

const problem = debianRootTools('amd64');
const skip = problem === null ? false : `cannot build a Debian root here: ${problem.missing}`;

let root: string;
let work: string; // inside the root, as seen from the host
let engine: Server;
let broker: TestBroker;
let tf: TestFleet;

function inRoot(argv: string[], opts: { readOnlyBinds?: [string, string][] } = {}): { status: number | null; stdout: string; stderr: string } {
  const { command, args } = chrootCommand(root, argv, opts);
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(argv: string[], opts: { readOnlyBinds?: [string, string][] } = {}): string {
  const r = inRoot(argv, opts);
  assert.equal(r.status, 0, `${argv.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const asAgentUser = ['setpriv', '--reuid=tsunagu', '--regid=tsunagu', '--init-groups'];

before(async () => {
  if (skip !== false) return;
  root = debianRoot('amd64');
  const built = spawnSync('bash', ['scripts/release-archive.sh'], { encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  work = mkdtempSync(join(root, 'tmp', 'tsunagu-install-'));
  assert.equal(spawnSync('tar', ['-xzf', `dist/tsunagu-agent-${version}.tar.gz`, '-C', work, '--strip-components=1']).status, 0);
  // The engine as install.sh sees it: a socket owned by root:docker. It does
  // not speak the Engine API (this test is about the installation, not containers).
  ok(['sh', '-c', 'getent group docker || groupadd --system docker']);
  rmSync(join(root, 'run/docker.sock'), { force: true });
  mkdirSync(join(root, 'run'), { recursive: true });
  engine = createServer((s) => s.destroy());
  await new Promise<void>((resolve) => engine.listen(join(root, 'run/docker.sock'), resolve));
  const gid = Number(ok(['getent', 'group', 'docker']).split(':')[2]);
  chownSync(join(root, 'run/docker.sock'), 0, gid);
  chmodSync(join(root, 'run/docker.sock'), 0o660);
  broker = await startMosquitto();
  tf = await createTestFleet(broker);
  await tf.startServer();
});

after(async () => {
  if (skip !== false) return;
  // Leave the cached root as it was, whatever failed above.
  inRoot(['sh', '-c', `[ -x ${inside(work)}/uninstall.sh ] && ${inside(work)}/uninstall.sh --purge; groupdel docker || true`]);
  rmSync(work, { recursive: true, force: true });
  rmSync(join(root, 'boot/firmware'), { recursive: true, force: true });
  await new Promise<void>((resolve) => engine.close(() => resolve()));
  rmSync(join(root, 'run/docker.sock'), { force: true });
  await tf?.close();
  await broker?.close();
});

function inside(hostPath: string): string {
  return hostPath.slice(root.length);
}

function modeOf(path: string): string {
  return (statSync(join(root, path)).mode & 0o7777).toString(8);
}

test('install.sh installs the agent, its user, config, state dir and an enabled unit that systemd-analyze verify accepts', { skip }, () => {
  const out = ok([`${inside(work)}/install.sh`]);
  assert.match(out, /Node\.js v18\./);
  assert.match(out, /container engine socket \/var\/run\/docker\.sock \(group docker\)/);
  assert.match(out, /systemd is not running here: the unit is enabled/);
  assert.ok(existsSync(join(root, 'usr/lib/tsunagu/tsunagu-agent.js')), "existsSync(join(root, 'usr/lib/tsunagu/tsunagu-agent.js'))");
  assert.equal(modeOf('var/lib/tsunagu'), '700');
  assert.equal(modeOf('etc/tsunagu/agent.yaml'), '640');
  assert.match(ok(['stat', '-c', '%U:%G', '/var/lib/tsunagu']), /^tsunagu:tsunagu/);
  assert.match(ok(['stat', '-c', '%U:%G', '/etc/tsunagu/agent.yaml']), /^root:tsunagu/);
  assert.match(ok(['id', '-nG', 'tsunagu']), /\bdocker\b/);
  assert.ok(lstatSync(join(root, 'etc/systemd/system/multi-user.target.wants/tsunagu-agent.service')).isSymbolicLink(), "lstatSync(join(root, 'etc/systemd/system/multi-user.target.wants/tsunagu-agent.service')).isSymbo...");
  const verify = inRoot(['systemd-analyze', 'verify', '/etc/systemd/system/tsunagu-agent.service']);
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), '', `systemd-analyze verify warns:\n${verify.stderr}`);
  // The installed command runs on Debian's own nodejs 18.
  assert.match(ok(['tsunagu-agent', '--version']), /^\d+\.\d+\.\d+/);
  // Again: an upgrade keeps the config and says so.
  assert.match(ok([`${inside(work)}/install.sh`]), /kept \/etc\/tsunagu\/agent\.yaml/);
});

test('first boot from the boot partition: taken as root, the file leaves the partition, the agent enrolls as its own user, status and doctor tell', { skip }, async () => {
  mkdirSync(join(root, 'boot/firmware'), { recursive: true });
  writeFileSync(join(root, 'boot/firmware/tsunagu.json'), JSON.stringify(tf.bootstrap), { mode: 0o644 });
  const taken = ok(['tsunagu-agent', 'take-bootstrap']);
  assert.match(taken, /removed the bootstrap file from the boot partition/);
  assert.ok(!existsSync(join(root, 'boot/firmware/tsunagu.json')), "!existsSync(join(root, 'boot/firmware/tsunagu.json'))");
  assert.equal(modeOf('var/lib/tsunagu/bootstrap.json'), '600');
  assert.match(ok(['stat', '-c', '%U', '/var/lib/tsunagu/bootstrap.json']), /^tsunagu/);

  const { command, args } = chrootCommand(root, [...asAgentUser, '/usr/bin/tsunagu-agent', 'run', '--startup-jitter', '0', '--serial', 'chroot-install-test']);
  const agent = new AgentProcess({ stateDir: '/var/lib/tsunagu', launch: { command, args } });
  try {
    const deviceId = String((await agent.waitForMsg('enrolled', 30_000)).deviceId);
    await agent.waitForMsg(/→ online/, 15_000);
    const { running, lock, ...shown } = JSON.parse(ok([...asAgentUser, 'tsunagu-agent', 'status', '--json'])) as Record<string, unknown>;
    assert.equal(running, true);
    assert.equal((lock as { state?: unknown }).state, 'held');
    const status = AgentStatusSchema.parse(shown);
    assert.equal(status.identity?.deviceId, deviceId);
    assert.equal(status.link.state, 'online');
    const human = ok([...asAgentUser, 'tsunagu-agent', 'status']);
    assert.match(human, new RegExp(`device\\s+${deviceId}`));
    assert.match(human, /link\s+online/);
    const doctor = inRoot([...asAgentUser, 'tsunagu-agent', 'doctor', '--json']);
    const report = JSON.parse(doctor.stdout) as { exitCode: number; checks: { check: string; verdict: string; fix?: string }[] };
    const broker = report.checks.find((c) => c.check === 'broker');
    assert.equal(broker?.verdict, 'ok');
    // The stand-in socket does not speak the Engine API: doctor says the engine does not answer, and what to do.
    const engineCheck = report.checks.find((c) => c.check === 'engine');
    assert.equal(engineCheck?.verdict, 'fail');
    assert.match(String(engineCheck?.fix), /systemctl status docker/);
    assert.equal(doctor.status, 2);
    assert.equal(report.exitCode, 2);
  } finally {
    await agent.stop();
  }
  // Stopped: status says so, and doctor now logs in as the device itself (a real MQTT CONNECT).
  const stopped = inRoot([...asAgentUser, 'tsunagu-agent', 'status']);
  assert.equal(stopped.status, 3);
  assert.match(stopped.stdout, /NOT RUNNING/);
  const doctor = JSON.parse(inRoot([...asAgentUser, 'tsunagu-agent', 'doctor', '--json']).stdout) as { checks: { check: string; verdict: string; detail: string }[] };
  assert.match(doctor.checks.find((c) => c.check === 'broker')!.detail, /MQTT CONNECT accepted with the device's credentials/);
});

test('a read-only boot partition: the private copy is taken once, the file stays and the agent says to remove it', { skip }, () => {
  const ro = mkdtempSync(join(work, 'bootro-'));
  writeFileSync(join(ro, 'tsunagu.json'), JSON.stringify(tf.bootstrap), { mode: 0o644 });
  rmSync(join(root, 'var/lib/tsunagu/bootstrap.json'));
  const binds: [string, string][] = [[ro, '/boot/firmware']];
  const first = ok(['tsunagu-agent', 'take-bootstrap'], { readOnlyBinds: binds });
  assert.match(first, /took a private copy/);
  assert.match(first, /"code":"EROFS"/);
  assert.match(first, /stays on the boot partition.*remove it by hand/);
  assert.ok(existsSync(join(ro, 'tsunagu.json')), "existsSync(join(ro, 'tsunagu.json'))");
  const copied = statSync(join(root, 'var/lib/tsunagu/bootstrap.json')).mtimeMs;
  // At the next boot the same file is found again: the private copy is not rewritten.
  const second = ok(['tsunagu-agent', 'take-bootstrap'], { readOnlyBinds: binds });
  assert.doesNotMatch(second, /took a private copy/);
  assert.equal(statSync(join(root, 'var/lib/tsunagu/bootstrap.json')).mtimeMs, copied);
});

test('uninstall.sh keeps the state and config; --purge removes them and the user', { skip }, () => {
  const out = ok([`${inside(work)}/uninstall.sh`]);
  assert.match(out, /kept \/var\/lib\/tsunagu/);
  assert.ok(!existsSync(join(root, 'usr/lib/tsunagu')), "!existsSync(join(root, 'usr/lib/tsunagu'))");
  assert.ok(!existsSync(join(root, 'usr/bin/tsunagu-agent')), "!existsSync(join(root, 'usr/bin/tsunagu-agent'))");
  assert.ok(!existsSync(join(root, 'etc/systemd/system/tsunagu-agent.service')), "!existsSync(join(root, 'etc/systemd/system/tsunagu-agent.service'))");
  assert.ok(!existsSync(join(root, 'etc/systemd/system/multi-user.target.wants/tsunagu-agent.service')), "!existsSync(join(root, 'etc/systemd/system/multi-user.target.wants/tsunagu-agent.service'))");
  assert.ok(existsSync(join(root, 'var/lib/tsunagu/identity.json')), "existsSync(join(root, 'var/lib/tsunagu/identity.json'))");
  assert.ok(existsSync(join(root, 'etc/tsunagu/agent.yaml')), "existsSync(join(root, 'etc/tsunagu/agent.yaml'))");
  ok([`${inside(work)}/install.sh`]);
  assert.match(ok([`${inside(work)}/uninstall.sh`, '--purge']), /purged/);
  assert.ok(!existsSync(join(root, 'var/lib/tsunagu')), "!existsSync(join(root, 'var/lib/tsunagu'))");
  assert.ok(!existsSync(join(root, 'etc/tsunagu')), "!existsSync(join(root, 'etc/tsunagu'))");
  assert.notEqual(inRoot(['getent', 'passwd', 'tsunagu']).status, 0);
});
