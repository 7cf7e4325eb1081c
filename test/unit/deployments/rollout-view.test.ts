import assert from 'node:assert/strict';
import { test } from 'node:test';
import { abortRollout, startRollout } from '../../../provisioning/deployments/rollout-commands.js';
import { progressBar, renderRolloutText, rolloutView } from '../../../provisioning/deployments/rollout-view.js';
import { DEFAULT_STRATEGY } from '../../../provisioning/deployments/rollout-strategy.js';
import { deviceIds, FleetSim } from './fleet-sim.js';

const T0 = Date.UTC(2026, 11, 8, 2, 0);

function halfway(): FleetSim {
  const { state } = startRollout({ deployment: 'web', fromRevision: 3, toRevision: 4, strategy: DEFAULT_STRATEGY, now: T0 });
  const sim = new FleetSim(state, deviceIds(120), (id, r) => (r === 4 && id === 'd-00017' ? 'fails-probation' : 'runs'), 3);
  sim.now = T0;
  sim.run((s) => s.state.wave === 2);
  sim.step();
  return sim;
}

test('the JSON view counts every target once, per wave and overall, and lists the failing devices with their reasons', () => {
  const sim = halfway();
  const v = rolloutView(sim.state, sim.targets);
  assert.equal(v.wave, 3);
  assert.deepEqual(v.waves.map((w) => [w.wave, w.size, w.upTo, w.devices, w.state]), [[1, '1', 1, 1, 'passed'], [2, '10%', 12, 11, 'passed'], [3, '50%', 60, 48, 'running'], [4, '100%', 120, 0, 'waiting']]);
  const total = Object.values(v.counts).reduce((a, b) => a + b, 0);
  assert.equal(total, 120);
  assert.equal(v.counts.waiting, 60);
  assert.equal(v.counts.failed, 1);
  assert.deepEqual(v.failing, [{
    deviceId: 'd-00017', wave: 3, timedOut: false, revision: 3,
    reason: { service: 'web', code: 'PROBATION_FAILED', message: 'web: unhealthy within its probation; rolled back', state: 'running', health: 'unhealthy' },
  }]);
  assert.deepEqual(v.failures, { failed: 1, tried: 60, allowed: 3 });
  assert.deepEqual(JSON.parse(JSON.stringify(v)), v, 'the view is plain JSON');
});

test('the text shows the phase, one line per wave with a bar, the counts, and why each failing device failed', () => {
  const sim = halfway();
  const text = renderRolloutText(rolloutView(sim.state, sim.targets));
  const lines = text.split('\n');
  assert.equal(lines[0], 'rollout of web: revision 3 → revision 4, running, wave 3 of 4');
  assert.match(text, /wave 1 {5}1 → {5}1 {2}passed {3}\[█{20}\] 1\/1 {2}1 healthy/);
  assert.match(text, /wave 4 {2}100% → {3}120 {2}waiting\n/);
  assert.match(text, /devices {3}120 target\(s\): 12 healthy · 47 (baking|applying) · 1 failed · 60 waiting/);
  assert.match(text, /d-00017 {2}wave 3 {2}web PROBATION_FAILED health unhealthy "web: unhealthy within its probation; rolled back", back on revision 3/);
});

test('text from a device cannot move the cursor: control characters are shown escaped', () => {
  const sim = halfway();
  const m = sim.state.members['d-00017']!;
  m.reason = { ...m.reason, message: 'boom\u001b[2J\nsecond line' };
  const text = renderRolloutText(rolloutView(sim.state, sim.targets));
  assert.ok(!text.includes('\u001b'), 'no escape character from device text reaches the terminal');
  assert.match(text, /"boom\\x1b\[2J second line"/);
});

test('a halted or aborted rollout says so on its first line; long failing lists are cut', () => {
  const { state } = startRollout({ deployment: 'api', fromRevision: 1, toRevision: 2, strategy: { ...DEFAULT_STRATEGY, waves: [{ percent: 100 }], maxFailures: { count: 2 } }, now: T0 });
  const sim = new FleetSim(state, deviceIds(10), () => 'fails-probation', 1);
  sim.now = T0;
  sim.run();
  const halted = renderRolloutText(rolloutView(sim.state, sim.targets), { maxFailing: 2, time: () => 'T' });
  assert.match(halted.split('\n')[0]!, /HALTED at wave 1 of 1 at T: 10 failed of 10 tried, 2 allowed/);
  assert.match(halted, /… and 8 more \(--json lists them all\)/);
  const aborted = abortRollout(sim.state, sim.now).state;
  assert.match(renderRolloutText(rolloutView(aborted, sim.targets)), /aborted: every device is back on revision 1/);
});

test("a first revision, or a device that matched after the end, is counted unstaged, not waiting", () => {
  const { state } = startRollout({ deployment: 'api', fromRevision: null, toRevision: 1, strategy: DEFAULT_STRATEGY, now: T0 });
  const v = rolloutView(state, ['d-1', 'd-2']);
  assert.equal(v.counts.unstaged, 2);
  assert.equal(v.counts.waiting, 0);
  const text = renderRolloutText(v);
  assert.match(text, /^rollout of api: nothing → revision 1, done: every wave passed\n/);
  assert.match(text, /devices {3}2 target\(s\): 2 unstaged/);
  assert.doesNotMatch(text, /wave 1/);
});

test('progress bars fill in proportion, also for an empty wave', () => {
  assert.equal(progressBar(0, 10, 10), '[░░░░░░░░░░]');
  assert.equal(progressBar(5, 10, 10), '[█████░░░░░]');
  assert.equal(progressBar(10, 10, 10), '[██████████]');
  assert.equal(progressBar(0, 0, 4), '[░░░░]');
});
