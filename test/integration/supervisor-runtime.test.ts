import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { DockerRuntime } from '../../agent/supervisor/docker-runtime.js';
import { type PullProgress, type RuntimeEvent } from '../../agent/supervisor/container-runtime.js';
import { LABELS, ownershipLabels } from '../../agent/supervisor/container-labels.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { dockerTestEnv, TEST_LABEL } from '../support/supervisor-harness.js';
import { waitFor } from '../support/wait-for.js';

// The contract of ContainerRuntime, run against its one real adapter.

test('DockerRuntime: pull, create, start, list owned, events, stop, remove', async (t) => {
  const { images } = dockerTestEnv();
  const runtime = new DockerRuntime();
  const scope = `t-runtime-${randomBytes(3).toString('hex')}`;
  const created: string[] = [];
  t.after(async () => { for (const id of created) await runtime.removeContainer(id); });

  // Pull with progress; an absent tag fails with PULL_FAILED.
  const ref = images.busybox2;
  const progress: PullProgress[] = [];
  await runtime.pullImage(ref, { onProgress: (p) => progress.push(p) });
  assert.ok(progress.length > 0 && progress.every((p) => p.image === ref), 'progress.length > 0 && progress.every((p) => p.image === ref)');
  const image = await runtime.inspectImage(ref);
  assert.match(image?.digest ?? '', /^127\.0\.0\.1:5000\/tsunagu-test\/busybox@sha256:/);
  assert.equal(await runtime.inspectImage(images.missing), undefined);
  await assert.rejects(runtime.pullImage(images.missing, {}), (e) => isTsunaguError(e, 'PULL_FAILED') && /does-not-exist|not found|unknown/.test(e.message));

  // Events of owned containers in this scope.
  const events: RuntimeEvent[] = [];
  const watching = new AbortController();
  const watch = runtime.watchEvents(scope, (e) => events.push(e), watching.signal);

  const labels = { [TEST_LABEL]: scope, [LABELS.service]: 'one', [LABELS.configHash]: 'h' };
  const owned = await runtime.createContainer(`${scope}-one`, {
    Image: ref, Cmd: ['sh', '-c', 'exit 7'], Labels: { ...labels, ...ownershipLabels(scope) }, HostConfig: { NetworkMode: 'none' },
  });
  created.push(owned);
  const otherScope = await runtime.createContainer(`${scope}-other`, {
    Image: ref, Labels: { ...labels, ...ownershipLabels(`${scope}-x`) }, HostConfig: { NetworkMode: 'none' },
  });
  created.push(otherScope);
  const unowned = await runtime.createContainer(`${scope}-unowned`, { Image: ref, Labels: labels, HostConfig: { NetworkMode: 'none' } });
  created.push(unowned);

  await runtime.startContainer(owned);
  await waitFor('the die event', () => events.some((e) => e.action === 'die'), 10_000, { intervalMs: 50 });
  const listed = await runtime.listOwnedContainers(scope);
  assert.deepEqual(listed.map((c) => c.id), [owned], 'only this scope\'s owned containers');
  assert.deepEqual(listed[0] && [listed[0].service, listed[0].configHash, listed[0].status, listed[0].exitCode, listed[0].image], ['one', 'h', 'exited', 7, ref]);
  assert.ok(listed[0]?.startedAt !== null && listed[0]?.finishedAt !== null, 'listed[0]?.startedAt !== null && listed[0]?.finishedAt !== null');
  assert.deepEqual((await runtime.inspectContainer(owned, scope))?.id, owned);
  assert.equal(await runtime.inspectContainer(unowned, scope), undefined, 'not owned: invisible');
  assert.equal(await runtime.inspectContainer(otherScope, scope), undefined, 'another scope: invisible');
  const die = events.find((e) => e.action === 'die');
  assert.deepEqual(die && [die.containerId, die.service, die.exitCode], [owned, 'one', 7]);
  assert.ok(events.every((e) => e.containerId === owned), 'no events of other scopes or unowned containers');

  // Stop and remove are idempotent; removal shows up as destroy.
  await runtime.stopContainer(owned, 1000);
  await runtime.removeContainer(owned);
  await runtime.removeContainer(owned);
  await runtime.stopContainer(owned, 1000);
  assert.equal(await runtime.inspectContainer(owned, scope), undefined);
  await waitFor('the destroy event', () => events.some((e) => e.action === 'destroy'), 10_000, { intervalMs: 50 });
  watching.abort();
  await watch;
});

test('DockerRuntime: an unreachable engine is RUNTIME_UNAVAILABLE; an abort is CANCELLED', async () => {
  const gone = new DockerRuntime({ socketPath: '/run/tsunagu-no-such-engine.sock' });
  await assert.rejects(gone.listOwnedContainers('x'), (e) => isTsunaguError(e, 'RUNTIME_UNAVAILABLE'));
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(new DockerRuntime().listOwnedContainers('x', ac.signal), (e) => isTsunaguError(e, 'CANCELLED'));
});
