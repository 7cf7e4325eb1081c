import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileBackoffStore } from '../../agent/supervisor/backoff-store.js';
import { supervisorHarness } from '../support/supervisor-harness.js';

test('a crash-looping service backs off while another service updates', async (t) => {
  const h = await supervisorHarness(t, 'crash');
  await h.settle(h.compose({
    crasher: { image: h.images.crash, restart: 'always' },
    web: { image: h.images.busybox1, restart: 'always' },
  }), 'v1');
  await h.waitFor('the crasher to be in back-off', () => h.supervisor.state().services.find((s) => s.name === 'crasher')?.state === 'backoff');
  const crasher = h.supervisor.state().services.find((s) => s.name === 'crasher');
  assert.equal(crasher?.lastExitCode, 3);
  assert.equal(h.supervisor.state().status, 'degraded');

  // While it loops, an update of the other service goes through.
  const updating = Date.now();
  const state = await h.settle(h.compose({
    crasher: { image: h.images.crash, restart: 'always' },
    web: { image: h.images.busybox2, restart: 'always' },
  }), 'v2');
  assert.ok(Date.now() - updating < 5000, 'the update did not wait for the crash loop');
  const web = state.services.find((s) => s.name === 'web');
  assert.equal(web?.state, 'running');
  assert.equal(web?.image, h.images.busybox2);
  assert.equal((await h.only('web')).Config.Image, h.images.busybox2);

  // Delays grow (1 s, 2 s, 4 s cap): over ~6 s it restarts a few times, not dozens.
  const startsBefore = h.events.filter((e) => e.type === 'started' && e.service === 'crasher').length;
  await new Promise((r) => setTimeout(r, 6000));
  const starts = h.events.filter((e) => e.type === 'started' && e.service === 'crasher').length - startsBefore;
  assert.ok(starts >= 1 && starts <= 4, `crasher started ${starts} times in 6 s`);
  const backoffs = h.events.flatMap((e) => (e.type === 'backoff' && e.service === 'crasher' ? [e] : []));
  assert.ok(backoffs.length >= 2, 'backoffs.length >= 2');
  const gaps = backoffs.map((e) => e.retryAt).slice(1).map((at, i) => at - (backoffs[i]?.retryAt ?? 0));
  assert.ok(gaps.every((g) => g >= 1000), `retry gaps grow: ${gaps.join(', ')}`);
  const restartCount = h.supervisor.state().services.find((s) => s.name === 'crasher')?.restartCount ?? 0;
  assert.ok(restartCount >= 2, `restart count ${restartCount}`);

  // The operator's fix is a new configuration: it starts at once, not when the back-off ends.
  const fixed = await h.settle(h.compose({
    crasher: { image: h.images.busybox1, restart: 'always' },
    web: { image: h.images.busybox2, restart: 'always' },
  }), 'v3');
  assert.equal(fixed.services.find((s) => s.name === 'crasher')?.state, 'running', JSON.stringify(fixed.services));
  assert.equal(fixed.status, 'synced');
});

test('a pull failure keeps the old version running and is retried with back-off', async (t) => {
  const h = await supervisorHarness(t, 'pullfail');
  await h.settle(h.compose({ web: { image: h.images.busybox1, restart: 'always' } }), 'v1');
  const before = await h.only('web');

  const state = await h.settle(h.compose({ web: { image: h.images.missing, restart: 'always' } }), 'v2');
  assert.equal(state.status, 'degraded');
  const web = state.services[0];
  assert.equal(web?.state, 'pull-failed');
  assert.equal(web?.outdated, true);
  assert.equal(web?.image, h.images.busybox1, 'reports what actually runs');
  assert.equal(web?.lastError?.code, 'PULL_FAILED');
  assert.ok(web?.retryAt, 'web?.retryAt');

  // Retried (500 ms, 1 s, ...), and all the while the old container runs on.
  await h.waitFor('a second pull attempt', () => h.events.filter((e) => e.type === 'pull-failed').length >= 3, 10_000);
  const after = await h.only('web');
  assert.equal(after.Id, before.Id);
  assert.equal(after.State.Running, true);
  assert.equal(after.State.StartedAt, before.State.StartedAt);

  // A fixed desired state recovers.
  const fixed = await h.settle(h.compose({ web: { image: h.images.busybox2, restart: 'always' } }), 'v3');
  assert.equal(fixed.status, 'synced');
  assert.equal(fixed.services[0]?.lastError, null);
});

test('crash-loop back-off survives a supervisor restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-backoff-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const h = await supervisorHarness(t, 'persist', { backoffStore: new FileBackoffStore(join(dir, 'backoff.json')) });
  const doc = h.compose({ crasher: { image: h.images.crash, restart: 'always' } });
  await h.settle(doc, 'v1');
  await h.waitFor('two counted crashes', () => (h.supervisor.state().services[0]?.restartCount ?? 0) >= 2);
  const counted = h.supervisor.state().services[0]?.restartCount ?? 0;

  await h.restartSupervisor();
  const state = await h.settle(doc, 'v1');
  assert.ok((state.services[0]?.restartCount ?? 0) >= counted, 'the count was not reset');
  await h.waitFor('the next crash', () => h.events.filter((e) => e.type === 'backoff').length > counted, 10_000);
  const next = h.events.filter((e) => e.type === 'backoff').at(-1);
  assert.ok(next && next.type === 'backoff' && next.restartCount > counted, "next && next.type === 'backoff' && next.restartCount > counted");
});
