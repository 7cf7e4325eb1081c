import * as z from 'zod/mini';

/**
 * The registry documents an admission estimate reads, as zod schemas: an
 * image index (OCI index or Docker manifest list), an image manifest (OCI or
 * Docker schema 2) and the image config. Only the members read are checked;
 * registries add others freely.
 */

export const INDEX_MEDIA_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'] as const;
export const MANIFEST_MEDIA_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'] as const;

/** Documents above this size are refused unread: real ones are a few KiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

const digest = z.string().check(z.regex(/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/));
const size = z.int().check(z.nonnegative(), z.maximum(Number.MAX_SAFE_INTEGER));
const shortText = z.string().check(z.maxLength(64));
const mediaType = z.optional(z.string().check(z.maxLength(256)));

const descriptor = z.object({ mediaType, digest, size });

export const PlatformSchema = z.object({
  os: shortText,
  architecture: shortText,
  variant: z.optional(shortText),
});

export const ImageIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType,
  manifests: z.array(z.extend(descriptor, { platform: z.optional(PlatformSchema) })).check(z.maxLength(1024)),
});
export type ImageIndex = z.infer<typeof ImageIndexSchema>;

export const ImageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType,
  config: descriptor,
  layers: z.array(descriptor).check(z.maxLength(1024)),
});
export type ImageManifest = z.infer<typeof ImageManifestSchema>;

export const ImageConfigSchema = z.object({
  architecture: shortText,
  os: shortText,
  variant: z.optional(shortText),
  rootfs: z.object({ type: z.string().check(z.maxLength(32)), diff_ids: z.array(digest).check(z.maxLength(1024)) }),
});
export type ImageConfig = z.infer<typeof ImageConfigSchema>;

/** Which kind a fetched document is: by its media type, else by its shape (some registries omit the header). */
export function documentKind(mediaType: string | undefined, body: unknown): 'index' | 'manifest' | 'other' {
  const type = (mediaType ?? '').split(';')[0]?.trim() ?? '';
  if ((INDEX_MEDIA_TYPES as readonly string[]).includes(type)) return 'index';
  if ((MANIFEST_MEDIA_TYPES as readonly string[]).includes(type)) return 'manifest';
  if (typeof body === 'object' && body !== null) {
    if ('manifests' in body) return 'index';
    if ('layers' in body && 'config' in body) return 'manifest';
  }
  return 'other';
}
