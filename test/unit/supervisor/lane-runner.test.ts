import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runLanes } from '../../../agent/supervisor/lane-runner.js';
import type { Lane } from '../../../agent/supervisor/step-lanes.js';
import type { Step } from '../../../agent/supervisor/steps.js';

const stop = (service: string): Step => ({ kind: 'stop', service, containerId: `old-${service}`, timeoutMs: 1000 });
const remove = (service: string): Step => ({ kind: 'remove', service, containerId: `old-${service}` });
const start = (service: string): Step => ({ kind: 'start', service, container: `new-${service}`, restart: false });
const lane = (service: string, steps: Step[], takeDownAfter: number[] = [], after: number[] = []): Lane => ({ service, steps, takeDownAfter, after });
const label = (s: Step): string => `${s.kind}:${s.service}`;

/**
 * Steps that end only when the test says so: the order of beginnings and
 * ends is the runner's doing alone, with no timing involved.
 */
function controlledSteps(): { began: string[]; ended: string[]; finish: (which: string, ok?: boolean) => Promise<void>; run: (s: Step) => Promise<boolean> } {
  const began: string[] = [];
  const ended: string[] = [];
  const pending = new Map<string, (ok: boolean) => void>();
  return {
    began, ended,
    run: (s) => new Promise<boolean>((resolve) => {
      began.push(label(s));
      pending.set(label(s), (ok) => { ended.push(label(s)); resolve(ok); });
    }),
    finish: async (which, ok = true) => {
      const f = pending.get(which);
      assert.ok(f, `${which} has not begun (began: ${began.join(', ')})`);
      pending.delete(which);
      f(ok);
      for (let i = 0; i < 10; i++) await Promise.resolve(); // let the runner take its next steps
    },
  };
}

const settle = async (): Promise<void> => { for (let i = 0; i < 10; i++) await Promise.resolve(); };

test('independent lanes stop side by side: every stop begins before any of them ends', async () => {
  const c = controlledSteps();
  const names = ['a', 'b', 'c', 'd'];
  const done = runLanes(names.map((n) => lane(n, [stop(n), start(n)])), c.run, 2);
  await settle();
  assert.deepEqual(c.began, names.map((n) => `stop:${n}`));
  for (const n of names) await c.finish(`stop:${n}`);
  // Creates and starts take an engine slot: two at a time.
  assert.deepEqual(c.began.slice(4), ['start:a', 'start:b']);
  await c.finish('start:a');
  assert.equal(c.began.at(-1), 'start:c');
  await c.finish('start:b');
  await c.finish('start:c');
  await c.finish('start:d');
  await done;
});

test('a dependency is taken down only once its dependent\'s stop and remove are done; its own later steps do not wait', async () => {
  const c = controlledSteps();
  const done = runLanes([lane('web', [stop('web'), remove('web')]), lane('db', [stop('db'), remove('db'), start('db')], [0])], c.run);
  await settle();
  assert.deepEqual(c.began, ['stop:web']);
  await c.finish('stop:web');
  assert.deepEqual(c.began, ['stop:web', 'remove:web']);
  await c.finish('remove:web');
  assert.deepEqual(c.began, ['stop:web', 'remove:web', 'stop:db']);
  await c.finish('stop:db');
  await c.finish('remove:db');
  await c.finish('start:db');
  await done;
});

test('a failed step ends its lane; a dependency whose dependent was not taken down is left running; other lanes go on', async () => {
  const c = controlledSteps();
  const done = runLanes([lane('web', [stop('web'), remove('web')]), lane('db', [stop('db'), remove('db')], [0]), lane('other', [stop('other'), start('other')])], c.run);
  await settle();
  await c.finish('stop:web', false);
  await c.finish('stop:other');
  await c.finish('start:other');
  await done;
  assert.deepEqual(c.began, ['stop:web', 'stop:other', 'start:other']);
});

test('lanes with `after` begin once those lanes have ended, whatever their outcome', async () => {
  const c = controlledSteps();
  const done = runLanes([lane('gone', [stop('gone'), remove('gone')]), lane('web', [stop('web'), start('web')], [], [0])], c.run);
  await settle();
  assert.deepEqual(c.began, ['stop:gone']);
  await c.finish('stop:gone');
  await c.finish('remove:gone', false);
  assert.deepEqual(c.began, ['stop:gone', 'remove:gone', 'stop:web']);
  await c.finish('stop:web');
  await c.finish('start:web');
  await done;
});

test('a step that throws ends the run with its error once every lane has ended', async () => {
  const c = controlledSteps();
  const boom = new Error('engine gone');
  const done = runLanes([lane('a', [stop('a'), start('a')]), lane('b', [stop('b'), start('b')])], (s) => (s.service === 'a' ? Promise.reject(boom) : c.run(s)));
  let settled = false;
  void done.catch(() => undefined).finally(() => { settled = true; });
  await settle();
  assert.equal(settled, false, 'lane b is still running');
  await c.finish('stop:b');
  await c.finish('start:b');
  await assert.rejects(done, boom);
});
