import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ActualContainer, ActualState } from '../../../agent/supervisor/actual-state.js';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { type DesiredService } from '../../../protocol/compose/desired-service.js';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import { containerName, plan, recordExits, type PlanFacts } from '../../../agent/supervisor/planner.js';
import { DEFAULT_PULL_BACKOFF, DEFAULT_RESTART_BACKOFF, recordFailure } from '../../../agent/supervisor/restart-backoff.js';

const NOW = 1_800_000_000_000;

function services(doc: Record<string, Record<string, unknown>>): DesiredService[] {
  return parseDesiredState({ services: doc }).services;
}

function facts(extra: Partial<PlanFacts> = {}): PlanFacts {
  return { now: NOW, scope: 's', restartBackoff: {}, pullBackoff: {}, deviceLabels: new Set(), pullsInFlight: new Set(), ...extra };
}

let nextId = 0;
/** A container as the runtime would report it for `s`, running its desired config unless overridden. */
function container(s: DesiredService, extra: Partial<ActualContainer> = {}): ActualContainer {
  nextId += 1;
  return {
    id: `id${nextId}`, name: `c${nextId}`, service: s.name, configHash: configHash(s), dependsOn: s.dependsOn.map((d) => d.service),
    version: '1', image: s.image, imageId: 'sha256:img', status: 'running', health: 'none', exitCode: null,
    startedAt: NOW - 60_000, finishedAt: null, ...extra,
  };
}

function actual(containers: ActualContainer[], images: string[]): ActualState {
  return { containers, images: Object.fromEntries(images.map((i) => [i, { id: `sha256:${i}`, digest: null, repoDigests: [] }])) };
}

const kinds = (steps: { kind: string; service: string }[]): string[] => steps.map((s) => `${s.kind}:${s.service}`);

describe('plan', () => {
  test('a missing image is pulled first, once per image', () => {
    const desired = services({ a: { image: 'img:1' }, b: { image: 'img:1' } });
    assert.deepEqual(plan(actual([], []), desired, facts()), [{ kind: 'pull', service: 'a', image: 'img:1' }]);
  });

  test('an image already being pulled is not pulled again', () => {
    const desired = services({ a: { image: 'img:1' } });
    assert.deepEqual(plan(actual([], []), desired, facts({ pullsInFlight: new Set(['img:1']) })), []);
  });

  test('with the image present: create then start, dependencies first', () => {
    const desired = services({ web: { image: 'img:1', depends_on: ['db'] }, db: { image: 'img:1' } });
    const steps = plan(actual([], ['img:1']), desired, facts());
    // web waits: its dependency has no container yet.
    assert.deepEqual(kinds(steps), ['create:db', 'start:db', 'create:web']);
    const db = desired.find((s) => s.name === 'db');
    assert.ok(db, 'db');
    assert.deepEqual(steps[1], { kind: 'start', service: 'db', container: containerName('s', 'db', configHash(db)), restart: false });
  });

  test('adoption: a running container with the desired config is left alone', () => {
    const [a] = services({ a: { image: 'img:1', restart: 'always' } });
    assert.ok(a, 'a');
    assert.deepEqual(plan(actual([container(a)], []), [a], facts()), []);
  });

  test('changed config: download-then-kill keeps the old container while the image is missing', () => {
    const [old] = services({ a: { image: 'img:1' } });
    const [next] = services({ a: { image: 'img:2' } });
    assert.ok(old && next, 'old && next');
    const running = container(old);
    assert.deepEqual(kinds(plan(actual([running], ['img:1']), [next], facts())), ['pull:a']);
    assert.deepEqual(kinds(plan(actual([running], ['img:1', 'img:2']), [next], facts())), ['stop:a', 'remove:a', 'create:a', 'start:a']);
  });

  test('an image pinned by digest counts as present only when it carries that digest: the old container stays until it does', () => {
    const pinned = 'r/app@sha256:aaaa';
    const [old] = services({ a: { image: 'img:1' } });
    const [next] = services({ a: { image: pinned } });
    assert.ok(old && next, 'old && next');
    const running = container(old);
    const holding = (repoDigests: string[]): ActualState => ({
      containers: [running],
      images: { 'img:1': { id: 'sha256:1', digest: null, repoDigests: [] }, [pinned]: { id: 'sha256:x', digest: repoDigests[0] ?? null, repoDigests } },
    });
    // Found under the reference but carrying another digest: pulled again (the engine verifies), never run.
    assert.deepEqual(kinds(plan(holding(['r/app@sha256:bbbb']), [next], facts())), ['pull:a']);
    assert.deepEqual(kinds(plan(holding([]), [next], facts())), ['pull:a']);
    // A failed pull backs off: nothing at all happens meanwhile, the old container keeps running.
    const backingOff = { [pinned]: recordFailure(undefined, { at: NOW, key: 'pull#1' }, DEFAULT_PULL_BACKOFF) };
    assert.deepEqual(plan(holding(['r/app@sha256:bbbb']), [next], facts({ pullBackoff: backingOff })), []);
    // The digest is the content's: carried under another repository it is the same image.
    assert.deepEqual(kinds(plan(holding(['r/other@sha256:bbbb', 'mirror/app@sha256:aaaa']), [next], facts())), ['stop:a', 'remove:a', 'create:a', 'start:a']);
  });

  test('kill-then-download stops the old container before pulling', () => {
    const [old] = services({ a: { image: 'img:1' } });
    const [next] = services({ a: { image: 'img:2', 'x-tsunagu': { update: 'kill-then-download' } } });
    assert.ok(old && next, 'old && next');
    assert.deepEqual(kinds(plan(actual([container(old)], []), [next], facts())), ['stop:a', 'remove:a', 'pull:a']);
  });

  test('a short disk switches one service to kill-then-download for this update; the others keep download-then-kill', () => {
    const old = services({ a: { image: 'img:1' }, b: { image: 'img:1' } });
    const next = services({ a: { image: 'img:2' }, b: { image: 'img:3' } });
    const steps = plan(actual(old.map((s) => container(s)), ['img:1']), next, facts({ killFirst: new Set(['a']) }));
    assert.deepEqual(kinds(steps), ['stop:a', 'remove:a', 'pull:a', 'pull:b']);
  });

  test('a hand-edited container (config hash label changed) is replaced', () => {
    const [a] = services({ a: { image: 'img:1' } });
    assert.ok(a, 'a');
    assert.deepEqual(kinds(plan(actual([container(a, { configHash: 'tampered' })], ['img:1']), [a], facts())), ['stop:a', 'remove:a', 'create:a', 'start:a']);
  });

  test('an update of a service and its dependency stops the dependent first and starts the dependency first', () => {
    const old = services({ web: { image: 'i:1', depends_on: ['db'] }, db: { image: 'i:1' } });
    const next = services({ web: { image: 'i:2', depends_on: ['db'] }, db: { image: 'i:2' } });
    const steps = plan(actual(old.map((s) => container(s)), ['i:1', 'i:2']), next, facts());
    // web waits for the new db to run before it starts (next round).
    assert.deepEqual(kinds(steps), ['stop:web', 'remove:web', 'stop:db', 'remove:db', 'create:db', 'start:db', 'create:web']);
  });

  test('a removed service is stopped and removed, dependents first', () => {
    const desired = services({ web: { image: 'i', depends_on: ['db'] }, db: { image: 'i' }, cache: { image: 'i' } });
    const containers = desired.map((s) => container(s));
    const steps = plan(actual(containers, []), desired.filter((s) => s.name === 'cache'), facts());
    assert.deepEqual(kinds(steps), ['stop:web', 'remove:web', 'stop:db', 'remove:db']);
  });

  test('an exited container is restarted per policy, and not during back-off', () => {
    const [a] = services({ a: { image: 'i', restart: 'always' } });
    assert.ok(a, 'a');
    const exited = container(a, { status: 'exited', exitCode: 3, finishedAt: NOW - 1000 });
    assert.deepEqual(plan(actual([exited], []), [a], facts()), [{ kind: 'start', service: 'a', container: exited.id, restart: true }]);
    const backoff = { a: { failures: 2, total: 2, nextAttemptAt: NOW + 5000, lastExitCode: 3, lastFailureKey: 'k', configHash: null } };
    assert.deepEqual(plan(actual([exited], []), [a], facts({ restartBackoff: backoff })), []);
    assert.equal(plan(actual([exited], []), [a], facts({ restartBackoff: backoff, now: NOW + 5000 })).length, 1);
  });

  test('a back-off holds back only the configuration that failed: a new one starts at once', () => {
    const [v1] = services({ a: { image: 'i:1', restart: 'always' } });
    const [v2] = services({ a: { image: 'i:2', restart: 'always' } });
    assert.ok(v1 && v2, 'v1 && v2');
    const crashed = container(v1, { status: 'exited', exitCode: 3 });
    const backoff = { a: { failures: 5, total: 5, nextAttemptAt: NOW + 60_000, lastExitCode: 3, lastFailureKey: 'k', configHash: configHash(v1) } };
    assert.deepEqual(plan(actual([crashed], ['i:1', 'i:2']), [v1], facts({ restartBackoff: backoff })), []);
    assert.deepEqual(kinds(plan(actual([crashed], ['i:1', 'i:2']), [v2], facts({ restartBackoff: backoff }))), ['remove:a', 'create:a', 'start:a']);
  });

  test('restart policies: no, on-failure with retries', () => {
    const [no, onFailure] = services({ a: { image: 'i' }, b: { image: 'i', restart: 'on-failure:1' } });
    assert.ok(no && onFailure, 'no && onFailure');
    assert.deepEqual(plan(actual([container(no, { status: 'exited', exitCode: 1 })], []), [no], facts()), []);
    assert.deepEqual(plan(actual([container(onFailure, { status: 'exited', exitCode: 0 })], []), [onFailure], facts()), []);
    assert.equal(plan(actual([container(onFailure, { status: 'exited', exitCode: 1 })], []), [onFailure], facts()).length, 1);
    const spent = { b: { failures: 2, total: 2, nextAttemptAt: 0, lastExitCode: 1, lastFailureKey: 'k', configHash: configHash(onFailure) } };
    assert.deepEqual(plan(actual([container(onFailure, { status: 'exited', exitCode: 1 })], []), [onFailure], facts({ restartBackoff: spent })), []);
  });

  test('depends_on conditions gate the start', () => {
    const desired = services({
      db: { image: 'i' }, job: { image: 'i' },
      web: { image: 'i', depends_on: { db: { condition: 'service_healthy' }, job: { condition: 'service_completed_successfully' } } },
    });
    const [db, job, web] = ['db', 'job', 'web'].map((n) => desired.find((s) => s.name === n));
    assert.ok(db && job && web, 'db && job && web');
    const created = container(web, { status: 'created', startedAt: null });
    const startsWeb = (dbExtra: Partial<ActualContainer>, jobExtra: Partial<ActualContainer>): boolean =>
      plan(actual([container(db, dbExtra), container(job, jobExtra), created], []), desired, facts()).some((s) => s.kind === 'start' && s.service === 'web');
    assert.equal(startsWeb({ health: 'starting' }, { status: 'exited', exitCode: 0 }), false);
    assert.equal(startsWeb({ health: 'healthy' }, { status: 'running' }), false);
    assert.equal(startsWeb({ health: 'healthy' }, { status: 'exited', exitCode: 1 }), false);
    assert.equal(startsWeb({ health: 'healthy' }, { status: 'exited', exitCode: 0 }), true);
  });

  test('a service whose required device labels are missing is not deployed, and removed if present', () => {
    const [cam] = services({ cam: { image: 'i', 'x-tsunagu': { requires: ['camera'] } } });
    assert.ok(cam, 'cam');
    assert.deepEqual(plan(actual([], ['i']), [cam], facts()), []);
    assert.deepEqual(kinds(plan(actual([container(cam)], ['i']), [cam], facts())), ['stop:cam', 'remove:cam']);
    assert.deepEqual(kinds(plan(actual([], ['i']), [cam], facts({ deviceLabels: new Set(['camera']) }))), ['create:cam', 'start:cam']);
  });

  test('a pull in back-off is not retried before its time', () => {
    const [a] = services({ a: { image: 'img:2' } });
    assert.ok(a, 'a');
    const pullBackoff = { 'img:2': { failures: 1, total: 1, nextAttemptAt: NOW + 1, lastExitCode: null, lastFailureKey: 'p', configHash: null } };
    assert.deepEqual(plan(actual([], []), [a], facts({ pullBackoff })), []);
  });

  test('critical services are handled before others', () => {
    const desired = services({ a: { image: 'i' }, z: { image: 'i', 'x-tsunagu': { priority: 'critical' } } });
    assert.deepEqual(kinds(plan(actual([], ['i']), desired, facts())), ['create:z', 'start:z', 'create:a', 'start:a']);
  });

  test('inputs are not modified', () => {
    const desired = services({ a: { image: 'img:2', restart: 'always' } });
    const state = actual([container(desired[0] as DesiredService, { status: 'exited', configHash: 'old' })], ['img:1']);
    const f = facts();
    const plain = (x: PlanFacts): unknown => ({ ...x, deviceLabels: [...x.deviceLabels], pullsInFlight: [...x.pullsInFlight] });
    const copies = structuredClone({ desired, state, f: plain(f) });
    plan(state, desired, f);
    assert.deepEqual({ desired, state, f: plain(f) }, copies);
  });
});

describe('recordExits', () => {
  test('counts each exit once and only where a restart follows', () => {
    const [a, b] = services({ a: { image: 'i', restart: 'always' }, b: { image: 'i' } });
    assert.ok(a && b, 'a && b');
    const state = actual([
      container(a, { id: 'x', status: 'exited', exitCode: 2, startedAt: NOW - 3000, finishedAt: NOW - 1000 }),
      container(b, { status: 'exited', exitCode: 2, startedAt: NOW - 3000, finishedAt: NOW - 1000 }),
    ], []);
    const once = recordExits(state, [a, b], {}, NOW, DEFAULT_RESTART_BACKOFF);
    assert.deepEqual(once, { a: { failures: 1, total: 1, nextAttemptAt: NOW + 2000, lastExitCode: 2, lastFailureKey: `x@${NOW - 1000}`, configHash: configHash(a) } });
    assert.equal(recordExits(state, [a, b], once, NOW + 10, DEFAULT_RESTART_BACKOFF), once);
  });
});

describe('configHash', () => {
  test('ignores dependencies and agent settings, sees engine-facing changes', () => {
    const [base] = services({ a: { image: 'i' } });
    const [withAgentSettings] = services({ a: { image: 'i', 'x-tsunagu': { priority: 'critical' } } });
    const [withEnv] = services({ a: { image: 'i', environment: { A: '1' } } });
    assert.ok(base && withAgentSettings && withEnv, 'base && withAgentSettings && withEnv');
    assert.equal(configHash(base), configHash(withAgentSettings));
    assert.notEqual(configHash(base), configHash(withEnv));
    assert.match(configHash(base), /^[0-9a-f]{32}$/);
  });
});

describe('plan with operator holds', () => {
  test('a held service has its live container stopped, not removed, and nothing brings it up', () => {
    const [a] = services({ a: { image: 'img:1', restart: 'always' } });
    const live = container(a!);
    assert.deepEqual(kinds(plan(actual([live], ['img:1']), [a!], facts({ held: new Set(['a']) }))), ['stop:a']);
    const exited = container(a!, { status: 'exited', exitCode: 143, finishedAt: NOW - 1000 });
    assert.deepEqual(plan(actual([exited], ['img:1']), [a!], facts({ held: new Set(['a']) })), []);
    // No container and no image: still nothing (no pull, no create) while held.
    assert.deepEqual(plan(actual([], []), [a!], facts({ held: new Set(['a']) })), []);
  });

  test('a busy service is left alone; others are planned as usual', () => {
    const desired = services({ a: { image: 'img:1', restart: 'always' }, b: { image: 'img:1', restart: 'always' } });
    const exited = container(desired[0]!, { status: 'exited', exitCode: 0, finishedAt: NOW - 1000 });
    assert.deepEqual(kinds(plan(actual([exited], ['img:1']), desired, facts({ busy: new Set(['a']) }))), ['create:b', 'start:b']);
  });
});

describe('plan with evictions', () => {
  test('an evicted service has its live containers stopped and removed, and nothing is pulled, created or started for it', () => {
    const desired = services({ a: { image: 'img:2', restart: 'always' }, b: { image: 'img:1', restart: 'always' } });
    const [a, b] = desired;
    const evicted = new Set(['a']);
    // The current container and an outdated one still running: both go.
    const live = container(a!);
    const old = container(a!, { configHash: 'old', image: 'img:1' });
    const running = container(b!);
    assert.deepEqual(kinds(plan(actual([live, old, running], ['img:1', 'img:2']), desired, facts({ evicted }))), ['stop:a', 'remove:a', 'stop:a', 'remove:a']);
    // No container, no image: no pull and no create while evicted; the other service is planned as usual.
    assert.deepEqual(kinds(plan(actual([], ['img:1']), desired, facts({ evicted }))), ['create:b', 'start:b']);
  });

  test('a container that is not live (a finished job, one created and not started) is left as it is', () => {
    const [job] = services({ job: { image: 'img:1' } });
    const done = container(job!, { status: 'exited', exitCode: 0, finishedAt: NOW - 1000 });
    assert.deepEqual(plan(actual([done], ['img:1']), [job!], facts({ evicted: new Set(['job']) })), []);
    const created = container(job!, { status: 'created', startedAt: null });
    assert.deepEqual(plan(actual([created], ['img:1']), [job!], facts({ evicted: new Set(['job']) })), []);
  });

  test('dependents are taken down before what they depend on', () => {
    const desired = services({ web: { image: 'img:1', depends_on: ['db'] }, db: { image: 'img:1' } });
    const containers = desired.map((s) => container(s));
    const steps = plan(actual(containers, ['img:1']), desired, facts({ evicted: new Set(['web', 'db']) }));
    assert.deepEqual(kinds(steps), ['stop:web', 'remove:web', 'stop:db', 'remove:db']);
  });
});
