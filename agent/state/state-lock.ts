import * as z from 'zod/mini';

/*
 * The state directory's lock: which agent may write there. Decisions only;
 * state-dir-lock.ts reads the files and /proc and carries them out.
 *
 * Node has no flock(), so the lock is a set of claim files, one per process
 * that wants the directory (`agent-<pid>.lock`, written whole by rename).
 * A process writes its claim, then lists the others: it holds the lock when
 * no other claim belongs to a live process, else it withdraws its claim and
 * refuses. Two processes cannot both hold it: each lists after its own claim
 * is in place, so the later of the two lists sees the earlier's claim. Two
 * that start at the same instant may both see each other and both refuse; a
 * refusal is retried (systemd restarts the unit), an agent running twice is
 * what must never happen. No claim is ever replaced in place, so taking over
 * a stale one needs no compare-and-swap: stale claims are simply deleted.
 *
 * A claim is stale when its process is gone: the boot it was written in is
 * over (boot id), or its pid now belongs to another process (start time,
 * field 22 of /proc/<pid>/stat) — after a power cut, the same pid is likely
 * again on a board that boots the same way every time.
 */

export const LockClaimSchema = z.object({
  v: z.literal(1),
  pid: z.int().check(z.positive()),
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat, field 22). */
  startTicks: z.int().check(z.nonnegative()),
  /** /proc/sys/kernel/random/boot_id when the claim was written. */
  bootId: z.string(),
  /** When the claim was written, ms since the epoch. */
  since: z.int(),
  /** The holder's command line, for a person reading doctor's answer. */
  command: z.string(),
});
export type LockClaim = z.infer<typeof LockClaimSchema>;

const CLAIM_NAME = /^agent-([0-9]{1,10})\.lock$/;

export function claimName(pid: number): string {
  return `agent-${pid}.lock`;
}

/** The pid a claim file's name carries, or undefined when `name` is not a claim. */
export function claimPid(name: string): number | undefined {
  const m = CLAIM_NAME.exec(name);
  return m === null ? undefined : Number(m[1]);
}

/** One claim file as read: its record, or why it has none. */
export type ClaimReading =
  | { name: string; pid: number; read: 'ok'; claim: LockClaim }
  /** Read, but not a claim: a power cut before the bytes reached the card (a claim is renamed in whole). */
  | { name: string; pid: number; read: 'corrupt' }
  /** Not readable by this user: another user's agent (root started one by hand). */
  | { name: string; pid: number; read: 'forbidden' };

/** What the adapter tells about the machine now. */
export interface ProcessView {
  bootId: string;
  /** The start time (field 22) of the process `pid`, or undefined when there is none. */
  startTicks(pid: number): number | undefined;
}

export interface StaleClaim { kind: 'stale'; reading: ClaimReading; reason: string }
export type ClaimVerdict = { kind: 'live'; reading: ClaimReading } | StaleClaim;

export function judgeClaim(reading: ClaimReading, view: ProcessView): ClaimVerdict {
  const ticks = view.startTicks(reading.pid);
  switch (reading.read) {
    case 'corrupt':
      return { kind: 'stale', reading, reason: 'unreadable (cut short by a power cut)' };
    case 'forbidden':
      // Nothing to compare: the pid alone. A wrong "live" only delays a start; a wrong "stale" runs two agents.
      return ticks === undefined ? { kind: 'stale', reading, reason: `process ${reading.pid} is gone` } : { kind: 'live', reading };
    case 'ok': {
      const { claim } = reading;
      if (claim.bootId !== view.bootId) return { kind: 'stale', reading, reason: 'written before the last reboot' };
      if (ticks === undefined) return { kind: 'stale', reading, reason: `process ${claim.pid} is gone` };
      if (ticks !== claim.startTicks) return { kind: 'stale', reading, reason: `pid ${claim.pid} now belongs to another process` };
      return { kind: 'live', reading };
    }
  }
}

export type LockDecision =
  | { kind: 'held'; removeStale: StaleClaim[] }
  | { kind: 'refused'; holder: ClaimReading; removeStale: StaleClaim[] };

/** After writing its own claim: the claims of others decide. Stale ones are removed either way. */
export function decideLock(others: readonly ClaimReading[], view: ProcessView): LockDecision {
  const verdicts = others.map((r) => judgeClaim(r, view));
  const removeStale = verdicts.filter((v): v is StaleClaim => v.kind === 'stale');
  const live = verdicts.find((v) => v.kind === 'live');
  return live === undefined ? { kind: 'held', removeStale } : { kind: 'refused', holder: live.reading, removeStale };
}

/** For doctor and status: who holds the directory, as a person reads it. */
export type LockReport =
  | { state: 'held'; holder: ClaimReading }
  | { state: 'free'; stale: StaleClaim[] }
  | { state: 'unknown'; error: string };

export function reportLock(claims: readonly ClaimReading[], view: ProcessView): LockReport {
  const verdicts = claims.map((r) => judgeClaim(r, view));
  const live = verdicts.find((v) => v.kind === 'live');
  if (live !== undefined) return { state: 'held', holder: live.reading };
  return { state: 'free', stale: verdicts.filter((v): v is StaleClaim => v.kind === 'stale') };
}

/** "pid 812 (node tsunagu-agent.js run …) since 2026-12-07T23:40:00.000Z" */
export function describeHolder(holder: ClaimReading): string {
  if (holder.read !== 'ok') return `pid ${holder.pid} (its claim ${holder.name} is not readable by this user)`;
  return `pid ${holder.pid} (${holder.claim.command}) since ${new Date(holder.claim.since).toISOString()}`;
}

/** The lock as `status --json` gives it to scripts. */
export function lockSummary(report: LockReport): Record<string, unknown> {
  switch (report.state) {
    case 'held': {
      const h = report.holder;
      return { state: 'held', pid: h.pid, ...(h.read === 'ok' ? { command: h.claim.command, since: h.claim.since } : {}) };
    }
    case 'free': return { state: 'free', stale: report.stale.map((s) => ({ pid: s.reading.pid, reason: s.reason })) };
    case 'unknown': return { state: 'unknown', error: report.error };
  }
}
