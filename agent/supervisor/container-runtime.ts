import type { ContainerCreateOptions } from 'dockerode';
import type { ActualContainer, HealthStatus, LocalImage } from './actual-state.js';

/** Credentials for one registry, as the engine takes them. */
export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

/** Progress of one pull, summed over its layers, and the engine's event it was last moved by. */
export interface PullProgress {
  image: string;
  /** Bytes downloaded so far over the layers the engine reported sizes for. */
  currentBytes: number;
  totalBytes: number;
  status: string;
  /** What the event is about (a layer's short id); null for an event about the whole pull. */
  id: string | null;
  /** The event's own count over that item (bytes downloaded or extracted of `total`), when it gives one. */
  progress: { current: number; total: number } | null;
}

/** A change of one owned container, from the engine's event stream. */
export interface RuntimeEvent {
  action: 'create' | 'start' | 'die' | 'stop' | 'kill' | 'destroy' | 'oom' | 'health_status' | 'other';
  containerId: string;
  service: string;
  exitCode: number | null;
  health: HealthStatus | null;
}

/**
 * The container engine, as the supervisor needs it. One real adapter
 * (docker-runtime.ts); everything above it is testable without an engine.
 * The promises below are checked, against every adapter, by one contract
 * suite (test/contract/container-runtime.contract.ts).
 *
 * Every call takes an AbortSignal: shutdown and a newer desired state
 * interrupt work in flight; a call under an aborted signal throws CANCELLED.
 * An engine that cannot be reached throws RUNTIME_UNAVAILABLE (the supervisor
 * reports the device failed and waits); any other refusal of the engine is
 * RUNTIME_FAILED (the step failed, the service backs off).
 */
export interface ContainerRuntime {
  /**
   * Containers carrying the ownership labels of `scope`, inspected. Others are never returned.
   * One removed between the listing and its inspection is left out, not an error.
   */
  listOwnedContainers(scope: string, signal?: AbortSignal): Promise<ActualContainer[]>;
  /** One owned container of `scope` (by id or name); undefined when it does not exist or is not owned by `scope`. */
  inspectContainer(id: string, scope: string, signal?: AbortSignal): Promise<ActualContainer | undefined>;
  /** undefined when the image is not present locally. For a reference pinned by digest, `digest` is that one. */
  inspectImage(ref: string, signal?: AbortSignal): Promise<LocalImage | undefined>;
  /**
   * Resolves once the engine holds the image. A failed pull throws PULL_FAILED (an unknown tag or
   * repository among them), NO_SPACE or DIGEST_MISMATCH; an aborted one CANCELLED, never success.
   */
  pullImage(ref: string, options: { auth?: RegistryAuth; onProgress?: (p: PullProgress) => void; signal?: AbortSignal }): Promise<void>;
  /**
   * Returns the new container's id; `options` are kept as given (labels, restart policy, log caps).
   * Never pulls: an image the engine lacks throws RUNTIME_FAILED, as does a name in use.
   */
  createContainer(name: string, options: ContainerCreateOptions, signal?: AbortSignal): Promise<string>;
  /**
   * Starting a running container succeeds and leaves it as it is; a missing one throws RUNTIME_FAILED.
   * A start refused because the container's runtime state is stale (runtime-state.ts) throws RUNTIME_FAILED with `details.staleRuntimeState`.
   */
  startContainer(idOrName: string, signal?: AbortSignal): Promise<void>;
  /**
   * Sends the container's stop signal and resolves once it has ended, killed when still alive after
   * `timeoutMs`. A container already stopped, or gone, is no error.
   */
  stopContainer(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Removes it even while running, with its anonymous volumes; named volumes stay (they hold data). A container gone is no error. */
  removeContainer(id: string, signal?: AbortSignal): Promise<void>;
  /**
   * Follow events of owned containers of `scope` (no others) until `signal` aborts or the stream
   * ends (the engine went away or restarts): then it resolves, and the caller reads the state again,
   * since events may have been missed. An engine unreachable from the start throws RUNTIME_UNAVAILABLE.
   */
  watchEvents(scope: string, onEvent: (e: RuntimeEvent) => void, signal: AbortSignal): Promise<void>;
}
