import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentConfigSchema } from '../../../agent/config.js';
import { ENGLISH_ISSUES } from '../../../protocol/json.js';

const pressureOf = (input: object): unknown => AgentConfigSchema.parse(input).pressure;
const refusal = (pressure: object): string => {
  // As the agent parses its config (checkSchema): zod/mini's messages need the English map.
  const r = AgentConfigSchema.safeParse({ pressure }, ENGLISH_ISSUES);
  assert.equal(r.success, false);
  return r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join(' | ') ?? '';
};

test('defaults for a 512 MB–1 GB board: on, memory 10 %/20 %, temperature 80/70 °C, 30 s escalation, 120 s clear', () => {
  assert.deepEqual(pressureOf({}), {
    enabled: true, memory: { evictBelowPercent: 10, clearAbovePercent: 20 }, temperature: { evictAtCelsius: 80, clearAtCelsius: 70 },
    escalateAfterMs: 30_000, clearForMs: 120_000,
  });
  assert.deepEqual(pressureOf({ pressure: { temperature: null, clearForMs: 5000 } }), {
    enabled: true, memory: { evictBelowPercent: 10, clearAbovePercent: 20 }, temperature: null, escalateAfterMs: 30_000, clearForMs: 5000,
  });
});

test('thresholds must form a band; unknown keys are refused', () => {
  assert.match(refusal({ memory: { evictBelowPercent: 25 } }), /^pressure\.memory: clearAbovePercent must be above evictBelowPercent/);
  assert.match(refusal({ memory: { evictBelowBytes: 1000 } }), /^pressure\.memory: evictBelowBytes and clearAboveBytes go together/);
  assert.match(refusal({ memory: { evictBelowBytes: 1000, clearAboveBytes: 1000 } }), /^pressure\.memory: clearAboveBytes must be above evictBelowBytes/);
  assert.match(refusal({ temperature: { clearAtCelsius: 85 } }), /^pressure\.temperature: clearAtCelsius must be below evictAtCelsius/);
  assert.match(refusal({ memory: { evictBelowPercent: 0 } }), /^pressure\.memory\.evictBelowPercent: /);
  assert.match(refusal({ escalate: 1 }), /^pressure: Unrecognized key: "escalate"/);
});
