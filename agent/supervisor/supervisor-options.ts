import type { BackoffStore } from './backoff-store.js';
import type { ContainerRuntime, RegistryAuth } from './container-runtime.js';
import type { BackoffPolicy } from './restart-backoff.js';
import type { SupervisorEvent, SupervisorState } from './supervisor-events.js';

import type { Clock } from '../clock.js';

export type { Clock };

/** What a supervisor is given: its engine, a clock, a logger, policies and the callbacks it reports through. */

/** The subset of pino the supervisor uses. */
export interface SupervisorLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A pull about to start, as a pull guard sees it. */
export interface PullRequest {
  service: string;
  image: string;
  /** Images of the service's older containers: what it runs now, or ran until a kill-then-download took it down. */
  oldImages: string[];
  /** The old containers are gone already (kill-then-download, declared or switched to): their images may go too if room is short. */
  oldContainersGone: boolean;
}

/**
 * A pull guard's answer: `go`; `kill-first`, the new image fits only once the
 * old container and image are gone (the supervisor switches this update to
 * kill-then-download and asks again); `short`, it does not fit even then
 * (not pulled: NO_SPACE, retried with the pull back-off).
 */
export type PullClearance = { kind: 'go' } | { kind: 'kill-first'; reason: string } | { kind: 'short'; reason: string };

/** Decides, before each pull, whether the disk can hold it (agent/images/pull-guard.ts). */
export interface PullGuard {
  /** Runs beside the passes, like the pull itself; must not throw (a guard that cannot decide says `go`). */
  clear(request: PullRequest, signal: AbortSignal): Promise<PullClearance>;
}

/** Everything a supervisor needs, in one object; only `runtime` is required. */
export interface SupervisorOptions {
  runtime: ContainerRuntime;
  logger?: SupervisorLogger;
  /** Default: Date.now. */
  clock?: Clock;
  /** Only containers labelled with this scope are seen and touched. Default `default`. */
  scope?: string;
  /** Lifecycle events; pull progress at most once a second per image. Must not throw (a throw is logged and ignored). */
  onEvent?: (event: SupervisorEvent) => void;
  /** Called when the state changes, not on every pass. */
  onState?: (state: SupervisorState) => void;
  /** Default DEFAULT_RESTART_BACKOFF (2 s doubling to 5 min, reset after 10 min up). */
  restartBackoff?: BackoffPolicy;
  /** Default DEFAULT_PULL_BACKOFF (500 ms doubling to 5 min). */
  pullBackoff?: BackoffPolicy;
  /** A pull that does not move forward for this long fails with PULL_FAILED and is retried; 0: no deadline. Default DEFAULT_PULL_STALL_MS (5 min). */
  pullStallMs?: number;
  /** Keeps crash-loop back-off across agent restarts; without it a restart forgets it. */
  backoffStore?: BackoffStore;
  /** Labels this device carries, matched against `x-tsunagu.requires`. */
  deviceLabels?: Iterable<string>;
  /** Probation of a new configuration after it starts (health-gated rollout); 0 or absent: off. */
  probationMs?: number;
  /**
   * A version passed its probations: from now on it is the one a rollback
   * returns to. The caller keeps its document (sealed) and hands it back
   * through `restoreProven` after a restart. Must not throw.
   */
  onProven?: (version: string) => void;
  registryAuth?: (image: string) => RegistryAuth | undefined;
  /** Services an operator stopped under `version` before this start (persisted by the caller): they stay down while that version is applied. */
  held?: { version: string; services: Iterable<string> };
  /** Called when the set of operator-stopped services changes, so the caller can persist it with the version it holds for. */
  onHeldChange?: (held: { version: string | null; services: string[] }) => void;
  /** Asked before every pull whether the disk can hold it; without one, every pull goes ahead. */
  pullGuard?: PullGuard;
}
