import { fromBase64, fromUtf8 } from '../../protocol/bytes.js';
import { RegistryCredentialsSchema, type DesiredData, type RegistryCredentials } from '../../protocol/desired.js';
import { TsunaguError } from '../../protocol/errors.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import { openSealed } from '../../protocol/seal.js';

/** A desired state with its secrets opened: only ever in memory, never logged, never written. */
export interface UnsealedDesired {
  compose: Record<string, unknown>;
  registries: RegistryCredentials;
}

function open(sealed: string, what: string, boxSecretKey: Uint8Array): string {
  try {
    return fromUtf8(openSealed(fromBase64(sealed, what), boxSecretKey));
  } catch (err) {
    // The message names where, never what: the plaintext must not reach a log.
    throw new TsunaguError('SEAL_OPEN_FAILED', `${what}: cannot be opened with this device's key`, { field: what }, { cause: err });
  }
}

/**
 * Open the sealed secrets with the device box key and merge them in:
 * `sealed.environment[service][VAR]` into that service's `environment`
 * (a variable set in both is refused: the fleet sent it twice), and the
 * registry credentials apart, for the pulls. Pure apart from the crypto.
 */
export function unsealDesired(data: DesiredData, boxSecretKey: Uint8Array): UnsealedDesired {
  const compose = structuredClone(data.compose);
  const services = compose.services;
  for (const [service, vars] of Object.entries(data.sealed?.environment ?? {})) {
    const path = `sealed.environment.${service}`;
    if (typeof services !== 'object' || services === null || !Object.hasOwn(services, service)) {
      throw new TsunaguError('SCHEMA', `${path}: no such service in compose`, { field: path });
    }
    const svc = (services as Record<string, unknown>)[service];
    if (typeof svc !== 'object' || svc === null || Array.isArray(svc)) throw new TsunaguError('SCHEMA', `services.${service}: not an object`, { field: `services.${service}` });
    const env = toEnvMap((svc as Record<string, unknown>).environment, `services.${service}.environment`);
    for (const [name, sealed] of Object.entries(vars)) {
      if (Object.hasOwn(env, name)) throw new TsunaguError('SCHEMA', `${path}.${name}: also set in clear in compose`, { field: `${path}.${name}` });
      env[name] = open(sealed, `${path}.${name}`, boxSecretKey);
    }
    (svc as Record<string, unknown>).environment = env;
  }
  let registries: RegistryCredentials = {};
  if (data.sealed?.registries !== undefined) {
    const text = open(data.sealed.registries, 'sealed.registries', boxSecretKey);
    registries = checkSchema(RegistryCredentialsSchema, parseJsonBytes(Buffer.from(text), { maxBytes: 16 * 1024, maxDepth: 4 }), 'sealed.registries');
  }
  return { compose, registries };
}

/** Compose allows both `{KEY: value}` and `["KEY=value"]`; the map form is kept for merging. */
function toEnvMap(env: unknown, path: string): Record<string, unknown> {
  if (env === undefined || env === null) return {};
  if (Array.isArray(env)) {
    const out: Record<string, unknown> = {};
    env.forEach((entry, i) => {
      const eq = typeof entry === 'string' ? entry.indexOf('=') : -1;
      if (typeof entry !== 'string' || eq <= 0) throw new TsunaguError('SCHEMA', `${path}.${i}: not KEY=VALUE`, { field: `${path}.${i}` });
      out[entry.slice(0, eq)] = entry.slice(eq + 1);
    });
    return out;
  }
  if (typeof env === 'object') return { ...(env as Record<string, unknown>) };
  throw new TsunaguError('SCHEMA', `${path}: must be a map or a list`, { field: path });
}
