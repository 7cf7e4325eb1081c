import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectPacket } from '../../../agent/doctor/mqtt-connect-probe.js';
import { DEVICE_SESSION_EXPIRY_SECONDS } from '../../../agent/link/mqtt-options.js';
import { doctorExitCode, judgeBroker, judgeClock, judgeDisk, judgeEngine, judgeLock, judgeMemory, renderDoctor } from '../../../agent/doctor/doctor-verdicts.js';
import { claimName, lockSummary, type ClaimReading, type LockReport } from '../../../agent/state/state-lock.js';
import { STATUS_ERRORS_KEPT, withError } from '../../../agent/status/agent-status.js';
import { readStatusFile, statusPath, StatusFile } from '../../../agent/status/status-file.js';
import { renderStatus } from '../../../agent/status/status-view.js';

const MIB = 1024 * 1024;

test('the status file is written when what it shows changes, and only then', () => {
  const dir = mkdtempSync(join(tmpdir(), 'status-'));
  try {
    let now = 1_000;
    const file = new StatusFile(statusPath(dir), '9.9.9', () => now);
    const written = (): number => statSync(statusPath(dir)).ino;
    const first = written();
    now += 5_000;
    file.link('offline'); // already offline: nothing changes
    assert.equal(written(), first);
    file.link('online');
    const second = written();
    assert.notEqual(second, first); // replaced by rename: a new inode
    const state = { version: '3', status: 'synced' as const, error: null, services: [{ name: 'web', image: 'nginx', imageDigest: null, containerId: 'c1', outdated: false, state: 'running' as const, health: 'healthy' as const, restartCount: 0, lastExitCode: null, retryAt: null, lastError: null, updateSwitch: null }] };
    file.workload(state);
    const third = written();
    file.workload({ ...state, services: state.services.map((s) => ({ ...s, retryAt: 5 })) }); // not shown: no write
    assert.equal(written(), third);
    const read = readStatusFile(dir);
    assert.equal(read.status, 'ok');
    if (read.status !== 'ok') return;
    assert.equal(read.value.link.state, 'online');
    assert.equal(read.value.link.since, 6_000);
    assert.equal(read.value.services[0]!.health, 'healthy');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a status file that is not what the agent writes is reported, not trusted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'status-'));
  try {
    assert.equal(readStatusFile(dir).status, 'missing');
    new StatusFile(statusPath(dir), '1.0.0').error({ at: 1, level: 'error', message: 'x' });
    const text = readFileSync(statusPath(dir), 'utf8').replace('"v": 1', '"v": 2');
    writeFileSync(statusPath(dir), text);
    assert.equal(readStatusFile(dir).status, 'unreadable');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the last errors keep the newest ten', () => {
  let errors: ReturnType<typeof withError> = [];
  for (let i = 0; i < 25; i++) errors = withError(errors, { at: i, level: 'warn', message: `m${i}` });
  assert.equal(errors.length, STATUS_ERRORS_KEPT);
  assert.equal(errors[0]!.message, 'm15');
  assert.equal(errors.at(-1)!.message, 'm24');
});

test('status for a person: identity, link, a service table, errors; a dead agent is said to be so', () => {
  const status = {
    v: 1 as const, agentVersion: '0.1.0', pid: 42, startedAt: 0,
    identity: { deviceId: 'dev-1', fleetId: 'acme', enrolledAt: 0 },
    link: { state: 'online', since: 0 },
    workload: { version: '7', status: 'degraded', error: null },
    services: [{ name: 'web', image: 'nginx:1', state: 'backoff', health: 'none', restartCount: 3, lastError: { code: 'CONTAINER_EXITED', message: 'exit 1' } }],
    lastErrors: [{ at: 0, level: 'error' as const, code: 'RUNTIME_UNAVAILABLE', message: 'engine gone' }],
  };
  const text = renderStatus(status, true, 90_000);
  assert.match(text, /agent\s+running \(pid 42, version 0\.1\.0, up 90 s\)/);
  assert.match(text, /device\s+dev-1/);
  assert.match(text, /link\s+online for 90 s/);
  assert.match(text, /desired version 7: degraded/);
  assert.match(text, /web\s+backoff\s+none\s+3\s+nginx:1\s+CONTAINER_EXITED: exit 1/);
  assert.match(text, /RUNTIME_UNAVAILABLE: engine gone/);
  assert.match(renderStatus(status, false, 0), /NOT RUNNING/);
  assert.match(renderStatus({ ...status, identity: null }, true, 0), /not enrolled yet/);
});

test('status and doctor say who holds the state directory, or which stale claims the next start removes', () => {
  const holder: ClaimReading = { name: claimName(812), pid: 812, read: 'ok', claim: { v: 1, pid: 812, startTicks: 9, bootId: 'b', since: Date.UTC(2026, 11, 7, 23, 40), command: 'node tsunagu-agent.js run' } };
  const held: LockReport = { state: 'held', holder };
  const stale: LockReport = { state: 'free', stale: [{ kind: 'stale', reading: holder, reason: 'process 812 is gone' }] };
  const status = {
    v: 1 as const, agentVersion: '0.1.0', pid: 812, startedAt: 0, identity: null, link: { state: 'online', since: 0 },
    workload: null, services: [], lastErrors: [],
  };
  assert.match(renderStatus(status, true, 0, held), /lock\s+state directory held by pid 812 \(node tsunagu-agent\.js run\) since 2026-12-07T23:40:00\.000Z/);
  assert.match(renderStatus(status, false, 0, stale), /lock\s+state directory free; stale claim of pid 812 \(process 812 is gone\), removed at the next start/);
  assert.deepEqual(lockSummary(held), { state: 'held', pid: 812, command: 'node tsunagu-agent.js run', since: Date.UTC(2026, 11, 7, 23, 40) });
  assert.deepEqual(lockSummary(stale), { state: 'free', stale: [{ pid: 812, reason: 'process 812 is gone' }] });

  assert.deepEqual(judgeLock('/var/lib/tsunagu', held), { check: 'lock', verdict: 'ok', detail: '/var/lib/tsunagu: held by pid 812 (node tsunagu-agent.js run) since 2026-12-07T23:40:00.000Z' });
  assert.equal(judgeLock('/var/lib/tsunagu', stale).detail, '/var/lib/tsunagu: no agent runs on it; left over by pid 812 (process 812 is gone), removed at the next start');
  assert.equal(judgeLock('/var/lib/tsunagu', { state: 'free', stale: [] }).detail, '/var/lib/tsunagu: no agent runs on it');
  const unreadable = judgeLock('/var/lib/tsunagu', { state: 'unknown', error: 'EACCES' });
  assert.equal(unreadable.verdict, 'warn');
  assert.match(unreadable.fix ?? '', /as root or as the tsunagu user/);
});

test('doctor verdicts say what to fix; the exit code is the worst verdict', () => {
  assert.equal(judgeDisk('disk', '/x', { freeBytes: 10 * MIB, totalBytes: 1000 * MIB }).verdict, 'fail');
  assert.equal(judgeDisk('disk', '/x', { freeBytes: 200 * MIB, totalBytes: 1000 * MIB }).verdict, 'warn');
  assert.equal(judgeDisk('disk', '/x', { freeBytes: 900 * MIB, totalBytes: 1000 * MIB }).verdict, 'ok');
  assert.equal(judgeMemory({ availableBytes: 16 * MIB, totalBytes: 512 * MIB }).verdict, 'fail');
  assert.equal(judgeMemory({ availableBytes: 40 * MIB, totalBytes: 512 * MIB }).verdict, 'warn');
  assert.equal(judgeClock({ mode: 'auto', synchronised: false, now: 0 }).verdict, 'warn');
  assert.equal(judgeClock({ mode: 'always', synchronised: false, now: 0 }).verdict, 'fail');
  assert.equal(judgeClock({ mode: 'auto', synchronised: true, now: Date.UTC(2025, 0, 1) }).verdict, 'ok');
  assert.match(String(judgeClock({ mode: 'auto', synchronised: false, now: Date.UTC(2025, 0, 1) }).fix), /timedatectl/);
  assert.match(String(judgeEngine('/s', { error: 'connect EACCES /s', code: 'EACCES' }).fix), /usermod -aG docker tsunagu/);
  assert.match(String(judgeEngine('/s', { error: 'connect ENOENT /s', code: 'ENOENT' }).fix), /apt-get install docker\.io/);
  assert.equal(judgeBroker({ kind: 'probe', url: 'mqtt://b', outcome: 'refused', returnCode: 5, tls: false }).verdict, 'fail');
  assert.equal(judgeBroker({ kind: 'agent-online', url: 'mqtt://b', since: 0, now: 1000 }).verdict, 'ok');
  const results = [judgeMemory({ availableBytes: 400 * MIB, totalBytes: 512 * MIB }), judgeClock({ mode: 'auto', synchronised: false, now: Date.UTC(2025, 0, 1) })];
  assert.equal(doctorExitCode(results), 1);
  assert.equal(doctorExitCode([...results, judgeEngine('/s', { error: 'x' })]), 2);
  assert.equal(doctorExitCode([results[0]!]), 0);
  assert.match(renderDoctor(results), /\[WARN\] clock[\s\S]*→ enable NTP/);
});

test('the CONNECT packet: MQTT 3.1.1 and 5, username and password, clean session off', () => {
  const v4 = connectPacket({ protocolVersion: 4, clientId: 'dev', username: 'u', password: 'p' });
  assert.deepEqual([...v4], [0x10, 21, 0, 4, 77, 81, 84, 84, 4, 0xc0, 0, 30, 0, 3, 100, 101, 118, 0, 1, 117, 0, 1, 112]);
  assert.equal(v4[0], 0x10);
  assert.equal(v4[1], v4.length - 2);
  assert.equal(v4.subarray(2, 8).toString('latin1'), '\u0000\u0004MQTT');
  assert.equal(v4[8], 4);
  assert.equal(v4[9], 0xc0); // username + password, no clean session, no will
  const v5 = connectPacket({ protocolVersion: 5, clientId: 'dev', username: 'u', password: 'p' });
  assert.equal(v5[8], 5);
  // Properties: only the session expiry the agent's own link asks for (else the broker drops the session at close).
  assert.deepEqual([...v5.subarray(12, 18)], [5, 0x11, ...[...Buffer.from([0, 0, 0, 0])].map((_, i) => (DEVICE_SESSION_EXPIRY_SECONDS >>> (24 - 8 * i)) & 0xff)]);
  assert.equal(v5.length, v4.length + 6);
  const long = connectPacket({ protocolVersion: 4, clientId: 'd', username: 'u', password: 'x'.repeat(200) });
  assert.equal(long[1]! & 0x80, 0x80); // a remaining length over 127 takes two bytes
  assert.equal((long[1]! & 0x7f) + long[2]! * 128, long.length - 3);
});
