import { TsunaguError } from '../../protocol/errors.js';

/** An image reference taken apart the way the engine resolves it. */
export interface ImageReference {
  /** The registry as credentials are keyed (`docker.io`, `ghcr.io`, `127.0.0.1:5000`). */
  registry: string;
  /** Host (and port) that serves the registry API: Docker Hub's is `registry-1.docker.io`. */
  apiHost: string;
  /** Repository path inside the registry (`library/busybox`). */
  repository: string;
  /** A digest (`sha256:…`) when the reference pins one, else the tag (`latest` by default). */
  reference: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

/**
 * Parse `[registry/]path[:tag][@digest]` with Docker's rules: a first part
 * with a dot, a colon or `localhost` names the registry, else Docker Hub,
 * where a one-part name lives under `library/`. Throws SCHEMA for a
 * reference the engine would refuse too.
 */
export function parseImageReference(ref: string): ImageReference {
  const bad = (why: string): never => { throw new TsunaguError('SCHEMA', `image reference "${ref}": ${why}`); };
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad('not a valid digest');
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) bad('not a valid tag');
  }
  const named = registryOf(rest);
  let path = rest.startsWith(`${named}/`) ? rest.slice(named.length + 1) : rest;
  // The engine treats the old index name as Docker Hub.
  const registry = named === 'index.docker.io' ? 'docker.io' : named;
  if (registry === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  if (path === '' || !path.split('/').every((c) => COMPONENT.test(c))) bad('not a valid repository name');
  return {
    registry,
    apiHost: registry === 'docker.io' ? 'registry-1.docker.io' : registry,
    repository: path,
    reference: digest ?? tag ?? 'latest',
  };
}

/** The registry an image reference pulls from: Docker's rule (a first part with a dot, a colon, or `localhost`). */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}
