import type { ImageReference } from './image-reference.js';

/** A registry login, as the desired state's sealed credentials give it. */
export interface RegistryLogin {
  username: string;
  password: string;
}

/** A manifest or index as the registry sent it: parsed JSON, not yet checked. */
export interface FetchedDocument {
  mediaType: string | undefined;
  body: unknown;
}

/**
 * The image registry, read directly for what the engine does not tell before
 * a pull: manifests and image configs, to learn an image's platforms and
 * layer sizes. Errors are `REGISTRY_FAILED`. The adapter is `RegistryClient`
 * (registry-client.ts: the registry HTTP API v2).
 */
export interface ImageRegistry {
  /** The manifest or index `ref` names. */
  manifest(ref: ImageReference, login?: RegistryLogin, signal?: AbortSignal): Promise<FetchedDocument>;
  /** A blob of `ref`'s repository, parsed as JSON (an image config), at most `maxBytes`. */
  jsonBlob(ref: ImageReference, digest: string, maxBytes: number, login?: RegistryLogin, signal?: AbortSignal): Promise<unknown>;
}
