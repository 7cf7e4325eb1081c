import type { LocalImage } from './actual-state.js';

/** The digest `ref` pins (`repo@sha256:…`), or null for a reference by tag. */
export function pinnedDigest(ref: string): string | null {
  const at = ref.indexOf('@');
  return at < 0 ? null : ref.slice(at + 1);
}

/**
 * Whether a local image found under `ref` is the content `ref` names. A tag
 * names whatever the engine holds under it; a digest names one content, and
 * the image must carry that digest among the manifests it was pulled by. The
 * engine checks every digest while it pulls; this is the agent's own check
 * before it takes an old container down or creates one from the image, so
 * that nothing unverified ever replaces what runs. A digest is the hash of
 * the content, so the repository it was pulled under does not matter. Pure.
 */
export function holdsPinnedContent(ref: string, image: LocalImage): boolean {
  const digest = pinnedDigest(ref);
  return digest === null || image.repoDigests.some((d) => d.slice(d.indexOf('@') + 1) === digest);
}
