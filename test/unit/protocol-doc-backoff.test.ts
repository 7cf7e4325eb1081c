import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as z from 'zod/mini';
import { fullJitterDelay } from '../../common/backoff.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { DEFAULT_LINK_BACKOFF } from '../../agent/link/mqtt-device-link.js';

/** The back-off that protocol.md promises (§6.6 enrollment, §7 reconnects) is the agent's. */
const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');
const section = (heading: string): string => doc.slice(doc.indexOf(heading)).split(/\n#{2,3} /)[0]!;
const config = z.parse(AgentConfigSchema, {});

test('§7 states the reconnect defaults and the spread the agent uses', () => {
  const s7 = section("## 7. The device's own session");
  assert.match(s7, /max\(spread, base · 2\^min\(n, 30\)\)/);
  assert.match(s7, /defaults base 1 s, cap 60 s, spread 10 s/);
  assert.deepEqual(
    { base: config.link.backoffBaseMs, cap: config.link.backoffCapMs, spread: config.link.reconnectSpreadMs },
    { base: 1_000, cap: 60_000, spread: 10_000 },
  );
  assert.deepEqual(DEFAULT_LINK_BACKOFF, { baseMs: 1_000, capMs: 60_000, floorMs: 10_000 });
  // The first reconnect after a loss: uniform in [0, 10 s), not [0, 1 s).
  const policy = { baseMs: config.link.backoffBaseMs, capMs: config.link.backoffCapMs, floorMs: config.link.reconnectSpreadMs };
  assert.equal(fullJitterDelay(0, policy, () => 0.999), 9_990);
  assert.equal(fullJitterDelay(6, policy, () => 0.999), 59_940);
});

test('§6.6 states the enrollment defaults the agent uses', () => {
  assert.match(section('### 6.6 Retries and back-off'), /defaults base 1 s, cap 5 min/);
  assert.deepEqual({ base: config.enrollment.backoffBaseMs, cap: config.enrollment.backoffCapMs }, { base: 1_000, cap: 300_000 });
});
