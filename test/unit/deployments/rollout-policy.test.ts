import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTsunaguError } from '../../../protocol/errors.js';
import { abortRollout, pauseRollout, resumeRollout, startRollout, supersedeRollout } from '../../../provisioning/deployments/rollout-commands.js';
import { stepRollout } from '../../../provisioning/deployments/rollout-policy.js';
import { rolloutStateFromJson, type RolloutEvent, type RolloutState } from '../../../provisioning/deployments/rollout-state.js';
import { DEFAULT_STRATEGY, type RolloutStrategy } from '../../../provisioning/deployments/rollout-strategy.js';
import { deviceIds, FleetSim, type Reaction } from './fleet-sim.js';
import { service } from './reported-fixtures.js';

const MIN = 60_000;
const strategy = (over: Partial<RolloutStrategy> = {}): RolloutStrategy => ({ ...DEFAULT_STRATEGY, ...over });

function sim(n: number, over: Partial<RolloutStrategy> = {}, reaction: (id: string, revision: number) => Reaction = () => 'runs'): FleetSim {
  const { state } = startRollout({ deployment: 'web', fromRevision: 1, toRevision: 2, strategy: strategy(over), now: 1_000_000 });
  return new FleetSim(state, deviceIds(n), reaction, 1);
}
const ofType = <T extends RolloutEvent['type']>(events: readonly RolloutEvent[], type: T): Extract<RolloutEvent, { type: T }>[] =>
  events.filter((e): e is Extract<RolloutEvent, { type: T }> => e.type === type);
const onRevision = (s: FleetSim, revision: number): string[] => [...s.devices].filter(([, d]) => d.published?.revision === revision).map(([id]) => id);

test('four waves over 20 good devices: 1, 2, 10, 20, each after the bake of the one before; everyone moves once', () => {
  const s = sim(20);
  const end = s.run();
  assert.equal(end.state.phase, 'done');
  assert.deepEqual(ofType(s.events, 'wave-started').map((e) => [e.wave, e.devices, e.of]), [[1, 1, 1], [2, 1, 2], [3, 8, 10], [4, 10, 20]]);
  const starts = ofType(s.events, 'wave-started').map((e) => e.at);
  for (let i = 1; i < starts.length; i += 1) assert.ok(starts[i]! - starts[i - 1]! >= 10 * MIN, 'a wave starts only after the bake');
  assert.deepEqual(ofType(s.events, 'done').map((e) => [e.healthy, e.failed, e.deferred]), [[20, 0, 0]]);
  for (const [, h] of s.history) assert.deepEqual(h, [1, 2]);
  assert.equal(end.wakeAt, null);
  assert.deepEqual([...end.assignments.values()].filter((r) => r !== 2), []);
});

test('the wake-up time is the end of the bake, then nothing until a report or a deadline', () => {
  const s = sim(5);
  const first = s.step();
  assert.equal(first.assignments.size, 5);
  assert.equal([...first.assignments.values()].filter((r) => r === 2).length, 1);
  // The device has applied; its deadline is the only clock until the fleet sees it synced.
  assert.equal(first.wakeAt, s.now + DEFAULT_STRATEGY.deadlineMs);
  const second = s.step();
  assert.equal(second.wakeAt, s.now + DEFAULT_STRATEGY.bakeMs);
});

test('the canary fails its probation: halted after wave 0, the canary is put back, nobody else ever gets the revision', () => {
  const s = sim(50, {}, (_id, revision) => (revision === 2 ? 'fails-probation' : 'runs'));
  const end = s.run();
  assert.equal(end.state.phase, 'halted');
  assert.equal(end.state.wave, 0);
  const [failed] = ofType(s.events, 'device-failed');
  assert.deepEqual(failed?.reason, { service: 'web', code: 'PROBATION_FAILED', message: 'web: unhealthy within its probation; rolled back', state: 'running', health: 'unhealthy' });
  assert.equal(failed?.timedOut, false);
  assert.deepEqual(ofType(s.events, 'device-reverted').map((e) => [e.deviceId, e.revision]), [[failed.deviceId, 1]]);
  assert.deepEqual(ofType(s.events, 'halted').map((e) => [e.failures, e.tried, e.allowed, e.onHalt]), [[1, 1, 0, 'revert']]);
  assert.deepEqual(s.history.get(failed.deviceId), [1, 2, 1]);
  assert.deepEqual(onRevision(s, 2), []);
  // Time passing changes nothing: a halted rollout never advances.
  s.now += 24 * 60 * MIN;
  const later = s.step();
  assert.equal(later.state.wave, 0);
  assert.deepEqual(later.events, []);
});

test('on-halt hold leaves the failed device on the revision it failed', () => {
  const s = sim(50, { onHalt: 'hold' }, (_id, revision) => (revision === 2 ? 'fails-probation' : 'runs'));
  s.run();
  const [failed] = ofType(s.events, 'device-failed');
  assert.deepEqual(s.history.get(failed!.deviceId), [1, 2]);
  assert.deepEqual(ofType(s.events, 'device-reverted'), []);
});

test('failures within the threshold do not halt; each failed device goes back at once, the rest go on', () => {
  const bad = new Set(['d-00003', 'd-00011']);
  const s = sim(40, { maxFailures: { count: 2 } }, (id, revision) => (revision === 2 && bad.has(id) ? 'refuses' : 'runs'));
  const end = s.run();
  assert.equal(end.state.phase, 'done');
  assert.deepEqual(ofType(s.events, 'device-failed').map((e) => e.deviceId).sort(), [...bad].sort());
  assert.deepEqual(ofType(s.events, 'device-failed').map((e) => e.reason?.code), ['ADMISSION_REFUSED', 'ADMISSION_REFUSED']);
  for (const id of bad) assert.equal(end.assignments.get(id), 1);
  assert.equal(onRevision(s, 2).length, 38);
});

test('one failure more than the count halts; the devices that had not started are held back on the previous revision', () => {
  const bad = new Set(['d-00003', 'd-00011', 'd-00017']);
  const s = sim(40, { maxFailures: { count: 2 }, waves: [{ count: 1 }, { percent: 100 }] }, (id, revision) => (revision === 2 && bad.has(id) ? 'refuses' : 'runs'));
  // Devices offline do not start: they are the ones held back when the halt comes.
  for (const id of ['d-00020', 'd-00021']) s.setOnline(id, false);
  const end = s.run();
  assert.equal(end.state.phase, 'halted');
  const [halt] = ofType(s.events, 'halted');
  assert.equal(halt?.failures, 3);
  assert.equal(halt?.heldBack, 2);
  for (const id of ['d-00020', 'd-00021']) assert.equal(end.assignments.get(id), 1, `${id} is held back`);
  assert.deepEqual(ofType(s.events, 'wave-started').map((e) => e.wave), [1, 2]);
});

test('an offline device is deferred at the wave deadline and does not block; it takes the revision when it returns', () => {
  const s = sim(10, { waves: [{ count: 3 }, { percent: 100 }] });
  const ids = deviceIds(10);
  const first = s.step();
  const wave0 = [...first.assignments].filter(([, r]) => r === 2).map(([id]) => id);
  s.setOnline(wave0[0]!, false);
  // It went offline before taking the revision: it never saw it.
  s.devices.get(wave0[0]!)!.seen = null;
  s.devices.get(wave0[0]!)!.reported = null;
  const end = s.run();
  assert.equal(end.state.phase, 'done');
  assert.deepEqual(ofType(s.events, 'device-deferred').map((e) => [e.deviceId, e.verdict]), [[wave0[0], 'offline']]);
  assert.deepEqual(ofType(s.events, 'done').map((e) => [e.healthy, e.deferred]), [[9, 1]]);
  s.setOnline(wave0[0]!, true);
  const after = s.run();
  assert.equal(after.state.members[wave0[0]!]?.outcome, 'healthy');
  for (const id of ids) assert.deepEqual(s.history.get(id), [1, 2]);
});

test('an online device showing a fault past the deadline fails as timed out, with the fault as the reason', () => {
  const s = sim(3, { waves: [{ count: 1 }, { percent: 100 }] });
  const first = s.step();
  const [canary] = [...first.assignments].filter(([, r]) => r === 2).map(([id]) => id);
  const d = s.devices.get(canary!)!;
  d.reported = { ...d.reported!, desiredVersion: d.published!.version, appliedVersion: d.published!.version - 1, status: 'degraded', services: [service('web', { state: 'pull-failed', lastError: { code: 'PULL_FAILED', message: 'manifest unknown' } })] };
  s.run((x) => ofType(x.events, 'device-failed').length > 0);
  const [failed] = ofType(s.events, 'device-failed');
  assert.equal(failed?.timedOut, true);
  assert.deepEqual(failed?.reason, { service: 'web', state: 'pull-failed', health: 'none', code: 'PULL_FAILED', message: 'manifest unknown' });
  assert.equal(failed.at - first.state.members[canary!]!.assignedAt >= DEFAULT_STRATEGY.deadlineMs, true);
});

test('a crash during the bake fails the device', () => {
  const s = sim(3);
  s.step();
  s.step();
  const [canary] = Object.keys(s.state.members);
  assert.equal(s.state.members[canary!]?.verdict, 'baking');
  s.now += 3 * MIN;
  s.crash(canary!);
  s.step();
  assert.equal(s.state.members[canary!]?.outcome, 'failed');
  assert.equal(s.state.phase, 'halted');
  assert.equal(ofType(s.events, 'device-failed')[0]?.reason?.state, 'backoff');
});

test('pause stops the waves, not the judging; resume goes on; a halted rollout does not resume', () => {
  const s = sim(10, { bakeMs: 0 });
  s.step();
  s.state = pauseRollout(s.state, s.now).state;
  s.run();
  assert.equal(s.state.phase, 'paused');
  assert.equal(s.state.wave, 0);
  assert.equal(Object.values(s.state.members)[0]?.outcome, 'healthy');
  assert.deepEqual(pauseRollout(s.state, s.now).events, []);
  s.state = resumeRollout(s.state, s.now).state;
  assert.equal(s.run().state.phase, 'done');
  assert.throws(() => pauseRollout(s.state, s.now), (err) => isTsunaguError(err, 'ROLLOUT_PHASE'));
  const halted = sim(5, {}, () => 'fails-probation');
  halted.run();
  assert.throws(() => resumeRollout(halted.state, halted.now), (err) => isTsunaguError(err, 'ROLLOUT_PHASE') && /deployment update/.test(err.message));
});

test('abort puts every device back on the previous revision, also devices that match afterwards', () => {
  const s = sim(20, { bakeMs: 0, waves: [{ count: 5 }, { percent: 100 }] });
  s.step();
  s.step();
  assert.ok(onRevision(s, 2).length >= 5, 'at least five devices on revision 2');
  const aborted = abortRollout(s.state, s.now);
  assert.deepEqual(aborted.events.map((e) => e.type), ['aborted']);
  s.state = aborted.state;
  s.targets.push('d-late');
  s.addDevice('d-late', null);
  const end = s.run();
  assert.deepEqual([...end.assignments.values()].filter((r) => r !== 1), []);
  assert.equal(end.wakeAt, null);
  assert.deepEqual(abortRollout(s.state, s.now).events, []);
  const first = startRollout({ deployment: 'web', fromRevision: null, toRevision: 1, strategy: DEFAULT_STRATEGY, now: 0 }).state;
  assert.throws(() => abortRollout(first, 0), (err) => isTsunaguError(err, 'ROLLOUT_PHASE') && /first revision/.test(err.message));
});

test("a deployment's first revision is not staged: every target, present or later, gets it at once", () => {
  const { state } = startRollout({ deployment: 'web', fromRevision: null, toRevision: 1, strategy: DEFAULT_STRATEGY, now: 0 });
  const s = new FleetSim(state, deviceIds(4), () => 'runs', null);
  const step = s.step();
  assert.equal(step.state.phase, 'done');
  assert.deepEqual([...step.assignments.values()], [1, 1, 1, 1]);
  s.targets.push('d-new');
  s.addDevice('d-new', null);
  assert.equal(s.step().assignments.get('d-new'), 1);
});

test('a device that matches mid-rollout runs the previous revision until a wave takes it; after the end it gets the new one at once', () => {
  const s = sim(10, { waves: [{ count: 1 }, { percent: 50 }, { percent: 100 }] });
  s.step();
  s.targets.push('d-mid');
  s.addDevice('d-mid', 1);
  assert.equal(s.step().assignments.get('d-mid'), 1);
  s.run();
  assert.equal(s.state.phase, 'done');
  assert.deepEqual(s.history.get('d-mid'), [1, 2]);
  s.targets.push('d-after');
  s.addDevice('d-after', null);
  assert.equal(s.step().assignments.get('d-after'), 2);
});

test('a device that stops matching gets no assignment and does not hold its wave', () => {
  const s = sim(6, { waves: [{ count: 2 }, { percent: 100 }] });
  const first = s.step();
  const wave0 = [...first.assignments].filter(([, r]) => r === 2).map(([id]) => id);
  s.setOnline(wave0[0]!, false);
  s.targets = s.targets.filter((id) => id !== wave0[0]);
  const end = s.run();
  assert.equal(end.assignments.has(wave0[0]!), false);
  assert.equal(end.state.phase, 'done');
  assert.equal(ofType(s.events, 'device-deferred').length, 0);
});

test('a newer revision mid-rollout supersedes it from the last good revision; devices on the superseded one go first', () => {
  const s = sim(20, { waves: [{ count: 4 }, { percent: 100 }] });
  s.step();
  const onOld = onRevision(s, 2);
  assert.equal(onOld.length, 4);
  const next = supersedeRollout(s.state, { toRevision: 3, strategy: strategy({ waves: [{ count: 4 }, { percent: 100 }] }), now: s.now });
  assert.deepEqual(next.events.map((e) => e.type), ['superseded', 'started']);
  assert.equal(next.state.fromRevision, 1);
  s.state = next.state;
  const first = s.step();
  for (const id of onOld) assert.equal(first.assignments.get(id), 3, `${id} carried from revision 2 moves first`);
  for (const [id, r] of first.assignments) if (!onOld.includes(id)) assert.equal(r, 1);
  assert.equal(s.run().state.phase, 'done');
  for (const id of onOld) assert.deepEqual(s.history.get(id), [1, 2, 3]);
  const done = supersedeRollout(s.state, { toRevision: 4, strategy: DEFAULT_STRATEGY, now: s.now }).state;
  assert.equal(done.fromRevision, 3);
  assert.deepEqual(done.carried, {});
});

test('after a finished rollout, a device reverted from its revision is not handed that revision again by the next one', () => {
  const s = sim(10, { waves: [{ percent: 100 }], maxFailures: { count: 3 } }, (id, r) => (r === 2 && id === 'd-00004' ? 'fails-probation' : 'runs'));
  assert.equal(s.run().state.phase, 'done');
  assert.deepEqual(s.history.get('d-00004'), [1, 2, 1]);
  s.state = supersedeRollout(s.state, { toRevision: 3, strategy: strategy({ waves: [{ count: 1 }, { percent: 100 }] }), now: s.now }).state;
  assert.deepEqual(s.state.carried, { 'd-00004': 1 });
  const first = s.step();
  assert.equal(first.assignments.get('d-00004'), 3, 'it goes first, to the new revision');
  s.run();
  assert.deepEqual(s.history.get('d-00004'), [1, 2, 1, 3]);
});

test('the state survives JSON and a restart: stepping the stored copy gives the same result', () => {
  const s = sim(30, { waves: [{ count: 2 }, { percent: 30 }, { percent: 100 }] }, (id, r) => (r === 2 && id === 'd-00007' ? 'fails-probation' : 'runs'));
  s.run((x) => x.state.wave === 1);
  const stored: RolloutState = rolloutStateFromJson(JSON.parse(JSON.stringify(s.state)));
  assert.deepEqual(stored, s.state);
  const input = { targets: s.targets, devices: s.observations(), now: s.now + 11 * MIN };
  assert.deepEqual(stepRollout(stored, input), stepRollout(s.state, input));
  assert.throws(() => rolloutStateFromJson({ ...s.state, phase: 'exploded' }), (err) => isTsunaguError(err, 'SCHEMA'));
});

test('stepping does not modify its input, and a pass that changes nothing keeps updatedAt', () => {
  const s = sim(5);
  s.run((x) => x.state.wave === 0 && Object.values(x.state.members).some((m) => m.verdict === 'baking'));
  const frozen = JSON.stringify(s.state);
  const again = stepRollout(s.state, { targets: s.targets, devices: s.observations(), now: s.now + 1 });
  assert.equal(JSON.stringify(s.state), frozen);
  assert.equal(again.changed, false);
  assert.equal(again.state, s.state, 'an unchanged state is the same object');
  s.now += DEFAULT_STRATEGY.bakeMs;
  const baked = stepRollout(s.state, { targets: s.targets, devices: s.observations(), now: s.now });
  assert.equal(baked.changed, true);
  assert.equal(baked.state.updatedAt, s.now);
  assert.equal(JSON.stringify(s.state), frozen);
});
