import type { ActualState } from './actual-state.js';
import type { DesiredService } from '../../protocol/compose/desired-service.js';
import type { ServiceReport } from './service-report.js';
import type { Step } from './steps.js';
import type { PullRequest } from './supervisor-options.js';

/**
 * A service being updated to a new image: the images its old containers run
 * (remembered past a kill-then-download that removed them), and why the
 * update was switched to kill-then-download when the disk is short.
 */
export interface UpdateNote {
  oldImages: string[];
  switched?: string;
}

type Updates = ReadonlyMap<string, UpdateNote>;

/** Remember what the old containers of a service about to pull run: a kill-then-download removes them before the pull. Pure. */
export function noteUpdates(updates: Updates, actual: ActualState, steps: readonly Step[]): Updates {
  let next = updates;
  for (const step of steps) {
    if (step.kind !== 'pull') continue;
    const old = [...new Set(actual.containers.filter((c) => c.service === step.service && c.image !== step.image).map((c) => c.image))];
    if (old.length === 0) continue;
    const known = next.get(step.service);
    next = new Map(next).set(step.service, { ...known, oldImages: [...new Set([...(known?.oldImages ?? []), ...old])] });
  }
  return next;
}

/** The disk is short: this update runs kill-then-download. Pure. */
export function switchToKillFirst(updates: Updates, service: string, reason: string): Updates {
  return new Map(updates).set(service, { oldImages: updates.get(service)?.oldImages ?? [], switched: reason });
}

/** Services whose update was switched to kill-then-download, with why. */
export function switchedUpdates(updates: Updates): Map<string, string> {
  return new Map([...updates].flatMap(([name, u]) => (u.switched === undefined ? [] : [[name, u.switched] as const])));
}

/** What a pull guard is asked before `step` downloads. Pure. */
export function pullRequest(
  step: Extract<Step, { kind: 'pull' }>, service: DesiredService | undefined, update: UpdateNote | undefined, live: ServiceReport | undefined,
): PullRequest {
  // Down already: declared kill-then-download, a switch made before, or no old container at all.
  const oldContainersGone = service?.tsunagu.update === 'kill-then-download' || update?.switched !== undefined || live?.containerId === null || live === undefined;
  return { service: step.service, image: step.image, oldImages: update?.oldImages ?? [], oldContainersGone };
}
