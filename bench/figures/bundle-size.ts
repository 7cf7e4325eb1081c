import { readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { AGENT_BUNDLE } from '../../test/support/agent-process.js';
import type { FigureResult } from '../figure.js';
import { summarize } from '../stats.js';

/** The size of the one file a device runs: every byte is parsed at each start and kept as source in the heap. */
export function measureBundleSize(): FigureResult {
  const bytes = statSync(AGENT_BUNDLE).size;
  const gzipped = gzipSync(readFileSync(AGENT_BUNDLE), { level: 9 }).length;
  return {
    key: 'bundle',
    title: 'bundle size of `dist/tsunagu-agent.js`',
    value: { summary: summarize([bytes / 1024 / 1024]), unit: 'MB', digits: 2 },
    target: { op: '<=', limit: 2 },
    note: `${bytes} bytes (${(gzipped / 1024).toFixed(0)} KiB gzipped), minified, CommonJS, target node18, built by scripts/bundle.mjs at the start of the run. MB = 2^20 bytes.`,
  };
}
