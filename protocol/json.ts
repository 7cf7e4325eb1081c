import * as z from 'zod/mini';
import { en } from 'zod/locales';
import { TsunaguError } from './errors.js';

export interface JsonLimits {
  /** Largest accepted input, in bytes. */
  maxBytes: number;
  /** Deepest accepted nesting of arrays and objects. */
  maxDepth: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = { maxBytes: 256 * 1024, maxDepth: 32 };

/**
 * Depth is checked on the raw text before JSON.parse: a deeply nested input
 * is refused in linear time without building it. Brackets inside strings are
 * skipped so that text values cannot trip the count.
 */
function checkDepth(text: string, maxDepth: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) throw new TsunaguError('TOO_DEEP', `JSON nesting deeper than ${maxDepth}`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

/** Parse untrusted bytes as JSON within limits; every failure is a TsunaguError. */
export function parseJsonBytes(bytes: Uint8Array | string, limits: JsonLimits = DEFAULT_JSON_LIMITS): unknown {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (size > limits.maxBytes) throw new TsunaguError('TOO_LARGE', `${size} bytes exceeds the limit of ${limits.maxBytes}`);
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  checkDepth(text, limits.maxDepth);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TsunaguError('MALFORMED', `invalid JSON: ${(err as Error).message}`);
  }
}

/**
 * zod's English messages, given to every parse whose messages reach a person.
 * zod/mini registers no locale (all its messages would read "Invalid input");
 * classic zod registers English for the whole process when it builds its first
 * schema. Passing it explicitly keeps the messages the same in every process,
 * whichever of the two it loaded.
 */
export const ENGLISH_ISSUES: z.core.ParseContext<z.core.$ZodIssue> = { error: en().localeError };

/** Validate a parsed value against a schema (zod/mini's or classic zod's); the error names the first offending field. */
export function checkSchema<T>(schema: z.core.$ZodType<T>, value: unknown, what: string): T {
  const result = z.safeParse(schema, value, ENGLISH_ISSUES);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
  throw new TsunaguError('SCHEMA', `${what}: ${path}: ${issue?.message ?? 'invalid'}`, { field: path });
}

export function parseJsonWith<T>(schema: z.core.$ZodType<T>, bytes: Uint8Array | string, what: string, limits?: JsonLimits): T {
  return checkSchema(schema, parseJsonBytes(bytes, limits), what);
}
