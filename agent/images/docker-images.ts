import Docker from 'dockerode';
import { TsunaguError } from '../../protocol/errors.js';
import { type RegistryAuth } from '../supervisor/container-runtime.js';
import { defaultSocket, runtimeError, statusCode } from '../supervisor/engine-errors.js';
import type { Platform } from './platform.js';
import type { LocalImageInfo } from '../pulls/pull-estimate.js';

/** A local image with the references it is known by. */
export interface EngineImage extends LocalImageInfo {
  /** `repo:tag` and `repo@sha256:…` names of the image. */
  refs: string[];
}

/** What removing one reference did. */
export type RemoveOutcome = 'removed' | 'in-use' | 'gone';

/**
 * The engine's images, as disk admission and garbage collection need them.
 * One real adapter (dockerode, below).
 */
export interface ImageEngine {
  /** The platforms a registry offers for `ref`, asked through the engine (its registry settings, mirrors, certificates). */
  remotePlatforms(ref: string, auth?: RegistryAuth, signal?: AbortSignal): Promise<Platform[]>;
  /** Every local image with its layers and size. */
  localImages(signal?: AbortSignal): Promise<EngineImage[]>;
  /** Ids of the images that any container uses, running or not, whoever made it. */
  imagesInUse(signal?: AbortSignal): Promise<Set<string>>;
  /** The image id `ref` names locally; undefined when it is not here. */
  imageId(ref: string): Promise<string | undefined>;
  /**
   * Remove one reference without force: the engine deletes the image with
   * its last reference, and refuses while a container uses it (`in-use`).
   */
  removeImage(ref: string): Promise<RemoveOutcome>;
  /** The engine's data root (`docker info` DockerRootDir). */
  dataRoot(): Promise<string>;
}

const DISTRIBUTION_TIMEOUT_MS = 20_000;

/** The dockerode adapter: translation of types and errors only. */
export class DockerImages implements ImageEngine {
  private readonly docker: Docker;
  /** Layers by image id: an id names fixed content, so one inspect per image suffices. */
  private readonly layersById = new Map<string, { layers: string[]; layerSizes: number[] | null }>();

  constructor(options: { socketPath?: string } = {}) {
    this.docker = new Docker({ socketPath: options.socketPath ?? defaultSocket() });
  }

  async remotePlatforms(ref: string, auth?: RegistryAuth, signal?: AbortSignal): Promise<Platform[]> {
    const what = `distribution of ${ref}`;
    try {
      signal?.throwIfAborted();
      // dockerode's distribution call takes no signal; a registry that hangs must not hold admission.
      const answer = this.docker.getImage(ref).distribution(auth === undefined ? {} : { authconfig: auth }) as Promise<{ Platforms?: unknown }>;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${DISTRIBUTION_TIMEOUT_MS} ms`)), DISTRIBUTION_TIMEOUT_MS); });
      const info = await Promise.race([answer, timeout]).finally(() => clearTimeout(timer));
      const platforms = Array.isArray(info.Platforms) ? info.Platforms as Record<string, unknown>[] : [];
      return platforms.flatMap((p) => (typeof p.os === 'string' && typeof p.architecture === 'string'
        ? [{ os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' && p.variant !== '' ? { variant: p.variant } : {}) }]
        : []));
    } catch (err) {
      const e = runtimeError(what, err, signal);
      throw e.code === 'RUNTIME_FAILED' ? new TsunaguError('REGISTRY_FAILED', e.message, e.details, { cause: err }) : e;
    }
  }

  async localImages(signal?: AbortSignal): Promise<EngineImage[]> {
    try {
      const list = await this.docker.listImages({ abortSignal: signal });
      const present = new Set(list.map((i) => i.Id));
      for (const id of this.layersById.keys()) if (!present.has(id)) this.layersById.delete(id);
      const out: EngineImage[] = [];
      for (const image of list) {
        const layers = await this.layers(image.Id, image.Size);
        if (layers === undefined) continue; // removed between list and inspect
        const refs = [...(image.RepoTags ?? []), ...(image.RepoDigests ?? [])].filter((r) => !r.startsWith('<none>'));
        out.push({ id: image.Id, refs, ...layers, sizeBytes: image.Size });
      }
      return out;
    } catch (err) {
      throw runtimeError('list images', err, signal);
    }
  }

  async imagesInUse(signal?: AbortSignal): Promise<Set<string>> {
    try {
      const list = await this.docker.listContainers({ all: true, abortSignal: signal });
      return new Set(list.map((c) => c.ImageID));
    } catch (err) {
      throw runtimeError('list containers', err, signal);
    }
  }

  async imageId(ref: string): Promise<string | undefined> {
    try {
      return (await this.docker.getImage(ref).inspect()).Id;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw runtimeError(`inspect image ${ref}`, err);
    }
  }

  async removeImage(ref: string): Promise<RemoveOutcome> {
    try {
      // noprune stays false: untagged parents of a built image go with it.
      await this.docker.getImage(ref).remove({ force: false });
      return 'removed';
    } catch (err) {
      if (statusCode(err) === 404) return 'gone';
      if (statusCode(err) === 409) return 'in-use';
      throw runtimeError(`remove image ${ref}`, err);
    }
  }

  async dataRoot(): Promise<string> {
    try {
      const info = (await this.docker.info()) as { DockerRootDir?: unknown };
      if (typeof info.DockerRootDir !== 'string' || !info.DockerRootDir.startsWith('/')) throw new Error('the engine reports no data root');
      return info.DockerRootDir;
    } catch (err) {
      throw runtimeError('engine info', err);
    }
  }

  /**
   * The image's layers and, when its history tells them unambiguously, their
   * sizes: the engine gives each history entry that made a layer that
   * layer's size, and 0 to entries that made none; when exactly as many
   * entries have a size as there are layers, they pair in order.
   */
  private async layers(id: string, sizeBytes: number): Promise<{ layers: string[]; layerSizes: number[] | null } | undefined> {
    const known = this.layersById.get(id);
    if (known !== undefined) return known;
    try {
      const image = this.docker.getImage(id);
      const layers = (await image.inspect()).RootFS?.Layers ?? [];
      const history = (await image.history()) as { Size?: unknown }[];
      const sizes = history.map((h) => (typeof h.Size === 'number' ? h.Size : 0)).reverse().filter((n) => n > 0);
      const layerSizes = sizes.length === layers.length ? sizes : layers.length === 1 ? [sizeBytes] : null;
      const entry = { layers, layerSizes };
      this.layersById.set(id, entry);
      return entry;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }
}
