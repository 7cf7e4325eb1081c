import { asTsunaguError } from '../../protocol/errors.js';
import { checkSchema } from '../../protocol/json.js';
import type { RegistryAuth } from '../supervisor/container-runtime.js';
import type { ImageEngine } from './docker-images.js';
import { parseImageReference, type ImageReference } from './image-reference.js';
import { documentKind, ImageConfigSchema, ImageIndexSchema, ImageManifestSchema, MAX_CONFIG_BYTES, type ImageManifest } from './oci-documents.js';
import { formatPlatform, type Platform } from './platform.js';
import { pickManifest, remoteLayers, type RemoteLayer } from '../pulls/pull-estimate.js';
import type { ImageRegistry } from './image-registry.js';

/**
 * How long a complete read is reused. Registries count manifest reads
 * (Docker Hub's pull limit counts them as pulls): one read serves the
 * admission of a desired state and the pulls that follow it.
 */
export const FACTS_TTL_MS = 10 * 60 * 1000;

/** What can be known of an image before pulling it. */
export interface RemoteImageFacts {
  ref: string;
  /** The platforms the registry offers; null when they could not be read. */
  platforms: Platform[] | null;
  /** The layers of the variant this device would pull; null when they could not be read. */
  layers: RemoteLayer[] | null;
  /** Why something is null, for logs and notes. */
  unknown: string[];
}

/**
 * Reads an image's platforms (through the engine's distribution endpoint,
 * so that the engine's own registry settings apply) and its layer sizes
 * (manifest, and config for the layers' uncompressed digests, from the
 * registry API directly, as the engine does not tell them before a pull).
 * Never throws for a registry problem: what could not be read is null, and
 * the caller admits rather than refuses on a guess.
 */
export class RemoteImageFactsReader {
  /** Complete reads by reference, for FACTS_TTL_MS: admission and the pull that follows ask about the same image. */
  private readonly cache = new Map<string, { at: number; facts: RemoteImageFacts }>();
  private readonly now: () => number;

  constructor(private readonly deps: {
    engine: Pick<ImageEngine, 'remotePlatforms'>;
    registry: ImageRegistry;
    device: Platform;
    /** The credentials the desired state carries for the image's registry. */
    auth: (ref: string) => RegistryAuth | undefined;
    now?: () => number;
  }) {
    this.now = deps.now ?? Date.now;
  }

  async read(ref: string, signal?: AbortSignal): Promise<RemoteImageFacts> {
    const cached = this.cache.get(ref);
    if (cached !== undefined && this.now() - cached.at < FACTS_TTL_MS) return cached.facts;
    const facts = await this.readNow(ref, signal);
    for (const [key, entry] of this.cache) if (this.now() - entry.at >= FACTS_TTL_MS) this.cache.delete(key);
    if (facts.unknown.length === 0) this.cache.set(ref, { at: this.now(), facts });
    return facts;
  }

  private async readNow(ref: string, signal?: AbortSignal): Promise<RemoteImageFacts> {
    const facts: RemoteImageFacts = { ref, platforms: null, layers: null, unknown: [] };
    const auth = this.deps.auth(ref);
    try {
      facts.platforms = await this.deps.engine.remotePlatforms(ref, auth, signal);
    } catch (err) {
      signal?.throwIfAborted();
      facts.unknown.push(`platforms: ${asTsunaguError(err).message}`);
    }
    try {
      const parsed = parseImageReference(ref);
      const { layers, platforms } = await this.readLayers(parsed, auth, signal);
      facts.layers = layers;
      // The engine's answer wins; the registry's is the fallback when the engine could not ask.
      if (facts.platforms === null && platforms !== null) facts.platforms = platforms;
      if (layers === null && facts.platforms !== null) facts.unknown.push(`sizes: no variant for ${formatPlatform(this.deps.device)}`);
    } catch (err) {
      signal?.throwIfAborted();
      facts.unknown.push(`sizes: ${asTsunaguError(err).message}`);
    }
    return facts;
  }

  private async readLayers(ref: ImageReference, auth: RegistryAuth | undefined, signal?: AbortSignal): Promise<{ layers: RemoteLayer[] | null; platforms: Platform[] | null }> {
    const login = auth === undefined ? undefined : { username: auth.username, password: auth.password };
    const what = `${ref.apiHost}/${ref.repository}:${ref.reference}`;
    const top = await this.deps.registry.manifest(ref, login, signal);
    let manifest: ImageManifest;
    let platforms: Platform[] | null = null;
    const kind = documentKind(top.mediaType, top.body);
    if (kind === 'index') {
      const index = checkSchema(ImageIndexSchema, top.body, `index of ${what}`);
      platforms = index.manifests.flatMap((m) => (m.platform === undefined ? [] : [m.platform]));
      const entry = pickManifest(index, this.deps.device);
      if (entry === undefined) return { layers: null, platforms };
      const chosen = await this.deps.registry.manifest({ ...ref, reference: entry.digest }, login, signal);
      manifest = checkSchema(ImageManifestSchema, chosen.body, `manifest of ${what}`);
    } else if (kind === 'manifest') {
      manifest = checkSchema(ImageManifestSchema, top.body, `manifest of ${what}`);
    } else {
      // Schema 1 and unknown documents carry no sizes.
      return { layers: null, platforms: null };
    }
    const config = checkSchema(ImageConfigSchema, await this.deps.registry.jsonBlob(ref, manifest.config.digest, MAX_CONFIG_BYTES, login, signal), `config of ${what}`);
    platforms ??= [{ os: config.os, architecture: config.architecture, ...(config.variant === undefined ? {} : { variant: config.variant }) }];
    return { layers: remoteLayers(manifest, config), platforms };
  }
}
