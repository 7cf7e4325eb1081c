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
    return loadBytes(this.provenPath);
  }

  /** Written once per proven version (atomic replace; unchanged bytes are not written again). */
  saveProven(bytes: Uint8Array): void {
    saveBytesOnChange(this.provenPath, bytes);
  }

  /** A kept proven message no longer verifies: out of the way, logged; a rollback then has nothing to return to. */
  moveProvenAside(reason: string): void {
    this.moveAside(this.provenPath, reason, '');
  }

  /** The signed message last accepted, or undefined before the first one. */
  loadMessage(): Uint8Array | undefined {
    return loadBytes(this.messagePath);
  }

  /** Atomic replace: a power cut leaves the old message or the new one, never a mix. */
  saveMessage(bytes: Uint8Array): void {
    saveBytesOnChange(this.messagePath, bytes);
  }

  /**
   * The persisted message no longer verifies (torn by a power cut, changed on the card):
   * kept as `desired.msg.bad` for inspection and out of the way of the next boot.
   */
  moveMessageAside(reason: string): void {
    this.moveAside(this.messagePath, reason, ', asking the broker for the retained copy');
  }

  /** Kept as `NAME.bad` for inspection; a file already gone is nothing to move. */
  private moveAside(path: string, reason: string, then: string): void {
    const movedTo = `${path}.bad`;
    try {
      renameSync(path, movedTo);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    this.logger.error({ code: 'STATE_CORRUPT', movedTo }, `${path} was unusable (${reason}); moved to ${movedTo}${then}`);
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

function loadBytes(path: string): Uint8Array | undefined {
  const bytes = readFileIfExists(path);
  return bytes === undefined ? undefined : new Uint8Array(bytes);
}

/** Unchanged bytes are not written again (SD cards wear). */
function saveBytesOnChange(path: string, bytes: Uint8Array): void {
  const old = readFileIfExists(path);
  if (old !== undefined && Buffer.compare(old, bytes) === 0) return;
  writeFileAtomic(path, bytes);
}
