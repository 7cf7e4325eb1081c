import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
// @ts-expect-error: a plain ES module of the test scripts, without types
import { dockerInstance, startDockerd, stopChild } from '../../scripts/test-services.mjs';
import { supervisorHarness } from '../support/supervisor-harness.js';

interface Instance { socket: string; host: string }
interface Started { child: { pid: number; exitCode: number | null }; exited: Promise<unknown> }
const startEngine = startDockerd as (stateDir: string, instance: Instance) => Promise<Started | undefined>;
const stopEngine = stopChild as (started: Started | undefined, name: string) => Promise<void>;
const engineInstance = dockerInstance as (name: string) => Instance;

/**
 * A real restart of a real dockerd, with the containers it stops on the way
 * down. The engine is one of this test's own (its own data root and socket),
 * so that the engine every other test shares is never restarted.
 */
test('a dockerd restart: reported as unavailable while down; afterwards every service runs again, one container each, no crash counted', async (t) => {
  const instance = engineInstance('restart');
  const stateDir = mkdtempSync(join(tmpdir(), 'tsunagu-engine-restart-'));
  let engine = await startEngine(stateDir, instance);
  assert.ok(engine, `another dockerd already answers on ${instance.socket}; stop it first`);
  const stop = async (): Promise<void> => {
    await stopEngine(engine, 'dockerd (restart test)');
    rmSync(stateDir, { recursive: true, force: true });
  };
  const h = await supervisorHarness(t, 'restart', {}, { socketPath: instance.socket }).catch(async (err: unknown) => { await stop(); throw err; });
  // After the harness's own cleanup, which needs the engine (after-hooks run in the order they were added).
  t.after(stop);
  // `restart: no` too: an engine going down is not an exit of the service's own.
  // A short stop grace keeps the window in which exits count as the engine's (grace + 5 s) short for the test.
  const grace = { stop_grace_period: '1s' };
  const doc = h.compose({
    web: { image: h.images.busybox1, restart: 'always', ...grace },
    once: { image: h.images.busybox1, ...grace },
    job: { image: h.images.busybox1, command: ['true'], ...grace },
  });
  const first = await h.settle(doc, 'v1');
  await h.waitFor('web and once to run, job to complete', async () => {
    const c = await h.containers();
    return c.get('web')?.[0]?.State.Running === true && c.get('once')?.[0]?.State.Running === true && c.get('job')?.[0]?.State.Status === 'exited';
  });
  assert.notEqual(first.status, 'failed');
  const before = await h.containers();
  const jobFinished = before.get('job')?.[0]?.State.FinishedAt ?? '';
  // The job's exit must be older than that window to be told apart from the engine's stops.
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(jobFinished) + 6_500 - Date.now())));

  await stopEngine(engine, 'dockerd (restart test)');
  engine = undefined;
  await h.waitFor('the runtime to be reported unavailable', () => h.supervisor.state().error?.code === 'RUNTIME_UNAVAILABLE', 20_000);
  assert.equal(h.supervisor.state().status, 'failed');

  engine = await startEngine(stateDir, instance);
  await h.waitFor('web and once to run again after the restart', async () => {
    const c = await h.containers();
    return c.get('web')?.[0]?.State.Running === true && c.get('once')?.[0]?.State.Running === true;
  }, 60_000);
  await h.supervisor.idle();

  const after = await h.containers();
  for (const service of ['web', 'once', 'job']) {
    assert.equal(after.get(service)?.length, 1, `exactly one container of ${service}`);
    assert.equal(after.get(service)?.[0]?.Id, before.get(service)?.[0]?.Id, `${service} keeps its container`);
  }
  // A job that had completed before the restart is not run again.
  assert.equal(after.get('job')?.[0]?.State.FinishedAt, jobFinished);
  const state = h.supervisor.state();
  assert.equal(state.status, 'synced');
  assert.equal(state.error, null);
  for (const s of state.services) assert.equal(s.restartCount, 0, `${s.name}: an engine restart is not a crash`);
});
