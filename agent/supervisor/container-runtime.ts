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
 * Every call takes an AbortSignal: shutdown and a newer desired state
 * interrupt work in flight.
 */
export interface ContainerRuntime {
  /** Containers carrying the ownership labels of `scope`, inspected. Others are never returned. */
  listOwnedContainers(scope: string, signal?: AbortSignal): Promise<ActualContainer[]>;
  /** One owned container of `scope`; undefined when it does not exist or is not owned by `scope`. */
  inspectContainer(id: string, scope: string, signal?: AbortSignal): Promise<ActualContainer | undefined>;
  /** undefined when the image is not present locally. */
  inspectImage(ref: string, signal?: AbortSignal): Promise<LocalImage | undefined>;
  pullImage(ref: string, options: { auth?: RegistryAuth; onProgress?: (p: PullProgress) => void; signal?: AbortSignal }): Promise<void>;
  /** Returns the new container's id. */
  createContainer(name: string, options: ContainerCreateOptions, signal?: AbortSignal): Promise<string>;
  /** A start refused because the container's runtime state is stale (runtime-state.ts) throws RUNTIME_FAILED with `details.staleRuntimeState`. */
  startContainer(idOrName: string, signal?: AbortSignal): Promise<void>;
  stopContainer(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  removeContainer(id: string, signal?: AbortSignal): Promise<void>;
  /** Follow events of owned containers until `signal` aborts or the stream ends (engine restart): then it resolves. */
  watchEvents(scope: string, onEvent: (e: RuntimeEvent) => void, signal: AbortSignal): Promise<void>;
}
