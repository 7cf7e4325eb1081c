import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isTsunaguError } from '../../../protocol/errors.js';
import { abortRollout, pauseRollout, resumeRollout, startRollout, supersedeRollout, type RolloutTransition } from '../../../provisioning/deployments/rollout-commands.js';
import { RolloutStateSchema, type RolloutEvent } from '../../../provisioning/deployments/rollout-state.js';
import { DEFAULT_STRATEGY, type RolloutStrategy, type WaveSize } from '../../../provisioning/deployments/rollout-strategy.js';
import { deviceIds, FleetSim, type Reaction } from './fleet-sim.js';

const MIN = 60_000;

const wavesArb: fc.Arbitrary<WaveSize[]> = fc.constantFrom<WaveSize[]>(
  [{ percent: 100 }],
  [{ count: 1 }, { percent: 100 }],
  [{ count: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }],
  [{ count: 3 }, { count: 10 }, { percent: 100 }],
  [{ percent: 25 }, { percent: 50 }, { percent: 75 }, { percent: 100 }],
);
const strategyArb: fc.Arbitrary<RolloutStrategy> = fc.record({
  waves: wavesArb,
  bakeMs: fc.constantFrom(0, 5 * MIN, 10 * MIN),
  maxFailures: fc.oneof(fc.record({ count: fc.integer({ min: 0, max: 5 }) }, { noNullPrototype: true }), fc.record({ percent: fc.constantFrom(0, 5, 20, 100) }, { noNullPrototype: true })),
  onHalt: fc.constantFrom('revert' as const, 'hold' as const),
  deadlineMs: fc.constantFrom(15 * MIN, 30 * MIN),
}, { noNullPrototype: true });
const reactionArb: fc.Arbitrary<Reaction> = fc.oneof(
  { arbitrary: fc.constant('runs' as const), weight: 8 },
  { arbitrary: fc.constant('fails-probation' as const), weight: 1 },
  { arbitrary: fc.constant('refuses' as const), weight: 1 },
);
type Action =
  | { kind: 'step' } | { kind: 'settle' } | { kind: 'tick'; ms: number } | { kind: 'pause' } | { kind: 'resume' } | { kind: 'abort' }
  | { kind: 'online'; device: number; online: boolean } | { kind: 'add' } | { kind: 'drop'; device: number } | { kind: 'supersede' };
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'step' as const }), weight: 5 },
  { arbitrary: fc.constant({ kind: 'settle' as const }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.constantFrom(1, MIN, 10 * MIN, 40 * MIN) }), weight: 3 },
  { arbitrary: fc.constant({ kind: 'pause' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'resume' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'abort' as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('online' as const), device: fc.nat(60), online: fc.boolean() }), weight: 2 },
  { arbitrary: fc.constant({ kind: 'add' as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('drop' as const), device: fc.nat(60) }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'supersede' as const }), weight: 1 },
);

function operator(sim: FleetSim, verb: (s: typeof sim.state, now: number) => RolloutTransition): void {
  try {
    const t = verb(sim.state, sim.now);
    sim.state = t.state;
    sim.events.push(...t.events);
  } catch (err) {
    if (!isTsunaguError(err, 'ROLLOUT_PHASE')) throw err;
  }
}

test('under any mix of reports, outages, target changes and operator verbs the rollout keeps its invariants', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 40 }), strategyArb, fc.array(reactionArb, { minLength: 70, maxLength: 70 }), fc.array(actionArb, { maxLength: 60 }),
    (n, strategy, reactions, actions) => {
      const { state } = startRollout({ deployment: 'web', fromRevision: 1, toRevision: 2, strategy, now: 1_000_000 });
      const ids = deviceIds(n);
      const index = (id: string): number => Number(id.slice(2)) % reactions.length;
      let current = state.toRevision;
      const sim: FleetSim = new FleetSim(state, ids, (id: string, revision: number): Reaction => (revision === current ? reactions[index(id)]! : 'runs'), 1);
      let added = 0;
      for (const action of actions) {
        const before = sim.state;
        const eventsBefore = sim.events.length;
        switch (action.kind) {
          case 'step': sim.step(); break;
          case 'settle': sim.run(); break;
          case 'tick': sim.now += action.ms; sim.step(); break;
          case 'pause': operator(sim, pauseRollout); sim.step(); break;
          case 'resume': operator(sim, resumeRollout); sim.step(); break;
          case 'abort': operator(sim, abortRollout); sim.step(); break;
          case 'online': { const id = ids[action.device % n]!; if (sim.devices.has(id)) sim.setOnline(id, action.online); sim.step(); break; }
          case 'add': { const id = `d-9${String(added++).padStart(4, '0')}`; sim.addDevice(id, before.phase === 'done' ? before.toRevision : before.fromRevision); sim.targets.push(id); sim.step(); break; }
          case 'drop': { const id = ids[action.device % n]!; sim.targets = sim.targets.filter((t) => t !== id); sim.step(); break; }
          case 'supersede': operator(sim, (s, now) => supersedeRollout(s, { toRevision: s.toRevision + 1, strategy, now })); current = sim.state.toRevision; sim.step(); break;
        }
        const after = sim.state;
        current = after.toRevision;
        const newEvents: RolloutEvent[] = sim.events.slice(eventsBefore);
        // The stored form: JSON that parses back to the same state.
        assert.deepEqual(RolloutStateSchema.parse(JSON.parse(JSON.stringify(after))), after);
        // updatedAt moves exactly when something else did: the store writes the row only then.
        if (['step', 'tick', 'online', 'add', 'drop'].includes(action.kind)) {
          const moved = JSON.stringify({ ...after, updatedAt: 0 }) !== JSON.stringify({ ...before, updatedAt: 0 });
          assert.equal(after.updatedAt === sim.now && before.updatedAt !== sim.now, moved && before.updatedAt !== sim.now);
          assert.equal(sim.last?.changed, moved);
        }
        const wake = sim.last?.wakeAt ?? null;
        assert.ok(wake === null || wake > sim.now, 'the next wake-up is ahead, never a busy loop');
        if (after.toRevision !== before.toRevision) continue;
        // No device is ever given a revision outside from, to and the superseded one it still runs.
        const allowed = new Set([after.fromRevision, after.toRevision, ...Object.values(after.carried)]);
        for (const [id, r] of sim.last?.assignments ?? []) assert.ok(allowed.has(r), `${id} assigned ${r}`);
        if (after.phase === 'aborted') for (const r of sim.last?.assignments.values() ?? []) assert.equal(r, after.fromRevision);
        // A halted rollout never advances, and stays halted until an abort or a new revision.
        if (before.phase === 'halted') {
          assert.equal(after.wave, before.wave);
          assert.ok(after.phase === 'halted' || after.phase === 'aborted', `a halted rollout stays halted or is aborted, not ${after.phase}`);
          assert.deepEqual(newEvents.filter((e) => e.type === 'wave-started'), []);
        }
        // Healthy and failed are final for a device.
        for (const [id, m] of Object.entries(before.members)) {
          if (m.outcome === 'healthy' || m.outcome === 'failed') assert.equal(after.members[id]?.outcome, m.outcome, id);
        }
      }
    },
  ), { numRuns: 150 });
});

test('1,000 devices through four waves: every healthy device ends on the new revision, having moved exactly once', () => {
  const ids = deviceIds(1000);
  // 2 % fail their probation (under the 5 % threshold), 3 % are offline through the first waves.
  const failing = new Set(ids.filter((_, i) => i % 50 === 7));
  const away = ids.filter((_, i) => i % 33 === 5);
  const { state } = startRollout({ deployment: 'web', fromRevision: 1, toRevision: 2, strategy: DEFAULT_STRATEGY, now: 1_000_000 });
  const sim = new FleetSim(state, ids, (id, revision) => (revision === 2 && failing.has(id) ? 'fails-probation' : 'runs'), 1);
  for (const id of away) sim.setOnline(id, false);
  sim.run((s) => s.state.wave === 2);
  for (const id of away) sim.setOnline(id, true);
  const end = sim.run();
  assert.equal(end.state.phase, 'done');
  assert.deepEqual(sim.events.filter((e) => e.type === 'wave-started').map((e) => (e.type === 'wave-started' ? [e.wave, e.of] : [])), [[1, 1], [2, 100], [3, 500], [4, 1000]]);
  const failedIds = new Set(Object.entries(end.state.members).filter(([, m]) => m.outcome === 'failed').map(([id]) => id));
  assert.ok(failedIds.size > 0 && [...failedIds].every((id) => failing.has(id)), 'only devices that failed are reported failed');
  for (const id of ids) {
    const history = sim.history.get(id)!;
    assert.equal(history.filter((r) => r === 2).length, 1, `${id} was given the new revision once: ${history.join(',')}`);
    if (failedIds.has(id)) assert.deepEqual(history, [1, 2, 1]);
    else {
      assert.deepEqual(history, [1, 2]);
      assert.equal(end.state.members[id]?.outcome, 'healthy', id);
      assert.equal(end.assignments.get(id), 2);
    }
  }
});
