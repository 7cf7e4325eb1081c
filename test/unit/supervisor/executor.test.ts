import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import type { LocalImage } from '../../../agent/supervisor/actual-state.js';
import type { ContainerRuntime } from '../../../agent/supervisor/container-runtime.js';
import { executeStep, type StepContext } from '../../../agent/supervisor/executor.js';
import { isTsunaguError } from '../../../protocol/errors.js';

/** Records calls; the executor's only job is to route steps to the right call with the right arguments. */
function recordingRuntime(calls: unknown[][]): ContainerRuntime {
  return {
    listOwnedContainers: () => Promise.resolve([]),
    inspectContainer: () => Promise.resolve(undefined),
    inspectImage: (ref) => Promise.resolve({ id: 'sha256:i', digest: null, repoDigests: ref.includes('@') ? [ref] : [] }),
    pullImage: (ref, o) => {
      calls.push(['pull', ref, o.auth, o.signal]);
      o.onProgress?.({ image: ref, currentBytes: 1, totalBytes: 2, status: 'Downloading', id: 'l1', progress: { current: 1, total: 2 } });
      return Promise.resolve();
    },
    createContainer: (name, options, signal) => { calls.push(['create', name, options.Image, options.Labels?.['io.tsunagu.version'], signal]); return Promise.resolve('new-id'); },
    startContainer: (id, signal) => { calls.push(['start', id, signal]); return Promise.resolve(); },
    stopContainer: (id, ms, signal) => { calls.push(['stop', id, ms, signal]); return Promise.resolve(); },
    removeContainer: (id, signal) => { calls.push(['remove', id, signal]); return Promise.resolve(); },
    watchEvents: () => Promise.resolve(),
  };
}

test('each step kind reaches its runtime call with the pass\'s signal', async () => {
  const calls: unknown[][] = [];
  const progress: unknown[] = [];
  const signal = new AbortController().signal;
  const auth = { username: 'u', password: 'p', serveraddress: 'r' };
  const ctx: StepContext = {
    runtime: recordingRuntime(calls), signal, scope: 's', project: 'p', version: 'v9',
    registryAuth: (image) => (image.startsWith('r/') ? auth : undefined),
    onPullProgress: (service, p) => progress.push([service, p.currentBytes, p.totalBytes]),
  };
  const [desired] = parseDesiredState({ services: { a: { image: 'r/a:1' } } }).services;
  assert.ok(desired, 'desired');
  await executeStep({ kind: 'pull', service: 'a', image: 'r/a:1' }, ctx);
  await executeStep({ kind: 'create', service: 'a', desired, configHash: 'h', name: 's-a-h' }, ctx);
  await executeStep({ kind: 'start', service: 'a', container: 's-a-h', restart: false }, ctx);
  await executeStep({ kind: 'stop', service: 'a', containerId: 'c1', timeoutMs: 3000 }, ctx);
  await executeStep({ kind: 'remove', service: 'a', containerId: 'c1' }, ctx);
  assert.deepEqual(calls, [
    ['pull', 'r/a:1', auth, signal],
    ['create', 's-a-h', 'r/a:1', 'v9', signal],
    ['start', 's-a-h', signal],
    ['stop', 'c1', 3000, signal],
    ['remove', 'c1', signal],
  ]);
  assert.deepEqual(progress, [['a', 1, 2]]);
});

test('an aborted pass runs no further step', async () => {
  const calls: unknown[][] = [];
  const ac = new AbortController();
  ac.abort(new Error('newer desired state'));
  const ctx: StepContext = { runtime: recordingRuntime(calls), signal: ac.signal, scope: 's', project: 'p', version: 'v' };
  await assert.rejects(executeStep({ kind: 'remove', service: 'a', containerId: 'c1' }, ctx), (e) => isTsunaguError(e, 'CANCELLED'));
  assert.deepEqual(calls, []);
});

test('a pull counts as done only when the engine holds the image, and for a pinned digest, that content', async () => {
  const pinned = 'r/a@sha256:aaaa';
  const holding = (image: LocalImage | undefined): ContainerRuntime => ({ ...recordingRuntime([]), inspectImage: () => Promise.resolve(image) });
  const ctx = (runtime: ContainerRuntime): StepContext => ({ runtime, signal: new AbortController().signal, scope: 's', project: 'p', version: 'v' });
  // A pull that ended without the image (a stream cut short) is a failed pull, not a done one.
  await assert.rejects(executeStep({ kind: 'pull', service: 'a', image: 'r/a:1' }, ctx(holding(undefined))), (e) => isTsunaguError(e, 'PULL_FAILED') && /holds no such image/.test(e.message));
  // Found under the pinned reference but without its digest: refused, typed.
  await assert.rejects(
    executeStep({ kind: 'pull', service: 'a', image: pinned }, ctx(holding({ id: 'sha256:x', digest: 'r/a@sha256:bbbb', repoDigests: ['r/a@sha256:bbbb'] }))),
    (e) => isTsunaguError(e, 'DIGEST_MISMATCH') && e.message.includes('r/a@sha256:bbbb'),
  );
  await executeStep({ kind: 'pull', service: 'a', image: pinned }, ctx(holding({ id: 'sha256:x', digest: `${pinned}`, repoDigests: ['r/b@sha256:bbbb', pinned] })));
  await executeStep({ kind: 'pull', service: 'a', image: 'r/a:1' }, ctx(holding({ id: 'sha256:x', digest: null, repoDigests: [] })));
});
