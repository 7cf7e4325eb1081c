import type { ActualState } from './actual-state.js';
import type { DesiredService } from '../../protocol/compose/desired-service.js';
import type { BackoffState } from './restart-backoff.js';

/**
 * Health-gated rollout. A service whose configuration changed with a new
 * version is on probation from the moment its new container starts: if it
 * exits (other than a job's clean finish) or turns unhealthy before
 * `probationMs` have passed, its new configuration has failed and the
 * supervisor puts the previous one back. It passes once it has run that
 * long (and, with a healthcheck, is healthy). Pure.
 */
export type ProbationVerdict =
  | { service: string; outcome: 'passed' }
  | { service: string; outcome: 'failed'; reason: string };

export interface ProbationInputs {
  actual: ActualState;
  /** The services as run now. */
  services: DesiredService[];
  /** Service name → config hash under probation. */
  onProbation: ReadonlyMap<string, string>;
  restartBackoff: BackoffState;
  now: number;
  probationMs: number;
}

const isJob = (s: DesiredService): boolean => s.restart.name === 'no' || s.restart.name === 'on-failure';

export function judgeProbation(inputs: ProbationInputs): { verdicts: ProbationVerdict[]; nextCheckAt: number | null } {
  const { actual, now, probationMs } = inputs;
  const verdicts: ProbationVerdict[] = [];
  let nextCheckAt: number | null = null;
  const secs = `${Math.round(probationMs / 1000)} s`;
  for (const s of inputs.services) {
    const hash = inputs.onProbation.get(s.name);
    if (hash === undefined) continue;
    const mine = actual.containers.filter((c) => c.service === s.name && c.configHash === hash && c.startedAt !== null)
      .sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0))[0];
    // An exit already counted and restarted since still shows in the back-off of this configuration.
    const crashes = inputs.restartBackoff[s.name];
    if (crashes !== undefined && crashes.configHash === hash && crashes.failures > 0) {
      // A failed step (create, start, stop…) counts in the back-off too, without an exit code: unless
      // the engine shows this configuration's container exited, it is not called an exit.
      const code = crashes.lastExitCode ?? (mine?.status === 'exited' ? mine.exitCode : null);
      const what = code === null ? 'a step on it failed' : `exited with code ${code}`;
      verdicts.push({ service: s.name, outcome: 'failed', reason: `${what} within the probation window (${secs})` });
      continue;
    }
    if (mine === undefined || mine.startedAt === null) continue; // not started yet: the window has not begun
    if (mine.status === 'exited') {
      if (isJob(s) && mine.exitCode === 0) verdicts.push({ service: s.name, outcome: 'passed' });
      else verdicts.push({ service: s.name, outcome: 'failed', reason: `exited with code ${mine.exitCode ?? 'unknown'} within the probation window (${secs})` });
      continue;
    }
    if (mine.health === 'unhealthy') {
      verdicts.push({ service: s.name, outcome: 'failed', reason: `unhealthy within the probation window (${secs})` });
      continue;
    }
    const endsAt = mine.startedAt + probationMs;
    if (now >= endsAt && mine.status === 'running' && mine.health !== 'starting') {
      verdicts.push({ service: s.name, outcome: 'passed' });
      continue;
    }
    // Still within the window, or past it and the healthcheck has not decided yet (its next event wakes us).
    if (now < endsAt) nextCheckAt = Math.min(nextCheckAt ?? endsAt, endsAt);
  }
  return { verdicts, nextCheckAt };
}

/** Services whose configuration differs from the last good version's (new ones included): these go on probation. */
export function servicesToProbe(services: DesiredService[], lastGood: ReadonlyMap<string, string> | undefined, hashOf: (s: DesiredService) => string): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of services) {
    const hash = hashOf(s);
    if (lastGood?.get(s.name) !== hash) out.set(s.name, hash);
  }
  return out;
}

/**
 * After an agent restart: the services whose probation was running, to be
 * judged on from when their containers started (the engine keeps that). A
 * service is on probation again when its container runs the desired
 * configuration, was created by this very version (its version label), and
 * that configuration is not the last proven version's: exactly those a
 * create under this version put on probation before the restart. Pure.
 */
export function resumedProbation(
  actual: ActualState, services: DesiredService[], version: string, lastGood: ReadonlyMap<string, string> | undefined, hashOf: (s: DesiredService) => string,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of services) {
    const hash = hashOf(s);
    if (lastGood?.get(s.name) === hash) continue;
    if (actual.containers.some((c) => c.service === s.name && c.configHash === hash && c.version === version)) out.set(s.name, hash);
  }
  return out;
}
