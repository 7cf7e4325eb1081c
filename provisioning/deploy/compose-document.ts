import { parse as parseYaml } from 'yaml';
import { COMPOSE_YAML_OPTIONS, MAX_DOCUMENT_BYTES, parseDesiredState } from '../../protocol/compose/compose-schema.js';
import { type DesiredState } from '../../protocol/compose/desired-service.js';
import { DesiredDataSchema, type DesiredData, type RegistryCredentials } from '../../protocol/desired.js';
import { TsunaguError } from '../../protocol/errors.js';
import { ENGLISH_ISSUES } from '../../protocol/json.js';
import { extractSecrets, sealSecrets, type ServiceSecrets } from './secrets.js';

/** A compose file read, stripped of its secrets and validated as the device will validate it. */
export interface PreparedDeployment {
  /** What goes on the wire as `compose`: no secret value, no CLI-only key. */
  compose: Record<string, unknown>;
  secrets: ServiceSecrets;
  registries: RegistryCredentials;
  /** The device's own reading of the document (service order, defaults). */
  state: DesiredState;
}

/**
 * Parse and validate a compose file before anything is sent. Throws
 * MALFORMED (YAML), TOO_LARGE, SCHEMA or UNSUPPORTED with the field path —
 * the same codes and paths the device would report as a refusal.
 */
export function prepareDeployment(text: string, options: { envFile?: Record<string, string>; registries?: RegistryCredentials } = {}): PreparedDeployment {
  if (Buffer.byteLength(text) > MAX_DOCUMENT_BYTES) throw new TsunaguError('TOO_LARGE', `the compose file exceeds ${MAX_DOCUMENT_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = parseYaml(text, COMPOSE_YAML_OPTIONS);
  } catch (err) {
    throw new TsunaguError('MALFORMED', `the compose file is not valid YAML: ${(err as Error).message}`);
  }
  const { compose, secrets } = extractSecrets(doc, options.envFile);
  const state = parseDesiredState(compose);
  // Round-trip through JSON: YAML anchors become copies, and what we validated is what we send.
  return { compose: JSON.parse(JSON.stringify(compose)) as Record<string, unknown>, secrets, registries: options.registries ?? {}, state };
}

/** The `data` of the signed desired message for one device. */
export function desiredDataFor(prepared: PreparedDeployment, version: number, deviceBoxPublicKey: string): DesiredData {
  const sealed = sealSecrets(prepared.secrets, prepared.registries, deviceBoxPublicKey);
  const data = { version, compose: prepared.compose, ...(sealed === undefined ? {} : { sealed }) };
  const checked = DesiredDataSchema.safeParse(data, ENGLISH_ISSUES);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new TsunaguError('TOO_LARGE', `the desired message does not fit the wire format at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? ''}`);
  }
  return checked.data;
}
