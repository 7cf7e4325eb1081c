import type { ActualState } from './actual-state.js';

/**
 * The engine's words for a container whose runtime state is left over from
 * before: containerd still holds a task (and its shim) or a container object
 * under the container's id, or runc a state directory. It happens when
 * dockerd stops while a start is in flight: after the restart the engine
 * shows the container `created` (or `exited`), and every start of it fails the
 * same way. dockerd clears a stale containerd container object by itself
 * (moby#38364), not a task. Removing the container and creating it anew gives
 * it a new id, and so a new task.
 */
const STALE_RUNTIME_STATE: readonly RegExp[] = [
  /\btask [0-9a-f]{12,64}: already exists\b/i, // containerd: a task under this id
  /\bcontainer "?[0-9a-f]{12,64}"?: already exists\b/i, // containerd: a container object under this id
  /\bcontainer with id exists\b/i, // runc: its state directory
  /\bid already in use\b/i, // containerd's shim: the id is registered
];

/** True when an engine error message says the container's runtime state is stale (see above). Pure. */
export function isStaleRuntimeState(message: string): boolean {
  return STALE_RUNTIME_STATE.some((re) => re.test(message));
}

/** A container whose start failed on stale runtime state: the supervisor replaces it. */
export interface StaleMark {
  service: string;
  /** The engine's message, for the event and the log. */
  reason: string;
}

/**
 * The marks keyed by container id. A mark made under a container's name (a
 * `start` that followed its `create` in the same plan) is resolved to the id
 * of the container of that name; marks of containers that are gone (replaced)
 * are dropped. Pure.
 */
export function resolveStale(actual: ActualState, marks: ReadonlyMap<string, StaleMark>): Map<string, StaleMark> {
  const out = new Map<string, StaleMark>();
  for (const [ref, mark] of marks) {
    const c = actual.containers.find((x) => x.id === ref) ?? actual.containers.find((x) => x.name === ref);
    if (c !== undefined && c.service === mark.service) out.set(c.id, mark);
  }
  return out;
}
