import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ActualContainer } from '../../../agent/supervisor/actual-state.js';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { type DesiredService } from '../../../protocol/compose/desired-service.js';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import { judgeProbation, resumedProbation } from '../../../agent/supervisor/probation.js';
import { recordFailure, DEFAULT_RESTART_BACKOFF } from '../../../agent/supervisor/restart-backoff.js';
import { created, engineLost, judge as judgeRollout, newRollout, probationPending, resetRollout, restoreLastGood, resume, succeeded } from '../../../agent/supervisor/rollout-gate.js';

const NOW = 1_800_000_000_000;
const P = 30_000;
const svc = (name: string, extra: Record<string, unknown> = {}): DesiredService => {
  const s = parseDesiredState({ services: { [name]: { image: 'img:2', restart: 'always', ...extra } } }).services[0];
  assert.ok(s, 's');
  return s;
};
const box = (s: DesiredService, extra: Partial<ActualContainer>): ActualContainer => ({
  id: `${s.name}-c`, name: s.name, service: s.name, configHash: configHash(s), dependsOn: [], version: '2', image: s.image, imageId: 'sha256:x',
  status: 'running', health: 'none', exitCode: null, startedAt: NOW - 1_000, finishedAt: null, ...extra,
});
const judge = (s: DesiredService, c: ActualContainer[], extra: { now?: number; backoff?: Parameters<typeof judgeProbation>[0]['restartBackoff'] } = {}) =>
  judgeProbation({ actual: { containers: c, images: {} }, services: [s], onProbation: new Map([[s.name, configHash(s)]]), restartBackoff: extra.backoff ?? {}, now: extra.now ?? NOW, probationMs: P });

describe('judgeProbation', () => {
  const web = svc('web');
  test('running within the window: pending, look again when it ends', () => {
    assert.deepEqual(judge(web, [box(web, {})]), { verdicts: [], nextCheckAt: NOW - 1_000 + P });
  });
  test('running through the window: passed; still starting its healthcheck: not yet', () => {
    assert.deepEqual(judge(web, [box(web, {})], { now: NOW + P }).verdicts, [{ service: 'web', outcome: 'passed' }]);
    assert.deepEqual(judge(web, [box(web, { health: 'starting' })], { now: NOW + P }).verdicts, []);
  });
  test('an exit or unhealthy within the window fails it, with the reason', () => {
    assert.deepEqual(judge(web, [box(web, { status: 'exited', exitCode: 3 })]).verdicts, [{ service: 'web', outcome: 'failed', reason: 'exited with code 3 within the probation window (30 s)' }]);
    assert.deepEqual(judge(web, [box(web, { health: 'unhealthy' })]).verdicts, [{ service: 'web', outcome: 'failed', reason: 'unhealthy within the probation window (30 s)' }]);
  });
  test('an exit already restarted shows in the back-off of that configuration', () => {
    const backoff = { web: recordFailure(undefined, { at: NOW, key: 'k', exitCode: 1, configHash: configHash(web) }, DEFAULT_RESTART_BACKOFF) };
    assert.equal(judge(web, [box(web, {})], { backoff }).verdicts[0]?.outcome, 'failed');
    const otherConfig = { web: { ...backoff.web, configHash: 'older' } };
    assert.deepEqual(judge(web, [box(web, {})], { backoff: otherConfig }).verdicts, []);
  });
  test('a failed step in the back-off is not called an exit; an exit the engine shows gives its code', () => {
    const stepFailed = { web: recordFailure(undefined, { at: NOW, key: 'start#1', configHash: configHash(web) }, DEFAULT_RESTART_BACKOFF) };
    assert.deepEqual(judge(web, [box(web, {})], { backoff: stepFailed }).verdicts, [{ service: 'web', outcome: 'failed', reason: 'a step on it failed within the probation window (30 s)' }]);
    assert.deepEqual(judge(web, [box(web, { status: 'exited', exitCode: 3 })], { backoff: stepFailed }).verdicts, [{ service: 'web', outcome: 'failed', reason: 'exited with code 3 within the probation window (30 s)' }]);
  });
  test('a job that finishes with 0 passes; with another code it fails', () => {
    const job = svc('job', { restart: 'no' });
    assert.deepEqual(judge(job, [box(job, { status: 'exited', exitCode: 0 })]).verdicts, [{ service: 'job', outcome: 'passed' }]);
    assert.equal(judge(job, [box(job, { status: 'exited', exitCode: 2 })]).verdicts[0]?.outcome, 'failed');
  });
  test('a container of another configuration, or none started, does not start the window', () => {
    assert.deepEqual(judge(web, [box(web, { configHash: 'old', status: 'exited', exitCode: 1 })]), { verdicts: [], nextCheckAt: null });
    assert.deepEqual(judge(web, [box(web, { status: 'created', startedAt: null })]), { verdicts: [], nextCheckAt: null });
  });
});

describe('rollout memory', () => {
  const v1 = svc('web', { image: 'img:1' });
  const v2 = svc('web');
  test('only a configuration other than the last good one goes on probation, and a failure returns to it', () => {
    let r = created(newRollout(P), 'web', configHash(v1)); // first ever: on probation, nothing to return to
    assert.equal(probationPending(r), true);
    r = judgeRollout(r, { containers: [box(v1, { startedAt: NOW - P })], images: {} }, [v1], {}, NOW, 0).rollout;
    assert.equal(probationPending(r), false);
    r = resetRollout(succeeded(r, '1', [v1], configHash).rollout);
    r = created(r, 'web', configHash(v1)); // re-created as it was (removed by hand): no probation
    assert.equal(probationPending(r), false);
    r = created(r, 'web', configHash(v2));
    const judged = judgeRollout(r, { containers: [box(v2, { status: 'exited', exitCode: 1 })], images: {} }, [v2], {}, NOW, 0);
    assert.equal(judged.failures[0]?.previous, v1);
    assert.equal(judged.failures[0]?.previousVersion, '1');
    // A failed version never becomes the one to return to.
    const after = succeeded(judged.rollout, '2', [v2], configHash);
    assert.equal(after.news, false);
    r = created(resetRollout(after.rollout), 'web', configHash(v2));
    assert.equal(judgeRollout(r, { containers: [box(v2, { status: 'exited', exitCode: 1 })], images: {} }, [v2], {}, NOW, 0).failures[0]?.previous, v1);
  });
  test('a failure is acted on only once it has stood for the settle time without the engine going away', () => {
    const crashed = { containers: [box(v2, { status: 'exited', exitCode: 143 })], images: {} };
    let r = created(newRollout(P), 'web', configHash(v2));
    const first = judgeRollout(r, crashed, [v2], {}, NOW, 6_000);
    assert.deepEqual({ failures: first.failures, nextCheckAt: first.nextCheckAt }, { failures: [], nextCheckAt: NOW + 6_000 });
    r = engineLost(first.rollout); // it was the engine's shutdown
    const second = judgeRollout(r, crashed, [v2], {}, NOW + 6_000, 6_000);
    assert.equal(second.failures.length, 0, 'the clock starts again after an engine outage');
    assert.equal(judgeRollout(second.rollout, crashed, [v2], {}, NOW + 12_000, 6_000).failures.length, 1);
  });
  test('a suspect that runs again is forgotten: a later failure waits its own settle time', () => {
    const stopped = { containers: [box(v2, { status: 'exited', exitCode: 143 })], images: {} };
    const running = { containers: [box(v2, { startedAt: NOW + 1_000 })], images: {} };
    let r = created(newRollout(P), 'web', configHash(v2));
    r = judgeRollout(r, stopped, [v2], {}, NOW, 6_000).rollout; // the engine stopped it, then started it again
    const again = judgeRollout(r, running, [v2], {}, NOW + 2_000, 6_000);
    assert.equal(again.failures.length, 0);
    const seen = judgeRollout(again.rollout, stopped, [v2], {}, NOW + 7_000, 6_000);
    assert.equal(seen.failures.length, 0, 'not confirmed on the first sight of a new failure');
    assert.equal(judgeRollout(seen.rollout, stopped, [v2], {}, NOW + 13_000, 6_000).failures.length, 1);
  });
  test('off with a zero window', () => {
    assert.equal(probationPending(created(newRollout(0), 'web', configHash(v2))), false);
  });
  test('the value given is never changed', () => {
    const r = newRollout(P);
    created(r, 'web', configHash(v2));
    assert.equal(probationPending(r), false);
  });
});

describe('probation across an agent restart', () => {
  const v1 = svc('web', { environment: { V: '1' } });
  const v2 = svc('web', { environment: { V: '2' } });
  const same = svc('db');
  const lastGood = new Map([['web', configHash(v1)], ['db', configHash(same)]]);

  test('resumed: a container created by this version with a configuration the last proven version did not run', () => {
    const actual = { containers: [box(v2, { version: '2' }), box(same, { version: '1' })], images: {} };
    assert.deepEqual([...resumedProbation(actual, [v2, same], '2', lastGood, configHash)], [['web', configHash(v2)]]);
  });

  test('not resumed: the proven configuration, a container of another version, no container yet', () => {
    assert.equal(resumedProbation({ containers: [box(v1, { version: '2' })], images: {} }, [v1], '2', lastGood, configHash).size, 0);
    assert.equal(resumedProbation({ containers: [box(v2, { version: '1' })], images: {} }, [v2], '2', lastGood, configHash).size, 0);
    assert.equal(resumedProbation({ containers: [], images: {} }, [v2], '2', lastGood, configHash).size, 0);
  });

  test('no proven version known (first version, or an agent upgraded from one that kept none): every container of this version', () => {
    const actual = { containers: [box(v2, { version: '2' }), box(same, { version: '2' })], images: {} };
    assert.deepEqual([...resumedProbation(actual, [v2, same], '2', undefined, configHash).keys()], ['web', 'db']);
  });

  test('a gate restarted mid-probation holds the version back until the window ends, then passes it; the proven version stays what a rollback returns to', () => {
    let r = restoreLastGood(newRollout(P), '1', [v1], configHash);
    const actual = { containers: [box(v2, { version: '2', startedAt: NOW - 10_000 })], images: {} };
    r = resume(r, actual, [v2], '2', configHash);
    assert.equal(probationPending(r), true);
    assert.equal(succeeded(r, '2', [v2], configHash).news, false, 'not proven while on probation');
    assert.equal(r.lastGood?.version, '1');
    const within = judgeRollout(r, actual, [v2], {}, NOW, 6_000);
    assert.deepEqual({ failures: within.failures, nextCheckAt: within.nextCheckAt }, { failures: [], nextCheckAt: NOW - 10_000 + P });
    const after = judgeRollout(within.rollout, actual, [v2], {}, NOW + P, 6_000);
    assert.deepEqual({ failures: after.failures, nextCheckAt: after.nextCheckAt }, { failures: [], nextCheckAt: null });
    const proven = succeeded(after.rollout, '2', [v2], configHash);
    assert.equal(proven.news, true);
    assert.equal(proven.rollout.lastGood?.version, '2');
  });

  test('a failure in the rest of the window rolls back to the restored proven configuration', () => {
    let r = restoreLastGood(newRollout(P), '1', [v1], configHash);
    const exited = { containers: [box(v2, { version: '2', status: 'exited', exitCode: 3 })], images: {} };
    r = resume(r, exited, [v2], '2', configHash);
    r = judgeRollout(r, exited, [v2], {}, NOW, 6_000).rollout; // a suspect first: an engine going down looks the same
    const { failures, rollout } = judgeRollout(r, exited, [v2], {}, NOW + 6_000, 6_000);
    assert.equal(failures.length, 1);
    assert.equal(failures[0]?.previousVersion, '1');
    assert.deepEqual(failures[0]?.previous, v1);
    assert.equal(succeeded(rollout, '2', [v2], configHash).news, false);
  });

  test('restore does not replace a proven version the gate already knows', () => {
    const proven = succeeded(newRollout(P), '3', [v2], configHash);
    assert.equal(proven.news, true);
    assert.equal(restoreLastGood(proven.rollout, '1', [v1], configHash).lastGood?.version, '3');
  });
});
