import { renameSync, rmSync } from 'node:fs';
import type { Logger } from '../../common/logger.js';
import { BootstrapFileSchema, type BootstrapFile } from '../../protocol/bootstrap.js';
import { TsunaguError } from '../../protocol/errors.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import { statePaths } from '../identity.js';
import { readFileIfExists } from '../state/atomic-file.js';
import { saveJsonState } from '../state/json-state-file.js';

/** Where a first-boot file may be dropped, in order of preference after --bootstrap. */
export const BOOTSTRAP_CANDIDATES = ['/boot/firmware/tsunagu.json', '/boot/tsunagu.json', '/etc/tsunagu/bootstrap.json'];

/**
 * Find the bootstrap file and take it into the state dir (0600). A copy on
 * the boot partition (FAT, readable by anyone with the card) is removed once
 * the private copy is durable, so the shared credential does not stay there.
 */
export function takeBootstrap(stateDir: string, explicit: string | undefined, logger: Logger): BootstrapFile {
  const own = statePaths(stateDir).bootstrap;
  const candidates = [...(explicit === undefined ? [] : [explicit]), ...BOOTSTRAP_CANDIDATES];
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
    saveJsonState(own, file);
    if (path.startsWith('/boot/')) {
      try {
        rmSync(path);
        logger.info({ path }, 'moved the bootstrap file off the boot partition');
      } catch (err) {
        try { renameSync(path, `${path}.taken`); } catch { /* read-only: leave it, say so */ }
        logger.warn({ path, err: (err as Error).message }, 'could not remove the bootstrap file from the boot partition');
      }
    }
    return file;
  }
  const kept = readFileIfExists(own);
  if (kept !== undefined) {
    try {
      return checkSchema(BootstrapFileSchema, parseJsonBytes(kept), own);
    } catch (err) {
      // The fleet's public keys are in it: without them nothing from the fleet can be
      // verified, so there is nothing to recover to. Moved aside, so that a new file
      // dropped on the boot partition is taken at the next start, and the agent exits
      // with BOOTSTRAP_MISSING (status 78), which systemd does not restart on.
      const movedTo = `${own}.bad`;
      renameSync(own, movedTo);
      throw new TsunaguError('BOOTSTRAP_MISSING', `the kept bootstrap file ${own} was unreadable (${(err as Error).message}); moved to ${movedTo}. Supply the fleet's bootstrap file again: --bootstrap FILE or ${BOOTSTRAP_CANDIDATES.join(', ')}`);
    }
  }
  throw new TsunaguError('BOOTSTRAP_MISSING', `no bootstrap file: pass --bootstrap FILE or put one at ${BOOTSTRAP_CANDIDATES.join(', ')}`);
}
