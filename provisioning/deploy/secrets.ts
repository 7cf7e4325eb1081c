import { fromBase64, toBase64, utf8 } from '../../protocol/bytes.js';
import { RegistryCredentialsSchema, type DesiredData, type RegistryCredentials } from '../../protocol/desired.js';
import { TsunaguError } from '../../protocol/errors.js';
import { ENGLISH_ISSUES } from '../../protocol/json.js';
import { seal } from '../../protocol/seal.js';

/** Secret values by service and variable, in clear: they exist only in the CLI's memory. */
export type ServiceSecrets = Record<string, Record<string, string>>;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function refuse(path: string, message: string): never {
  throw new TsunaguError('SCHEMA', `${path}: ${message}`, { field: path });
}

/**
 * Take the secrets out of a parsed Compose document. For each service,
 * `x-tsunagu.secrets: [VAR, …]` names variables whose value comes from the
 * service's `environment` (map or list form) or, when absent or null there,
 * from `envFile`. The key `secrets` is removed from `x-tsunagu` (an
 * instruction to the CLI, not part of the wire format) and each named
 * variable is removed from `environment`. Returns a new document; the input
 * is not modified.
 */
export function extractSecrets(doc: unknown, envFile: Readonly<Record<string, string>> = {}): { compose: Json; secrets: ServiceSecrets } {
  if (!isObject(doc)) refuse('(root)', 'the document must be a mapping');
  const compose = structuredClone(doc);
  const secrets: ServiceSecrets = {};
  const services = compose.services;
  if (!isObject(services)) return { compose, secrets };
  for (const [name, service] of Object.entries(services)) {
    if (!isObject(service)) continue;
    const x = service['x-tsunagu'];
    if (!isObject(x) || !('secrets' in x)) continue;
    const path = `services.${name}.x-tsunagu.secrets`;
    const list = x.secrets;
    if (!Array.isArray(list) || !list.every((v): v is string => typeof v === 'string' && /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(v))) {
      refuse(path, 'must be a list of variable names');
    }
    delete x.secrets;
    if (Object.keys(x).length === 0) delete service['x-tsunagu'];
    const env = takeEnvironment(service, `services.${name}.environment`);
    const taken: Record<string, string> = {};
    for (const variable of list) {
      const inline = env.values.get(variable);
      const value = inline ?? envFile[variable];
      if (value === undefined) refuse(path, `${variable} has no value: set it in the service's environment or in the --env-file`);
      taken[variable] = value;
      env.values.delete(variable);
      env.names.delete(variable);
    }
    env.write();
    if (list.length > 0) secrets[name] = taken;
  }
  return { compose, secrets };
}

/** Read a service's environment in either Compose form, to write it back without some variables. */
function takeEnvironment(service: Json, path: string): { values: Map<string, string>; names: Set<string>; write(): void } {
  const raw = service.environment;
  const values = new Map<string, string>();
  const names = new Set<string>();
  if (Array.isArray(raw)) {
    raw.forEach((entry, i) => {
      if (typeof entry !== 'string') refuse(`${path}.${i}`, 'must be KEY=VALUE');
      const eq = entry.indexOf('=');
      const key = eq < 0 ? entry : entry.slice(0, eq);
      names.add(key);
      if (eq >= 0) values.set(key, entry.slice(eq + 1));
    });
  } else if (isObject(raw)) {
    for (const [k, v] of Object.entries(raw)) {
      names.add(k);
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') values.set(k, String(v));
    }
  }
  return {
    values, names,
    write: () => {
      if (raw === undefined) return;
      // Order kept as written; a variable left without its value is the device's validation to judge.
      if (Array.isArray(raw)) service.environment = raw.filter((e) => typeof e === 'string' && names.has(e.split('=')[0]!));
      else if (isObject(raw)) service.environment = Object.fromEntries(Object.entries(raw).filter(([k]) => names.has(k)));
      const left = service.environment;
      if ((Array.isArray(left) && left.length === 0) || (isObject(left) && Object.keys(left).length === 0)) delete service.environment;
    },
  };
}

/** Parse `host=user:password` entries (the password may contain `:` and `=`). */
export function parseRegistryAuth(entries: readonly string[]): RegistryCredentials {
  const out: RegistryCredentials = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const colon = eq < 0 ? -1 : entry.indexOf(':', eq + 1);
    if (eq <= 0 || colon < 0) throw new TsunaguError('CONFIG', `--registry-auth "${entry.slice(0, Math.max(eq, 0))}…" is not host=user:password`);
    const host = entry.slice(0, eq);
    if (host in out) throw new TsunaguError('CONFIG', `--registry-auth names ${host} twice`);
    out[host] = { username: entry.slice(eq + 1, colon), password: entry.slice(colon + 1) };
  }
  const checked = RegistryCredentialsSchema.safeParse(out, ENGLISH_ISSUES);
  if (!checked.success) throw new TsunaguError('CONFIG', `--registry-auth: ${checked.error.issues[0]?.message ?? 'invalid'}`);
  return checked.data;
}

/** Entries of TSUNAGU_REGISTRY_AUTH: `host=user:password`, separated by whitespace or newlines. */
export function registryAuthFromEnv(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(/\s+/).filter((s) => s !== '');
}

/** Seal every secret to one device's box key (base64 X25519 public key from the fleet database). */
export function sealSecrets(secrets: ServiceSecrets, registries: RegistryCredentials, deviceBoxPublicKey: string): DesiredData['sealed'] {
  const key = fromBase64(deviceBoxPublicKey, 'device box key', 32);
  const sealed: NonNullable<DesiredData['sealed']> = {};
  const environment = Object.fromEntries(Object.entries(secrets).map(([service, vars]) => [
    service,
    Object.fromEntries(Object.entries(vars).map(([name, value]) => [name, toBase64(seal(utf8(value), key))])),
  ]));
  if (Object.keys(environment).length > 0) sealed.environment = environment;
  if (Object.keys(registries).length > 0) sealed.registries = toBase64(seal(utf8(JSON.stringify(registries)), key));
  return Object.keys(sealed).length === 0 ? undefined : sealed;
}
