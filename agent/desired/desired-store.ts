import { renameSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod/mini';
import type { Logger } from '../../common/logger.js';
import { readFileIfExists, writeFileAtomic } from '../../common/atomic-file.js';
import { loadJsonState, saveJsonState } from '../state/json-state-file.js';

/**
 * The accepted desired state, kept as the fleet-signed bytes exactly as they
 * arrived (`desired.msg`): at boot, with or without a broker, the agent
 * verifies them again with the fleet key before acting on them, so a file
 * changed on the card is refused like a forged message. The secrets in it
 * stay sealed to the device key on disk.
 *
 * Beside it, `proven.msg`: the signed bytes of the last version that passed
 * its probations, what a rollback returns to after an agent restart (sealed
 * like `desired.msg`, verified again before use). And `service-holds.json`: the services an operator stopped, with
 * the version they were stopped under (a stop lasts until `start` or a new
 * version).
 */
const HoldsSchema = z.strictObject({
  v: z.literal(1),
  version: z.nullable(z.int().check(z.positive())),
  services: z.array(z.string().check(z.maxLength(128))).check(z.maxLength(256)),
});
export type ServiceHolds = z.infer<typeof HoldsSchema>;

export class DesiredStore {
  private readonly messagePath: string;
  private readonly holdsPath: string;
  private readonly provenPath: string;
  private lastHolds: string | undefined;

  constructor(stateDir: string, private readonly logger: Logger) {
    this.messagePath = join(stateDir, 'desired.msg');
    this.holdsPath = join(stateDir, 'service-holds.json');
    this.provenPath = join(stateDir, 'proven.msg');
  }

  /** The signed message of the last proven version, or undefined before one. */
  loadProven(): Uint8Array | undefined {
    const bytes = readFileIfExists(this.provenPath);
    return bytes === undefined ? undefined : new Uint8Array(bytes);
  }

  /** Written once per proven version (atomic replace; unchanged bytes are not written again). */
  saveProven(bytes: Uint8Array): void {
    const old = readFileIfExists(this.provenPath);
    if (old !== undefined && Buffer.compare(old, bytes) === 0) return;
    writeFileAtomic(this.provenPath, bytes);
  }

  /** A kept proven message no longer verifies: out of the way, logged; a rollback then has nothing to return to. */
  moveProvenAside(reason: string): void {
    const movedTo = `${this.provenPath}.bad`;
    try {
      renameSync(this.provenPath, movedTo);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    this.logger.error({ code: 'STATE_CORRUPT', movedTo }, `${this.provenPath} was unusable (${reason}); moved to ${movedTo}`);
  }

  /** The signed message last accepted, or undefined before the first one. */
  loadMessage(): Uint8Array | undefined {
    const bytes = readFileIfExists(this.messagePath);
    return bytes === undefined ? undefined : new Uint8Array(bytes);
  }

  /** Atomic replace: a power cut leaves the old message or the new one, never a mix. */
  saveMessage(bytes: Uint8Array): void {
    const old = readFileIfExists(this.messagePath);
    if (old !== undefined && Buffer.compare(old, bytes) === 0) return;
    writeFileAtomic(this.messagePath, bytes);
  }

  /**
   * The persisted message no longer verifies (torn by a power cut, changed on the card):
   * kept as `desired.msg.bad` for inspection and out of the way of the next boot.
   */
  moveMessageAside(reason: string): void {
    const movedTo = `${this.messagePath}.bad`;
    try {
      renameSync(this.messagePath, movedTo);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    this.logger.error({ code: 'STATE_CORRUPT', movedTo }, `${this.messagePath} was unusable (${reason}); moved to ${movedTo}, asking the broker for the retained copy`);
  }

  loadHolds(): ServiceHolds {
    const loaded = loadJsonState(this.holdsPath, HoldsSchema);
    if (loaded.status === 'corrupt') this.logger.error({ code: loaded.error.code }, loaded.error.message);
    const holds = loaded.status === 'ok' ? loaded.value : { v: 1 as const, version: null, services: [] };
    this.lastHolds = JSON.stringify(holds);
    return holds;
  }

  /** Written only when it changes (SD cards wear). */
  saveHolds(holds: ServiceHolds): void {
    const text = JSON.stringify(holds);
    if (text === this.lastHolds) return;
    saveJsonState(this.holdsPath, holds);
    this.lastHolds = text;
  }
}
