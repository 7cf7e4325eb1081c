import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { layerDeployments, type Layer } from '../../../provisioning/deployments/layering.js';

function layer(deployment: string, priority: number, services: Record<string, unknown>, extra: Partial<Layer> & { top?: Record<string, unknown> } = {}): Layer {
  const { top, ...rest } = extra;
  return { deployment, priority, revision: 1, compose: { services, ...top }, settings: null, ...rest };
}

test('layers add their services; the device gets one document the agent accepts', () => {
  const out = layerDeployments([
    layer('monitoring', 0, { exporter: { image: 'r/exporter:1' } }),
    layer('app', 10, { web: { image: 'r/web:1', volumes: ['data:/data'] } }, { top: { volumes: { data: {} } }, revision: 3 }),
  ]);
  assert.deepEqual(Object.keys(out.compose.services as object), ['exporter', 'web']);
  assert.deepEqual(out.compose.volumes, { data: {} });
  assert.deepEqual(out.sources, [
    { deployment: 'app', revision: 3, services: ['web'] },
    { deployment: 'monitoring', revision: 1, services: ['exporter'] },
  ]);
  assert.deepEqual(out.conflicts, []);
  assert.equal(parseDesiredState(out.compose).services.length, 2);
});

test('a service name claimed by two layers goes to the higher priority, and the conflict names both', () => {
  const out = layerDeployments([
    layer('base', 0, { agent: { image: 'r/agent:base' }, log: { image: 'r/log:1' } }),
    layer('special', 5, { agent: { image: 'r/agent:special' } }),
  ]);
  assert.equal((out.compose.services as Record<string, { image: string }>).agent!.image, 'r/agent:special');
  assert.deepEqual(out.conflicts, [{ kind: 'service', name: 'agent', winner: { deployment: 'special', priority: 5 }, losers: [{ deployment: 'base', priority: 0 }] }]);
  assert.deepEqual(out.sources.map((s) => [s.deployment, s.services]), [['special', ['agent']], ['base', ['log']]]);
});

test('equal priorities: the name that sorts first wins, whatever order the layers come in', () => {
  const a = layer('alpha', 1, { s: { image: 'r/a:1' } });
  const b = layer('beta', 1, { s: { image: 'r/b:1' } });
  assert.deepEqual(layerDeployments([a, b]), layerDeployments([b, a]));
  assert.equal((layerDeployments([b, a]).compose.services as Record<string, { image: string }>).s!.image, 'r/a:1');
});

test("a layer's top-level x-tsunagu applies to its own services only; a service's own value wins; the project name is dropped", () => {
  const out = layerDeployments([
    layer('crit', 1, { core: { image: 'r/core:1' }, side: { image: 'r/side:1', 'x-tsunagu': { priority: 'best-effort' } } }, { top: { name: 'critproj', 'x-tsunagu': { priority: 'critical' } } }),
    layer('plain', 0, { other: { image: 'r/other:1' } }),
  ]);
  const services = out.compose.services as Record<string, Record<string, unknown>>;
  assert.deepEqual(services.core!['x-tsunagu'], { priority: 'critical' });
  assert.deepEqual(services.side!['x-tsunagu'], { priority: 'best-effort' });
  assert.equal(services.other!['x-tsunagu'], undefined);
  assert.equal(out.compose.name, undefined);
  assert.equal(out.compose['x-tsunagu'], undefined);
});

test('settings merge per setting by priority, with conflicts shown', () => {
  const out = layerDeployments([
    layer('base', 0, {}, { settings: { metricsIntervalMs: 60_000 } }),
    layer('chatty', 9, {}, { settings: { metricsIntervalMs: 10_000 } }),
    layer('quiet', -1, {}, { settings: {} }),
  ]);
  assert.deepEqual(out.settings, { metricsIntervalMs: 10_000 });
  assert.deepEqual(out.conflicts, [{ kind: 'setting', name: 'metricsIntervalMs', winner: { deployment: 'chatty', priority: 9 }, losers: [{ deployment: 'base', priority: 0 }] }]);
});

test('no layers: an empty document (the device stops what deployments gave it), no settings', () => {
  const out = layerDeployments([]);
  assert.deepEqual(out, { compose: { services: {} }, settings: null, sources: [], conflicts: [] });
  assert.equal(parseDesiredState(out.compose).services.length, 0);
});

test('the inputs are not modified', () => {
  const l = layer('x', 0, { s: { image: 'r/s:1' } }, { top: { 'x-tsunagu': { priority: 'critical' } } });
  const copy = structuredClone(l);
  layerDeployments([l]);
  assert.deepEqual(l, copy);
});
