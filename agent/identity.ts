import { join } from 'node:path';
import * as z from 'zod/mini';
import type { Logger } from '../common/logger.js';
import { generateKeyPairs, KeyFileSchema, keyPairsFromFile, keyPairsToFile, type KeyPairs } from '../protocol/keys.js';
import { EnrollGrantSchema, type EnrollGrant } from '../protocol/enrollment.js';
import { loadJsonState, saveJsonState } from './state/json-state-file.js';

/**
 * The device's identity on disk, in its state dir:
 *   keys.json      its own key pairs, created at first boot (0600)
 *   identity.json  what the fleet granted at enrollment (0600)
 */
export const IdentityFileSchema = z.strictObject({
  v: z.literal(1),
  grant: EnrollGrantSchema,
  fleetId: z.string(),
  enrolledAt: z.number(),
  /** A rotated password the fleet is about to switch to (see credentials.ts). */
  nextPassword: z.optional(z.string().check(z.minLength(16), z.maxLength(256))),
});
export type IdentityFile = z.infer<typeof IdentityFileSchema>;

export function statePaths(stateDir: string) {
  return {
    keys: join(stateDir, 'keys.json'),
    identity: join(stateDir, 'identity.json'),
    bootstrap: join(stateDir, 'bootstrap.json'),
    replay: join(stateDir, 'replay.json'),
    status: join(stateDir, 'status.json'),
  };
}

/** Load the device keys, creating them at first boot. Corrupt keys are moved aside and replaced. */
export function loadOrCreateKeys(stateDir: string, logger: Logger): { keys: KeyPairs; created: boolean } {
  const path = statePaths(stateDir).keys;
  const loaded = loadJsonState(path, KeyFileSchema);
  if (loaded.status === 'ok') {
    try {
      return { keys: keyPairsFromFile(loaded.value), created: false };
    } catch (err) {
      logger.error({ err }, 'device keys are malformed; creating new ones');
    }
  } else if (loaded.status === 'corrupt') {
    logger.error({ code: loaded.error.code, movedTo: loaded.movedTo }, loaded.error.message);
  }
  const keys = generateKeyPairs();
  saveJsonState(path, keyPairsToFile(keys));
  logger.info('created device key pairs');
  return { keys, created: true };
}

export function loadIdentity(stateDir: string, logger: Logger): IdentityFile | undefined {
  const loaded = loadJsonState(statePaths(stateDir).identity, IdentityFileSchema);
  if (loaded.status === 'corrupt') logger.error({ code: loaded.error.code, movedTo: loaded.movedTo }, `${loaded.error.message}; enrolling again`);
  return loaded.status === 'ok' ? loaded.value : undefined;
}

export function newIdentity(fleetId: string, grant: EnrollGrant, now: number): IdentityFile {
  return { v: 1, grant, fleetId, enrolledAt: now };
}

export function saveIdentity(stateDir: string, identity: IdentityFile): IdentityFile {
  const { nextPassword, ...rest } = identity;
  saveJsonState(statePaths(stateDir).identity, nextPassword === undefined ? rest : identity);
  return identity;
}
