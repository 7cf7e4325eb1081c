import type { Labels } from '../../protocol/reports.js';

/**
 * The inventory's capability labels as the supervisor matches them against
 * `x-tsunagu.requires`: every label as `key=value`, and a boolean label that
 * is true also as its bare `key` (so `requires: [gpu]` means `gpu=true`).
 */
export function deviceLabelSet(labels: Labels): Set<string> {
  const out = new Set<string>();
  for (const [key, value] of Object.entries(labels)) {
    out.add(`${key}=${value}`);
    if (value === 'true') out.add(key);
  }
  return out;
}
