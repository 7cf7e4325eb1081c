import { readdirSync, unlinkSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { atomicTempWriter } from '../../common/atomic-file.js';

/**
 * Whether `name` is a temp file of writeFileAtomic whose writer is gone: a
 * write that a power cut or a kill interrupted before its rename. Nothing
 * else is a leftover: a file of another name may be a person's.
 */
export function isLeftoverTemp(name: string, writerAlive: (pid: number) => boolean): boolean {
  const pid = atomicTempWriter(name);
  return pid !== undefined && !writerAlive(pid);
}

/**
 * Remove the leftover temp files (isLeftoverTemp) in `dir` and its direct
 * subdirectories (the outbox's). Runs at start while this process holds the
 * state directory's lock; a writer still alive (the root `take-bootstrap`,
 * which does not take the lock) keeps its file. Returns the paths removed.
 */
export function removeLeftoverTempFiles(dir: string, writerAlive: (pid: number) => boolean): string[] {
  const removed: string[] = [];
  const sweep = (at: string, depth: number): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(at, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const entry of entries) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) {
        if (depth === 0) sweep(path, 1);
      } else if (entry.isFile() && isLeftoverTemp(entry.name, writerAlive)) {
        try {
          unlinkSync(path);
          removed.push(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    }
  };
  sweep(dir, 0);
  return removed;
}
