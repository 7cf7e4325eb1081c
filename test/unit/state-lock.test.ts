import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { acquireStateDirLock, procView, processStartTicks, readStateDirLock, statStartTicks } from '../../agent/state/state-dir-lock.js';
import { claimName, claimPid, decideLock, describeHolder, judgeClaim, reportLock, type ClaimReading, type LockClaim, type ProcessView } from '../../agent/state/state-lock.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { tempDirs } from '../support/temp-dirs.js';

const BOOT = 'b0a7-1';
/** A machine where pid 100 started at tick 5000 and pid 200 at tick 7000; nothing else runs. */
const view: ProcessView = { bootId: BOOT, startTicks: (pid) => ({ 100: 5000, 200: 7000 } as Record<number, number>)[pid] };

function claim(pid: number, over: Partial<LockClaim> = {}): ClaimReading {
  return { name: claimName(pid), pid, read: 'ok', claim: { v: 1, pid, startTicks: 5000, bootId: BOOT, since: Date.UTC(2026, 11, 7, 23, 0), command: 'node tsunagu-agent.js run', ...over } };
}

test('a claim is live only while its process runs in this boot with the start time it wrote', () => {
  assert.equal(judgeClaim(claim(100), view).kind, 'live');
  assert.deepEqual(judgeClaim(claim(100, { bootId: 'before' }), view), { kind: 'stale', reading: claim(100, { bootId: 'before' }), reason: 'written before the last reboot' });
  assert.equal(judgeClaim(claim(300), view).kind, 'stale', 'no process 300');
  const reused = judgeClaim(claim(200, { startTicks: 5000 }), view);
  assert.equal(reused.kind, 'stale');
  assert.match(reused.kind === 'stale' ? reused.reason : '', /pid 200 now belongs to another process/);
  assert.equal(judgeClaim({ name: claimName(100), pid: 100, read: 'corrupt' }, view).kind, 'stale', 'a claim is renamed in whole: a torn one is from a power cut');
});

test("a claim this user cannot read counts as live while its pid runs: a wrong 'stale' would run two agents", () => {
  assert.equal(judgeClaim({ name: claimName(200), pid: 200, read: 'forbidden' }, view).kind, 'live');
  assert.equal(judgeClaim({ name: claimName(300), pid: 300, read: 'forbidden' }, view).kind, 'stale');
});

test('the lock is refused while another live claim exists, and stale claims are removed either way', () => {
  const stale = claim(300);
  const held = decideLock([stale], view);
  assert.equal(held.kind, 'held');
  assert.deepEqual(held.removeStale.map((s) => s.reading.pid), [300]);
  const refused = decideLock([stale, claim(100)], view);
  assert.equal(refused.kind, 'refused');
  assert.equal(refused.kind === 'refused' ? refused.holder.pid : 0, 100);
  assert.deepEqual(refused.removeStale.map((s) => s.reading.pid), [300]);
  assert.equal(decideLock([], view).kind, 'held');
});

test('doctor and status name the holder, or the stale claims left behind', () => {
  const held = reportLock([claim(300), claim(100)], view);
  assert.equal(held.state, 'held');
  assert.equal(describeHolder(held.state === 'held' ? held.holder : claim(0)), 'pid 100 (node tsunagu-agent.js run) since 2026-12-07T23:00:00.000Z');
  const free = reportLock([claim(300)], view);
  assert.deepEqual(free.state === 'free' ? free.stale.map((s) => [s.reading.pid, s.reason]) : [], [[300, 'process 300 is gone']]);
  assert.match(describeHolder({ name: claimName(7), pid: 7, read: 'forbidden' }), /pid 7 .*not readable by this user/);
});

test('claim names carry the pid; other names are not claims', () => {
  assert.equal(claimPid(claimName(812)), 812);
  assert.equal(claimPid('agent-812.lock.bad'), undefined);
  assert.equal(claimPid('.agent-812.lock.812.tmp'), undefined);
  assert.equal(claimPid('agent.lock'), undefined);
});

test('the start time is field 22 of /proc/<pid>/stat, counted after the command name even when it holds spaces and parentheses', () => {
  const rest = 'S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 424242 1000 10 18446744073709551615';
  assert.equal(statStartTicks(`812 (node) ${rest}`), 424242);
  assert.equal(statStartTicks(`812 (my) (agent ) x) ${rest}`), 424242);
  assert.equal(statStartTicks('812 (node) S 1'), undefined);
  assert.equal(typeof processStartTicks(process.pid), 'number');
  assert.equal(processStartTicks(process.pid), processStartTicks(process.pid));
});

const stateDir = tempDirs('state-lock-');

/** A claim as another process would have written it. */
function writeClaim(dir: string, pid: number, startTicks: number, bootId = procView().bootId): void {
  writeFileSync(join(dir, claimName(pid)), JSON.stringify({ v: 1, pid, startTicks, bootId, since: 1_700_000_000_000, command: `other ${pid}` }));
}

test('on a real directory: a live holder (the parent process) refuses with STATE_DIR_LOCKED and keeps its claim; ours is withdrawn', () => {
  const dir = stateDir();
  writeClaim(dir, process.ppid, processStartTicks(process.ppid)!);
  assert.throws(() => acquireStateDirLock(dir, { command: 'test' }), (e) => {
    assert.ok(isTsunaguError(e, 'STATE_DIR_LOCKED'), "isTsunaguError(e, 'STATE_DIR_LOCKED')");
    assert.equal(e.details?.pid, process.ppid);
    assert.match(e.message, new RegExp(`in use by another agent: pid ${process.ppid} \\(other ${process.ppid}\\) since`));
    return true;
  });
  assert.deepEqual(readdirSync(dir), [claimName(process.ppid)]);
});

test('on a real directory: the claims of a killed holder (pid reused) and of the last boot are taken over; release removes ours', () => {
  const dir = stateDir();
  writeClaim(dir, process.ppid, processStartTicks(process.ppid)! + 1);
  writeClaim(dir, 1, processStartTicks(1) ?? 0, 'another-boot');
  writeFileSync(join(dir, 'status.json'), '{}');
  const lock = acquireStateDirLock(dir, { command: 'node tsunagu-agent.js run', now: () => 1_800_000_000_000 });
  assert.deepEqual(lock.tookOver.map((t) => t.pid).sort((a, b) => a - b), [1, process.ppid].sort((a, b) => a - b));
  assert.deepEqual(readdirSync(dir).sort(), [claimName(process.pid), 'status.json']);
  const mine = JSON.parse(readFileSync(join(dir, claimName(process.pid)), 'utf8')) as LockClaim;
  assert.deepEqual(mine, { v: 1, pid: process.pid, startTicks: processStartTicks(process.pid), bootId: procView().bootId, since: 1_800_000_000_000, command: 'node tsunagu-agent.js run' });
  const report = readStateDirLock(dir);
  assert.equal(report.state === 'held' ? report.holder.pid : undefined, process.pid);
  lock.release();
  assert.equal(existsSync(join(dir, claimName(process.pid))), false);
  assert.deepEqual(readStateDirLock(dir), { state: 'free', stale: [] });
  assert.deepEqual(readStateDirLock(join(dir, 'missing')), { state: 'free', stale: [] });
});
