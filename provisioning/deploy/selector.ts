import { TsunaguError } from '../../protocol/errors.js';

/** A label selector: every pair must equal the device's label of the same key. */
export type Selector = Readonly<Record<string, string>>;

// The same shapes as LabelsSchema in protocol/reports.ts, so a selector can name any label a device reports.
const KEY = /^[a-z0-9][a-z0-9._/-]{0,62}$/;
const VALUE = /^[A-Za-z0-9._/-]{0,63}$/;

function bad(text: string, why: string): never {
  throw new TsunaguError('CONFIG', `bad selector "${text}": ${why} (expected key=value[,key=value…], e.g. arch=arm64,gpu=true)`);
}

/** Parse `key=value,key=value`. Throws CONFIG with the offending part. */
export function parseSelector(text: string): Selector {
  if (text.trim() === '') bad(text, 'it is empty');
  const out: Record<string, string> = {};
  for (const rawPart of text.split(',')) {
    const part = rawPart.trim();
    if (part === '') bad(text, 'an empty pair (two commas or a trailing comma)');
    const eq = part.indexOf('=');
    if (eq < 0) bad(text, `"${part}" has no "="`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!KEY.test(key)) bad(text, `"${key}" is not a label key (lowercase letters, digits, . _ / -; starts with a letter or digit)`);
    if (!VALUE.test(value)) bad(text, `"${value}" is not a label value (letters, digits, . _ / -; at most 63)`);
    if (key in out) bad(text, `"${key}" appears twice`);
    out[key] = value;
  }
  return out;
}

export function matchesSelector(selector: Selector, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);
}

export function formatSelector(selector: Selector): string {
  return Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
}
