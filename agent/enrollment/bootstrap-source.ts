import { renameSync, rmSync } from 'node:fs';
import type { Logger } from '../../common/logger.js';
import { BootstrapFileSchema, type BootstrapFile } from '../../protocol/bootstrap.js';
import { TsunaguError } from '../../protocol/errors.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import { statePaths } from '../identity.js';
import { readFileIfExists } from '../state/atomic-file.js';
import { saveJsonState, serializedJsonState } from '../state/json-state-file.js';

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
    // Written only when it differs: a file kept in /etc/tsunagu (or given with
    // --bootstrap) is found again at every start, and state is written on change only.
    const kept = readFileIfExists(own);
    if (kept === undefined || kept.toString('utf8') !== serializedJsonState(file)) saveJsonState(own, file);
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
      throw new TsunaguError('BOOTSTRAP_MISSING', `the kept bootstrap file ${own} is invalid: ${(err as Error).message}`);
    }
  }
  throw new TsunaguError('BOOTSTRAP_MISSING', `no bootstrap file: pass --bootstrap FILE or put one at ${BOOTSTRAP_CANDIDATES.join(', ')}`);
}
