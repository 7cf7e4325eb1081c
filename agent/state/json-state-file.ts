import { renameSync } from 'node:fs';
import type * as z from 'zod/mini';
import { TsunaguError } from '../../protocol/errors.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import { readFileIfExists, writeFileAtomic } from '../../common/atomic-file.js';

export type LoadResult<T> =
  | { status: 'ok'; value: T }
  | { status: 'missing' }
  /** The file was unreadable and has been moved to `movedTo`; the caller recovers. */
  | { status: 'corrupt'; movedTo: string; error: TsunaguError };

/**
 * Load a JSON state file. A file that does not parse or does not match its
 * schema (a torn write on a card without power-loss protection, NUL bytes
 * after a crash) is moved aside to `<name>.bad` rather than thrown on:
 * throwing would make the agent crash-loop on every boot.
 */
export function loadJsonState<T>(path: string, schema: z.core.$ZodType<T>): LoadResult<T> {
  const bytes = readFileIfExists(path);
  if (bytes === undefined) return { status: 'missing' };
  try {
    return { status: 'ok', value: checkSchema(schema, parseJsonBytes(bytes, { maxBytes: 16 * 1024 * 1024, maxDepth: 64 }), path) };
  } catch (err) {
    const movedTo = `${path}.bad`;
    renameSync(path, movedTo);
    const cause = err instanceof TsunaguError ? err.message : String(err);
    return { status: 'corrupt', movedTo, error: new TsunaguError('STATE_CORRUPT', `${path} was unreadable (${cause}); moved to ${movedTo}`) };
  }
}

/** The bytes saveJsonState writes for `value`, to tell whether a write would change anything. */
export function serializedJsonState(value: unknown): string {
  return `${JSON.stringify(value, null, 1)}\n`;
}

export function saveJsonState(path: string, value: unknown): void {
  writeFileAtomic(path, serializedJsonState(value));
}
