import { chownSync, renameSync, rmSync, statSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../../common/logger.js';
import { BootstrapFileSchema, type BootstrapFile } from '../../protocol/bootstrap.js';
import { TsunaguError } from '../../protocol/errors.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import { statePaths } from '../identity.js';
import { readFileIfExists } from '../../common/atomic-file.js';
import { saveJsonState } from '../state/json-state-file.js';

/** Where a first-boot file may be dropped, in order of preference after --bootstrap. */
export const BOOTSTRAP_CANDIDATES = ['/boot/firmware/tsunagu.json', '/boot/tsunagu.json', '/etc/tsunagu/bootstrap.json'];

/** The boot partition: FAT, readable by anyone who holds the card, and it cannot hold permissions. */
function onBootPartition(path: string): boolean {
  return path.startsWith('/boot/');
}

export interface TakeBootstrapOptions {
  /** Give the private copy to this user (root taking the file for an unprivileged agent). */
  owner?: { uid: number; gid: number };
}

/**
 * Find the bootstrap file and take it into the state dir (0600). A copy on
 * the boot partition is removed once the private copy is durable, so the
 * claim token does not stay where anyone with the card can read it. Removed
 * rather than scrubbed: a scrubbed file would be found, refused as invalid and
 * logged at every boot, and would still say which fleet the device joins.
 * A read-only boot partition keeps it: the agent says so at every start
 * (the operator must remove it) and works from its private copy.
 */
export function takeBootstrap(stateDir: string, explicit: string | undefined, logger: Logger, opts: TakeBootstrapOptions = {}): BootstrapFile {
  const own = statePaths(stateDir).bootstrap;
  const candidates = [...(explicit === undefined ? [] : [explicit]), ...BOOTSTRAP_CANDIDATES];
  const kept = readKept(own);
  for (const path of candidates) {
    const bytes = readFileIfExists(path);
    if (bytes === undefined) continue;
    let file: BootstrapFile;
    try {
      file = checkSchema(BootstrapFileSchema, parseJsonBytes(bytes), path);
    } catch (err) {
      logger.error({ path, err: (err as Error).message }, 'bootstrap file is invalid; ignoring it');
      continue;
    }
    // Written only when it changed: a file left on a read-only partition is found at every boot.
    if (kept.status !== 'ok' || !isDeepStrictEqual(kept.value, file)) {
      saveJsonState(own, file);
      logger.info({ from: path, to: own }, 'took a private copy of the bootstrap file');
    }
    if (opts.owner !== undefined) chownSync(own, opts.owner.uid, opts.owner.gid);
    if (onBootPartition(path)) removeFromBootPartition(path, logger);
    return file;
  }
  if (kept.status === 'ok') return kept.value;
  if (kept.status === 'invalid') {
    // The fleet's public keys are in it: without them nothing from the fleet can be
    // verified, so there is nothing to recover to. Moved aside, so that a new file
    // dropped on the boot partition is taken at the next start, and the agent exits
    // with BOOTSTRAP_MISSING (status 78), which systemd does not restart on.
    const movedTo = `${own}.bad`;
    renameSync(own, movedTo);
    throw new TsunaguError('BOOTSTRAP_MISSING', `the kept bootstrap file ${own} was unreadable (${kept.message}); moved to ${movedTo}. Supply the fleet's bootstrap file again: --bootstrap FILE or ${BOOTSTRAP_CANDIDATES.join(', ')}`);
  }
  throw new TsunaguError('BOOTSTRAP_MISSING', `no bootstrap file: pass --bootstrap FILE or put one at ${BOOTSTRAP_CANDIDATES.join(', ')}`);
}

function readKept(own: string): { status: 'ok'; value: BootstrapFile } | { status: 'missing' } | { status: 'invalid'; message: string } {
  const bytes = readFileIfExists(own);
  if (bytes === undefined) return { status: 'missing' };
  try {
    return { status: 'ok', value: checkSchema(BootstrapFileSchema, parseJsonBytes(bytes), own) };
  } catch (err) {
    return { status: 'invalid', message: (err as Error).message };
  }
}

function removeFromBootPartition(path: string, logger: Logger): void {
  try {
    rmSync(path);
    logger.info({ path }, 'removed the bootstrap file from the boot partition (its claim token is now only in the state directory)');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'EROFS' ? 'the boot partition is mounted read-only' : code === 'EACCES' || code === 'EPERM' ? 'the agent may not write there (take-bootstrap runs as root in the unit)' : (err as Error).message;
    logger.warn({ path, code, hint }, `the bootstrap file stays on the boot partition, readable by anyone with the card: remove it by hand (${hint})`);
  }
}

/** The owner of the state directory: who the private copy belongs to when root takes it. */
export function stateDirOwner(stateDir: string): { uid: number; gid: number } | undefined {
  try {
    const st = statSync(stateDir);
    return { uid: st.uid, gid: st.gid };
  } catch {
    return undefined;
  }
}
