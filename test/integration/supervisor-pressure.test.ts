import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PressureMonitor, type PressureEvent } from '../../agent/pressure/pressure-monitor.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { supervisorHarness } from '../support/supervisor-harness.js';

const MiB = 1024 * 1024;
const TOTAL = 512 * MiB;

// The readings are injected (a test cannot make the machine run out of memory on
// cue); the engine, the containers and the supervisor acting on them are real.
test('under pressure: best-effort services go first, then normal ones, never the critical one; they come back one tier at a time', async (t) => {
  const h = await supervisorHarness(t, 'pressure');
  const services = (extra: Record<string, Record<string, unknown>> = {}): ReturnType<typeof h.compose> => h.compose({
    db: { image: h.images.busybox1, restart: 'always', 'x-tsunagu': { priority: 'critical' } },
    web: { image: h.images.busybox1, restart: 'always' }, // normal: the default
    // restart: no, to show an evicted service comes back whatever its restart policy.
    thumbs: { image: h.images.busybox1, restart: 'no', 'x-tsunagu': { priority: 'best-effort' } },
    ...extra,
  });
  const first = await h.settle(services(), 'v1');
  assert.equal(first.status, 'synced', JSON.stringify(first.services));
  const db = await h.only('db');
  const web = await h.only('web');

  const pressure: PressureEvent[] = [];
  const monitor = new PressureMonitor({
    config: { memory: { evictBelowPercent: 10, clearAbovePercent: 20 }, temperature: { evictAtCelsius: 80, clearAtCelsius: 70 }, escalateAfterMs: 3000, clearForMs: 5000 },
    target: h.supervisor,
    onEvent: (e) => pressure.push(e),
  });
  let at = 0;
  /** One sample a second (monotonic), with `percent` of 512 MiB available; then let the supervisor act. */
  const sample = async (percent: number, temperatureCelsius: number | null = 50): Promise<void> => {
    at += 1000;
    monitor.observe({ at, memoryAvailableBytes: Math.round((TOTAL * percent) / 100), memoryTotalBytes: TOTAL, temperatureCelsius });
    await h.supervisor.idle();
  };
  const report = (name: string): { state: string; lastError: { code: string; message: string } | null } | undefined =>
    h.supervisor.state().services.find((s) => s.name === name);
  const running = async (name: string): Promise<boolean> => ((await h.containers()).get(name) ?? []).some((c) => c.State.Running);
  const gone = async (name: string): Promise<boolean> => ((await h.containers()).get(name) ?? []).length === 0;

  await sample(50);
  assert.equal(pressure.length, 0);

  // 1 s: memory low. Best-effort goes at once: its container is stopped and removed.
  await sample(5);
  await h.waitFor('thumbs to be removed', () => gone('thumbs'));
  assert.equal(report('thumbs')?.state, 'evicted');
  assert.deepEqual(report('thumbs')?.lastError, { code: 'PRESSURE_EVICTED', message: 'memory available 25.6 MiB (5.0 % of 512.0 MiB) below 10 %' });
  assert.equal(h.supervisor.state().status, 'degraded');
  assert.equal((await h.only('web')).Id, web.Id);
  assert.equal((await h.only('db')).Id, db.Id);
  assert.ok(await running('web') && await running('db'), "await running('web') && await running('db')");

  // An operator cannot start it meanwhile: the next pass would only stop it again.
  await assert.rejects(h.supervisor.startService('thumbs'), (e) => isTsunaguError(e, 'PRESSURE_EVICTED'));
  assert.ok(await gone('thumbs'), "await gone('thumbs')");

  // A new desired version under pressure: its new best-effort service is never started.
  const v2 = await h.settle(services({ batch: { image: h.images.busybox1, restart: 'always', 'x-tsunagu': { priority: 'best-effort' } } }), 'v2');
  assert.equal(v2.services.find((s) => s.name === 'batch')?.state, 'evicted');
  assert.ok(await gone('batch'), "await gone('batch')");

  // Inside the band (15 %): still pressure. At 3 s of it, normal services go too; critical ones stay.
  await sample(15);
  await sample(5);
  assert.equal(report('web')?.state, 'running', 'not before escalateAfterMs');
  await sample(5);
  await h.waitFor('web to be removed', () => gone('web'));
  assert.equal(report('web')?.state, 'evicted');
  assert.match(report('web')?.lastError?.message ?? '', /below 10 %; pressure lasted 3 s with best-effort services evicted$/);
  assert.equal((await h.only('db')).Id, db.Id);
  assert.ok(await running('db'), "await running('db')");
  assert.equal(report('db')?.state, 'running');

  // Clear (above 20 %), then a reading inside the band: still clear. Normal comes back after 5 s clear, best-effort 5 s later.
  await sample(25);
  await sample(15);
  await sample(30);
  await sample(30);
  await sample(30);
  assert.ok(await gone('web'), 'not before clearForMs');
  await sample(30); // 5 s after clearing
  await h.waitFor('web to run again', () => running('web'));
  assert.equal(report('web')?.state, 'running');
  assert.equal(report('thumbs')?.state, 'evicted', 'best-effort waits a clear period of its own');
  for (let i = 0; i < 4; i++) await sample(30);
  assert.ok(await gone('thumbs') && await gone('batch'), "await gone('thumbs') && await gone('batch')");
  await sample(30);
  await h.waitFor('thumbs and batch to run again', async () => await running('thumbs') && await running('batch'));
  await h.waitFor('synced', () => h.supervisor.state().status === 'synced');

  // The end: one container per service, all running, none counted as a crash.
  const containers = await h.containers();
  assert.deepEqual([...containers.keys()].sort(), ['batch', 'db', 'thumbs', 'web']);
  for (const [name, list] of containers) assert.equal(list.length, 1, `${name}: ${list.length} containers`);
  assert.equal((await h.only('db')).Id, db.Id, 'the critical service was never touched');
  assert.ok(h.supervisor.state().services.every((s) => s.state === 'running' && s.restartCount === 0 && s.lastError === null), JSON.stringify(h.supervisor.state().services));
  assert.deepEqual(h.events.filter((e) => e.type === 'backoff'), []);

  // The events: per service, and the pressure's own with its readings.
  const lifecycle = h.events.flatMap((e) => (e.type === 'evicted' || e.type === 'restored' ? [`${e.type}:${e.service}`] : []));
  assert.deepEqual(lifecycle.slice(0, 4), ['evicted:thumbs', 'evicted:batch', 'evicted:web', 'restored:web']);
  assert.deepEqual(lifecycle.slice(4).sort(), ['restored:batch', 'restored:thumbs'], 'one tier together, in no particular order');
  assert.deepEqual([...new Set(h.events.filter((e) => e.service === 'db').map((e) => e.type))].filter((type) => type !== 'pull-progress' && type !== 'pulled'), ['started']);
  assert.deepEqual(pressure.map((e) => [e.change, e.evicted.join(), Math.round((e.memoryAvailableBytes / TOTAL) * 100)]), [
    ['entered', 'best-effort', 5], ['escalated', 'normal,best-effort', 5], ['cleared', 'normal,best-effort', 25],
    ['restored', 'best-effort', 30], ['restored', '', 30],
  ]);
  // What the fleet saw: a state with the evicted services and their reasons, degraded, before the synced one.
  const evictedState = h.states.find((s) => s.services.filter((x) => x.state === 'evicted').length === 3);
  assert.equal(evictedState?.status, 'degraded');
  assert.deepEqual(evictedState?.services.filter((x) => x.state === 'evicted').map((x) => [x.name, x.lastError?.code]).sort(), [
    ['batch', 'PRESSURE_EVICTED'], ['thumbs', 'PRESSURE_EVICTED'], ['web', 'PRESSURE_EVICTED'],
  ]);
});
