import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { createOptions } from '../../../agent/supervisor/container-spec.js';
import { LABELS, MANAGED_VALUE } from '../../../agent/supervisor/container-labels.js';
import { RESERVED_LABEL_PREFIX } from '../../../protocol/compose/reserved-labels.js';

/**
 * The labels the agent sets are what operators filter on: each has its row in
 * docs/agent.md, "Container labels", and the section names none that the
 * agent does not set.
 */
const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'agent.md'), 'utf8');
const section = /^## Container labels\n([\s\S]*?)(?=^## )/m.exec(doc)?.[1] ?? '';
const rows = new Map([...section.matchAll(/^\| `([^`]+)` \| ([^|]+) \|/gm)].map((m) => [m[1]!, m[2]!.trim()]));
const rowLabels = [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);

test('docs/agent.md has a "Container labels" section with a table row per label', () => {
  assert.ok(section.length > 0, 'no "## Container labels" section in docs/agent.md');
  const missing = Object.values(LABELS).filter((l) => !rows.has(l));
  assert.deepEqual(missing, [], `document these labels in docs/agent.md, "Container labels": ${missing.join(', ')}`);
});

test('the section documents no label the agent does not set, and each once', () => {
  const known: readonly string[] = Object.values(LABELS);
  assert.deepEqual(rowLabels.filter((l) => !known.includes(l)), []);
  assert.equal(new Set(rowLabels).size, rowLabels.length);
});

test('every label is under the reserved prefix, and the section says that prefix is refused in desired states', () => {
  for (const l of Object.values(LABELS)) assert.ok(l.startsWith(RESERVED_LABEL_PREFIX), `${l} is not under ${RESERVED_LABEL_PREFIX}`);
  assert.match(section, new RegExp(`\`${RESERVED_LABEL_PREFIX.replace(/\./g, '\\.')}\``));
  assert.match(section, /`SCHEMA`/);
  assert.equal(rows.get(LABELS.managed), `\`${MANAGED_VALUE}\``);
});

test('every reserved label on a real create request, container and named volume, is documented', () => {
  const state = parseDesiredState({
    volumes: { data: null },
    services: {
      db: { image: 'db:1' },
      web: { image: 'web:1', depends_on: ['db'], volumes: ['data:/data'], labels: { team: 'a' } },
    },
  });
  const web = state.services.find((s) => s.name === 'web')!;
  const create = createOptions(web, { scope: 'prod', project: 'demo', configHash: 'h1', version: 'v7' });
  const set = [
    ...Object.keys(create.Labels ?? {}),
    ...(create.HostConfig?.Mounts ?? []).flatMap((m) => Object.keys(m.VolumeOptions?.Labels ?? {})),
  ].filter((k) => k.startsWith(RESERVED_LABEL_PREFIX));
  assert.ok(set.length > 0, 'set.length > 0');
  assert.deepEqual([...new Set(set)].filter((k) => !rows.has(k)), []);
});
