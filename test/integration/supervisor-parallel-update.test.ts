import assert from 'node:assert/strict';
import { test } from 'node:test';
import type Docker from 'dockerode';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { supervisorHarness, TEST_LABEL } from '../support/supervisor-harness.js';

/** Long enough that ten graces one after another (60 s) cannot hide in the engine's own time to start ten containers. */
const GRACE_MS = 6000;
const INDEPENDENT = Array.from({ length: 10 }, (_, i) => `svc-${String(i + 1).padStart(2, '0')}`);

interface EngineEvent { action: string; id: string; service: string; version: string; signal: string | undefined; atMs: number }

/** The engine's container events for this test's label, as they come, with the engine's own timestamps. */
async function engineEvents(docker: Docker, scope: string): Promise<{ events: EngineEvent[]; close: () => void }> {
  const stream = await docker.getEvents({ filters: { type: ['container'], label: [`${TEST_LABEL}=${scope}`] } });
  const events: EngineEvent[] = [];
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const e = JSON.parse(buffered.slice(0, nl)) as { Action: string; id: string; timeNano: number; Actor: { Attributes: Record<string, string> } };
      buffered = buffered.slice(nl + 1);
      const a = e.Actor.Attributes;
      events.push({ action: e.Action, id: e.id, service: a[LABELS.service] ?? '', version: a[LABELS.version] ?? '', signal: a.signal, atMs: e.timeNano / 1e6 });
    }
  });
  return { events, close: () => (stream as unknown as { destroy: () => void }).destroy() };
}

// PID 1 without a handler: the kernel drops SIGTERM (and SIGINT) for it, so every stop waits out the grace.
const deaf = (image: string, version: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  image, command: ['sleep', '1000000'], restart: 'always', stop_grace_period: `${GRACE_MS / 1000}s`, environment: { VERSION: version }, ...extra,
});

test('ten services whose PID 1 ignores SIGTERM, updated in one version: each is down for its own grace and start, not for the others\'; depends_on order kept', { timeout: 150_000 }, async (t) => {
  const h = await supervisorHarness(t, 'parallel');
  const image = h.images.local; // on the engine already: the update is config only, no pull in the way
  const doc = (version: string): ReturnType<typeof h.compose> => h.compose({
    ...Object.fromEntries(INDEPENDENT.map((name) => [name, deaf(image, version, { stop_signal: 'SIGINT' })])),
    db: deaf(image, version),
    web: deaf(image, version, { depends_on: ['db'] }),
  });
  const v1 = await h.settle(doc('1'), 'v1');
  assert.equal(v1.status, 'synced', JSON.stringify(v1));

  // One service's own stop and replacement, measured on this engine now: the unit of the bound.
  const spare = await h.docker.createContainer({ Image: image, Cmd: ['sleep', '1000000'], StopTimeout: GRACE_MS / 1000, Labels: { [TEST_LABEL]: h.scope }, HostConfig: { NetworkMode: 'none' } });
  await spare.start();
  const oneBegan = performance.now();
  await spare.stop({ t: GRACE_MS / 1000 });
  const replacement = await h.docker.createContainer({ Image: image, Cmd: ['sleep', '1000000'], Labels: { [TEST_LABEL]: h.scope }, HostConfig: { NetworkMode: 'none' } });
  await replacement.start();
  const oneSwapMs = performance.now() - oneBegan;
  await Promise.all([spare.remove({ force: true }), replacement.remove({ force: true })]);

  const watch = await engineEvents(h.docker, h.scope);
  t.after(watch.close);
  const v2 = await h.settle(doc('2'), 'v2');
  assert.equal(v2.status, 'synced', JSON.stringify(v2));
  const all = [...INDEPENDENT, 'db', 'web'];
  await h.waitFor('a start event of every new container', () => all.every((s) => watch.events.some((e) => e.action === 'start' && e.service === s && e.version === 'v2')));

  const first = (service: string, action: string, version: string): EngineEvent => {
    const e = watch.events.find((x) => x.service === service && x.action === action && x.version === version);
    assert.ok(e, `no ${action} event of ${service} ${version}`);
    return e;
  };
  // Down from the moment the engine sends the stop signal to the old container until the new one has started.
  const downtime = (service: string): number => first(service, 'start', 'v2').atMs - first(service, 'kill', 'v1').atMs;
  const down = new Map(INDEPENDENT.map((s) => [s, downtime(s)]));
  const worst = Math.max(...down.values());
  process.stdout.write(`downtime per service (ms): ${[...down].map(([s, ms]) => `${s} ${ms.toFixed(0)}`).join(', ')}; one stop + run alone: ${oneSwapMs.toFixed(0)} ms\n`);
  if (process.env.TSUNAGU_TEST_VERBOSE) {
    const t0 = Math.min(...watch.events.map((e) => e.atMs));
    for (const e of watch.events) process.stdout.write(`${(e.atMs - t0).toFixed(0).padStart(6)} ${e.service} ${e.version} ${e.action} ${e.signal ?? ''}\n`);
  }
  for (const [service, ms] of down) {
    assert.ok(ms >= GRACE_MS - 100, `${service} was down ${ms.toFixed(0)} ms: less than its grace, so the stop did not wait it out`);
  }
  // One after another, the last would be down for all ten graces (60 s); side by side, each for its own, plus its
  // turn among the ten starts on the engine.
  assert.ok(worst < 10 * GRACE_MS, `the longest downtime, ${worst.toFixed(0)} ms, is as long as ten graces one after another`);
  assert.ok(worst < 4 * oneSwapMs, `the longest downtime, ${worst.toFixed(0)} ms, is not below 4× one service's stop and replacement (${oneSwapMs.toFixed(0)} ms); one after another it would be over 10×`);
  // The first new container runs before the last old one has stopped.
  const firstStart = Math.min(...INDEPENDENT.map((s) => first(s, 'start', 'v2').atMs));
  const lastDie = Math.max(...INDEPENDENT.map((s) => first(s, 'die', 'v1').atMs));
  assert.ok(firstStart < lastDie + GRACE_MS, 'replacements overlap');

  // stop_signal and stop_grace_period reach the engine: SIGINT (2) first, SIGKILL (9) a grace later.
  for (const service of INDEPENDENT) {
    const kills = watch.events.filter((e) => e.service === service && e.version === 'v1' && e.action === 'kill');
    assert.deepEqual(kills.map((k) => k.signal), ['2', '9'], service);
    const gap = (kills[1]?.atMs ?? 0) - (kills[0]?.atMs ?? 0);
    assert.ok(gap >= GRACE_MS - 100 && gap < GRACE_MS + 3000, `${service}: SIGKILL ${gap.toFixed(0)} ms after SIGINT`);
  }
  assert.equal(watch.events.find((e) => e.service === 'db' && e.action === 'kill')?.signal, '15', 'no stop_signal: SIGTERM');
  const inspected = await h.only('svc-01');
  // The engine reports both; dockerode's type leaves them out.
  const config = inspected.Config as { StopSignal?: string; StopTimeout?: number };
  assert.equal(config.StopSignal, 'SIGINT');
  assert.equal(config.StopTimeout, GRACE_MS / 1000);

  // depends_on: the dependent is gone before its dependency is stopped, and starts after it.
  assert.ok(first('web', 'destroy', 'v1').atMs <= first('db', 'kill', 'v1').atMs, 'web removed before db is stopped');
  assert.ok(first('db', 'start', 'v2').atMs <= first('web', 'start', 'v2').atMs, 'db started before web');
});
