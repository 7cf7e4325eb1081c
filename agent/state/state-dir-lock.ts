import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TsunaguError } from '../../protocol/errors.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { claimName, claimPid, decideLock, describeHolder, LockClaimSchema, reportLock, type ClaimReading, type LockClaim, type LockReport, type ProcessView } from './state-lock.js';

/** /proc as the lock needs it: this boot's id and a process's start time. */
export function procView(): ProcessView {
  let bootId = '';
  try {
    bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // Not Linux: every claim then carries the same empty id, and the start time alone decides.
  }
  // Without /proc (a chroot that did not mount it) no start time can be read: then a pid that
  // exists counts as the holder, which can only delay a start, never let two agents run.
  return { bootId, startTicks: processStartTicks(process.pid) === undefined ? (pid) => (pidExists(pid) ? 0 : undefined) : processStartTicks };
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The start time of the process `pid` (see statStartTicks), or undefined when there is none. */
export function processStartTicks(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return statStartTicks(stat);
}

/** Field 22 of a /proc/<pid>/stat line; the command name (field 2) may hold spaces and parentheses, so fields count from the last ')'. */
export function statStartTicks(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const field = stat.slice(close + 2).split(' ')[22 - 3];
  const ticks = field === undefined || !/^[0-9]+$/.test(field) ? NaN : Number(field);
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}

function readClaims(stateDir: string, except?: string): ClaimReading[] {
  const readings: ClaimReading[] = [];
  for (const name of readdirSync(stateDir)) {
    const pid = claimPid(name);
    if (pid === undefined || name === except) continue;
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(stateDir, name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue; // withdrawn or removed while listing
      if (code === 'EACCES' || code === 'EPERM') {
        readings.push({ name, pid, read: 'forbidden' });
        continue;
      }
      throw err;
    }
    try {
      readings.push({ name, pid, read: 'ok', claim: checkSchema(LockClaimSchema, parseJsonBytes(bytes), name) });
    } catch {
      readings.push({ name, pid, read: 'corrupt' });
    }
  }
  return readings;
}

function unlinkIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** The lock of one state directory, held by this process until release() or its exit. */
export interface StateDirLock {
  /** The claims of processes that were gone, removed while taking the lock (for the log). */
  readonly tookOver: { pid: number; reason: string }[];
  release(): void;
}

/**
 * Take the state directory for this process, or throw STATE_DIR_LOCKED naming
 * the process that holds it (see state-lock.ts for why this is safe without flock).
 * Released on release() and at the process's exit; a killed holder's claim is stale.
 */
export function acquireStateDirLock(stateDir: string, options: { command: string; now?: () => number; view?: ProcessView }): StateDirLock {
  const view = options.view ?? procView();
  const pid = process.pid;
  const own = claimName(pid);
  const ownPath = join(stateDir, own);
  const startTicks = view.startTicks(pid) ?? 0;
  const claim: LockClaim = { v: 1, pid, startTicks, bootId: view.bootId, since: (options.now ?? Date.now)(), command: options.command };
  // Readable beside a 0700 directory: a root `doctor` reads it anyway, and another user's agent can then name its holder.
  writeFileAtomic(ownPath, `${JSON.stringify(claim)}\n`, 0o644);
  let decision;
  try {
    decision = decideLock(readClaims(stateDir, own), view);
    for (const stale of decision.removeStale) unlinkIfThere(join(stateDir, stale.reading.name));
  } catch (err) {
    unlinkIfThere(ownPath);
    throw err;
  }
  if (decision.kind === 'refused') {
    unlinkIfThere(ownPath);
    const holder = decision.holder;
    throw new TsunaguError('STATE_DIR_LOCKED', `${stateDir} is in use by another agent: ${describeHolder(holder)}. Stop that one first (systemctl stop tsunagu-agent), or give this one its own --state-dir`, {
      stateDir, pid: holder.pid, ...(holder.read === 'ok' ? { command: holder.claim.command, since: holder.claim.since } : {}),
    });
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    try {
      unlinkIfThere(ownPath);
    } catch {
      // The claim stays behind, and is stale once this process is gone.
    }
  };
  process.on('exit', release);
  return { tookOver: decision.removeStale.map((v) => ({ pid: v.reading.pid, reason: v.reason })), release };
}

/** Who holds `stateDir` now, without taking or changing anything (doctor, status). */
export function readStateDirLock(stateDir: string, view: ProcessView = procView()): LockReport {
  try {
    return reportLock(readClaims(stateDir), view);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return { state: 'free', stale: [] };
    return { state: 'unknown', error: e.code ?? e.message };
  }
}
