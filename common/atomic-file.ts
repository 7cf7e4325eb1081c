import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Replace `path` with `data` so that a power cut at any instant leaves either
 * the old file or the new one: write a temp file in the same directory, fsync
 * it, rename over the target, then fsync the directory so the rename itself
 * is durable. Synchronous on purpose: callers write small files rarely, and a
 * half-finished async write racing a shutdown is exactly what we must avoid.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o600): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, atomicTempName(basename(path), process.pid));
  const fd = openSync(tmp, 'w', mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let offset = 0;
    while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset, bytes.byteLength - offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw err;
  }
  fsyncDirectory(dir);
}

/**
 * The temp file name writeFileAtomic uses for `name`: the writer's pid in it,
 * so that a temp file left by a power cut or a kill names a writer that is gone.
 */
export function atomicTempName(name: string, pid: number): string {
  return `.${name}.${pid}.tmp`;
}

const ATOMIC_TEMP = /^\.(.+)\.([0-9]{1,10})\.tmp$/;

/** The writer's pid of a writeFileAtomic temp file, or undefined when `name` is not one. */
export function atomicTempWriter(name: string): number | undefined {
  const m = ATOMIC_TEMP.exec(name);
  return m === null ? undefined : Number(m[2]);
}

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Read a file, or undefined when it does not exist. Other errors propagate. */
export function readFileIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
