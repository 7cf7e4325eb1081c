import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { writeFileAtomic, readFileIfExists } from '../common/atomic-file.js';
import { toBase64 } from '../protocol/bytes.js';
import { TsunaguError } from '../protocol/errors.js';
import { checkSchema, parseJsonBytes } from '../protocol/json.js';
import { generateKeyPairs, KeyFileSchema, keyId, keyPairsFromFile, keyPairsToFile, type KeyPairs } from '../protocol/keys.js';
import { MIN_PACKET_LIMIT_BYTES } from '../protocol/packet-size.js';
import { ClaimPolicySchema } from './claim-policy.js';

/**
 * A fleet lives in one directory:
 *   fleet.json     settings (broker, admin credential, claim policy)
 *   keys.json      the fleet's signing and box key pairs (0600)
 *   counter.json   the signing counter (monotonic per fleet key)
 *   registry.db    the fleet database: devices, enrollment requests, audit (SQLite;
 *                  provisioning/fleet-database.ts). The file keeps its first name:
 *                  operators' backups and scripts know it by it.
 */
export const FleetConfigSchema = z.object({
  v: z.literal(1),
  fleetId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  broker: z.object({
    /** URL the fleet side connects to. */
    url: z.string(),
    /** URL written into bootstrap files (what devices reach); defaults to url. */
    deviceUrl: z.string().optional(),
    ca: z.string().optional(),
    protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
    /** The fleet's own broker account (fleet role: all tsunagu topics and the dynamic-security API). */
    username: z.string(),
    password: z.string(),
    /** Embedded broker only: where it listens (`host:port`), when not the host and port of url. */
    listen: z.string().optional(),
    /**
     * Embedded broker only: the largest MQTT packet it reads (default MAX_PACKET_BYTES). Never
     * below the largest legitimate message with room for its topic; at most MQTT's own maximum.
     */
    maxPacketBytes: z.number().int().min(MIN_PACKET_LIMIT_BYTES).max(268_435_455).optional(),
    /** Mosquitto dynamic security, or the embedded broker. */
    kind: z.enum(['mosquitto', 'embedded']).default('mosquitto'),
  }).strict(),
  bootstrap: z.object({ username: z.string(), password: z.string() }).strict(),
  claim: ClaimPolicySchema,
}).strict();
export type FleetConfig = z.infer<typeof FleetConfigSchema>;

export interface FleetDir {
  dir: string;
  config: FleetConfig;
  keys: KeyPairs;
  keyId: string;
  databasePath: string;
}

export function fleetPaths(dir: string) {
  return {
    config: join(dir, 'fleet.json'),
    keys: join(dir, 'keys.json'),
    counter: join(dir, 'counter.json'),
    database: join(dir, 'registry.db'),
    /** Where a running `serve` takes work from the CLI (serve-channel/). */
    serveSocket: join(dir, 'serve.sock'),
  };
}

export function createFleetDir(dir: string, config: Omit<FleetConfig, 'v' | 'bootstrap'> & { bootstrap?: FleetConfig['bootstrap'] }): FleetDir {
  const paths = fleetPaths(dir);
  if (existsSync(paths.keys)) throw new TsunaguError('CONFIG', `${dir} already holds a fleet; refusing to overwrite its keys`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const keys = generateKeyPairs();
  const full: FleetConfig = checkSchema(FleetConfigSchema, {
    v: 1,
    ...config,
    bootstrap: config.bootstrap ?? { username: `bootstrap-${config.fleetId}`, password: randomBytes(24).toString('base64url') },
  }, 'fleet config');
  writeFileAtomic(paths.keys, JSON.stringify(keyPairsToFile(keys), null, 1));
  writeFileAtomic(paths.config, JSON.stringify(full, null, 2));
  return { dir, config: full, keys, keyId: keyId(keys.signPublicKey), databasePath: paths.database };
}

export function loadFleetDir(dir: string): FleetDir {
  const paths = fleetPaths(dir);
  const configBytes = readFileIfExists(paths.config);
  const keyBytes = readFileIfExists(paths.keys);
  if (configBytes === undefined || keyBytes === undefined) {
    throw new TsunaguError('CONFIG', `${dir} is not a fleet directory (run: tsunagu-fleet init --dir ${dir})`);
  }
  const config = checkSchema(FleetConfigSchema, parseJsonBytes(configBytes), paths.config);
  const keys = keyPairsFromFile(checkSchema(KeyFileSchema, parseJsonBytes(keyBytes), paths.keys));
  return { dir, config, keys, keyId: keyId(keys.signPublicKey), databasePath: paths.database };
}

export function saveFleetConfig(dir: string, config: FleetConfig): void {
  writeFileAtomic(fleetPaths(dir).config, JSON.stringify(config, null, 2));
}

export function fleetPublicKeys(fleet: FleetDir): { signPublicKey: string; boxPublicKey: string } {
  return { signPublicKey: toBase64(fleet.keys.signPublicKey), boxPublicKey: toBase64(fleet.keys.boxPublicKey) };
}
