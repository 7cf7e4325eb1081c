/** What the engine reports, reduced to what the planner decides on. Built by the runtime adapter. */

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';
export type HealthStatus = 'none' | 'starting' | 'healthy' | 'unhealthy';

export interface ActualContainer {
  id: string;
  name: string;
  /** From the service label. */
  service: string;
  /** From the config-hash label; null on a container whose label was removed or mangled. */
  configHash: string | null;
  /** From the depends-on label. */
  dependsOn: string[];
  /** The desired-state version that created it. */
  version: string | null;
  /** The reference it was created from, as given. */
  image: string;
  imageId: string;
  status: ContainerStatus;
  health: HealthStatus;
  exitCode: number | null;
  /** Wall-clock ms; null if never started. */
  startedAt: number | null;
  finishedAt: number | null;
}

export interface LocalImage {
  id: string;
  /** `repo@sha256:…` as pulled from a registry; null for an image built or loaded locally. */
  digest: string | null;
  /** Every `repo@sha256:…` the engine holds the image under: the manifests it was pulled by. */
  repoDigests: string[];
}

export interface ActualState {
  /** Only containers carrying this supervisor's ownership labels. */
  containers: ActualContainer[];
  /** Local images, keyed by the references the desired state names; a missing key means not present. */
  images: Record<string, LocalImage>;
}

/** A container whose process is alive or about to be, so that it needs a stop before removal. */
export function isLive(c: ActualContainer): boolean {
  return c.status === 'running' || c.status === 'restarting' || c.status === 'paused';
}
