import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, readdirSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as z from 'zod/mini';
import { fsyncDirectory } from '../../common/atomic-file.js';
import { loadJsonState, saveJsonState } from '../state/json-state-file.js';
import type { LoadResult } from '../state/json-state-file.js';

/*
 * The file-level steps of the outbox; no queue policy lives here.
 *
 * Layout on disk, and why it survives a power cut at any instant:
 *
 *  outbox-<gen>.log  append-only frames (frames.ts): messages and "acked up to
 *                    seq N" marks. A torn append leaves a short frame at the
 *                    end, which the header check and length reveal; it is cut off on
 *                    load. Anything else that does not parse moves the file
 *                    aside to `.bad`, and the valid prefix is kept.
 *  outbox.idx        small JSON, replaced atomically (write, fsync, rename):
 *                    which log generation is current and the drop counts not
 *                    yet reported. It is the commit point of a compaction:
 *                    the new log is written and fsynced in full, then the
 *                    index is switched to it, then the old log is deleted.
 *                    Whichever step a crash interrupts, the index names one
 *                    complete log and other generations are leftovers.
 *
 * Design alternative rejected: one file rewritten atomically per change.
 * Simpler, but every enqueue would rewrite the whole backlog (flash wear);
 * appends write only the new frame.
 */

const count = z.int().check(z.nonnegative());
export const OutboxIndexSchema = z.object({
  v: z.literal(1),
  /** Current log generation, or null when no log exists. */
  log: z.nullable(z.int().check(z.positive())),
  /** Drops not yet acknowledged as reported. */
  dropped: z.object({ reply: count, event: count, state: count, metrics: count }),
});
export type OutboxIndex = z.infer<typeof OutboxIndexSchema>;

const LOG_NAME = /^outbox-([0-9]{1,15})\.log$/;

export function indexPath(dir: string): string {
  return join(dir, 'outbox.idx');
}

export function logPath(dir: string, gen: number): string {
  return join(dir, `outbox-${gen}.log`);
}

export function readIndex(dir: string): LoadResult<OutboxIndex> {
  return loadJsonState(indexPath(dir), OutboxIndexSchema);
}

/** Replace the index atomically, or remove it when there is nothing to remember. */
export function writeIndex(dir: string, index: OutboxIndex | undefined): void {
  if (index !== undefined) {
    saveJsonState(indexPath(dir), index);
    return;
  }
  try {
    unlinkSync(indexPath(dir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Create the outbox's directory for its first file. A new directory entry is
 * made durable in its parent too, as a new file's is in its directory.
 */
export function ensureDir(dir: string, fsync: boolean): void {
  const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (created !== undefined && fsync) fsyncDirectory(dirname(dir));
}

/**
 * Remove the directory once the outbox keeps nothing (docs/agent.md: the
 * directory exists only while something waits). A directory still holding a
 * file (a log moved aside as `.bad`) stays, for a person to look at.
 */
export function removeDirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err;
  }
}

/** Temp files of an index write that a crash interrupted (see writeFileAtomic). */
const INDEX_TEMP = /^\.outbox\.idx\.[0-9]+\.tmp$/;

/** Log generations present in `dir`, ascending; removes index temp files a crash left behind. */
export function listGenerations(dir: string): number[] {
  const gens: number[] = [];
  for (const name of readdirSync(dir)) {
    const m = LOG_NAME.exec(name);
    if (m) gens.push(Number(m[1]));
    else if (INDEX_TEMP.test(name)) unlinkSync(join(dir, name));
  }
  return gens.sort((a, b) => a - b);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset, bytes.byteLength - offset);
}

/**
 * Append one frame at `size` (the current end). A failed write (ENOSPC, EIO)
 * is cut off again, so that frames appended later stay reachable by the
 * load-time scan, which stops at the first bad frame.
 */
export function appendFrame(fd: number, bytes: Uint8Array, size: number, fsync: boolean): void {
  try {
    writeAll(fd, bytes);
    if (fsync) fsyncSync(fd);
  } catch (err) {
    try {
      ftruncateSync(fd, size);
    } catch {
      // The load-time scan cuts the torn frame instead.
    }
    throw err;
  }
}

/**
 * Copy `frames` (in order) from `fromFd` into a new file and make it durable,
 * directory entry included, before anyone may point at it. Returns the fd of
 * the new file and the new offset of each frame.
 */
export function copyFrames(fromFd: number, frames: readonly { offset: number; length: number }[], dir: string, gen: number): { fd: number; offsets: number[]; size: number } {
  const path = logPath(dir, gen);
  const fd = openSync(path, 'w+', 0o600);
  const offsets: number[] = [];
  let size = 0;
  try {
    for (const f of frames) {
      const bytes = Buffer.alloc(f.length);
      if (readSync(fromFd, bytes, 0, f.length, f.offset) !== f.length) throw new Error(`short read at ${f.offset}`);
      writeAll(fd, bytes);
      offsets.push(size);
      size += f.length;
    }
    fsyncSync(fd);
    fsyncDirectory(dir);
  } catch (err) {
    closeSync(fd);
    unlinkSync(path);
    throw err;
  }
  return { fd, offsets, size };
}
