import { fromBase64, toBase64, utf8 } from '../../protocol/bytes.js';
import { TsunaguError } from '../../protocol/errors.js';
import { openSealed, seal } from '../../protocol/seal.js';
import type { RegistryCredentials } from '../../protocol/desired.js';
import type { PreparedDeployment } from '../deploy/compose-document.js';
import type { ServiceSecrets } from '../deploy/secrets.js';
import { RevisionSecretsSchema, type RevisionSecrets } from './deployment.js';
import type { LayerSource } from './layering.js';

/** Seal a revision's secrets to the fleet's own box key for the database; null when it has none. */
export function sealRevisionSecrets(prepared: PreparedDeployment, fleetBoxPublicKey: Uint8Array): string | null {
  if (Object.keys(prepared.secrets).length === 0 && Object.keys(prepared.registries).length === 0) return null;
  const value: RevisionSecrets = { environment: prepared.secrets, registries: prepared.registries };
  return toBase64(seal(utf8(JSON.stringify(value)), fleetBoxPublicKey));
}

export function openRevisionSecrets(sealed: string, fleetBoxSecretKey: Uint8Array): RevisionSecrets {
  const bytes = openSealed(fromBase64(sealed, 'revision secrets'), fleetBoxSecretKey);
  const parsed = RevisionSecretsSchema.safeParse(JSON.parse(Buffer.from(bytes).toString('utf8')));
  if (!parsed.success) throw new TsunaguError('SCHEMA', 'the sealed secrets of a revision do not read back');
  return parsed.data;
}

/**
 * The secrets one device receives: each service's from the revision whose
 * layer won that service; registry credentials from every layer, the
 * higher-priority layer's entry winning for a host. `sources` come in
 * priority order (layering.ts).
 */
export function secretsForDevice(sources: readonly LayerSource[], openRevision: (deployment: string, revision: number) => RevisionSecrets | null): { secrets: ServiceSecrets; registries: RegistryCredentials } {
  const secrets: ServiceSecrets = {};
  const registries: RegistryCredentials = {};
  for (const source of sources) {
    const opened = openRevision(source.deployment, source.revision);
    if (opened === null) continue;
    for (const service of source.services) if (opened.environment[service] !== undefined) secrets[service] = opened.environment[service];
    for (const [host, credentials] of Object.entries(opened.registries)) registries[host] ??= credentials;
  }
  return { secrets, registries };
}
