import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import type { SupervisorOptions } from '../../agent/supervisor/supervisor.js';
import { dockerTestEnv, supervisorHarness, type SupervisorHarness } from '../support/supervisor-harness.js';
import { pushUniqueImage, startPrivateRegistry, type PrivateRegistry } from '../support/private-registry.js';
import { startRegistryFront } from '../support/registry-front.js';

// Scenario 8, against the real engine and a registry of this test's own (stopped and damaged
// here, never the shared one): the registry down, a corrupted layer, a digest-pinned image whose
// content changed, a layer download that stops moving. Each time the old version keeps running,
// alone, the service is reported `pull-failed` with a code that says why, the pull is retried
// with the pull back-off, nothing unverified ever runs, and once the registry serves good content
// again the device converges by itself. What an operator checks: the containers, the service's
// state and lastError, the pull-failed events.

type Context = Parameters<typeof supervisorHarness>[0];

async function withRunningV1(t: Context, name: string, overrides: Partial<SupervisorOptions> = {}): Promise<{ h: SupervisorHarness; oldId: string }> {
  const h = await supervisorHarness(t, name, overrides);
  await h.settle(h.compose({ web: { image: h.images.busybox1, restart: 'always' } }), 'v1');
  return { h, oldId: (await h.only('web')).Id };
}

async function assertOldKept(h: SupervisorHarness, oldId: string): Promise<void> {
  const all = (await h.containers()).get('web') ?? [];
  assert.deepEqual(all.map((c) => [c.Id, c.State.Running]), [[oldId, true]], 'the old container, alone, still running');
}

function registry(t: Context): Promise<PrivateRegistry> {
  return startPrivateRegistry().then((r) => { t.after(() => r.close()); return r; });
}

function web(h: SupervisorHarness): ReturnType<SupervisorHarness['supervisor']['state']>['services'][number] | undefined {
  return h.supervisor.state().services.find((s) => s.name === 'web');
}

/** The pull-failed events of `image`, in order. */
function refusals(h: SupervisorHarness, image: string): Extract<SupervisorHarness['events'][number], { type: 'pull-failed' }>[] {
  return h.events.flatMap((e) => (e.type === 'pull-failed' && e.image === image ? [e] : []));
}

async function waitRunning(h: SupervisorHarness, ref: string, timeoutMs: number): Promise<void> {
  await h.waitFor(`${ref} running`, async () => ((await h.containers()).get('web') ?? []).some((c) => c.State.Running && c.Config.Image === ref), timeoutMs);
  await h.waitFor('one web container', async () => ((await h.containers()).get('web') ?? []).length === 1, 10_000);
}

/** Retried with the harness's pull back-off (500 ms doubling to 2 s), refused each time, never anything else. */
async function assertRetriedAndRefused(h: SupervisorHarness, image: string, code: string, oldId: string, attempts = 3, timeoutMs = 20_000): Promise<void> {
  await h.waitFor(`${attempts} refused attempts`, () => refusals(h, image).length >= attempts, timeoutMs);
  const seen = refusals(h, image);
  assert.deepEqual([...new Set(seen.map((e) => e.code))], [code], JSON.stringify(seen.map((e) => e.error)));
  // Never sooner than the back-off: the n-th retry is made no earlier than the n-th delay allowed.
  for (let i = 1; i < seen.length; i++) {
    const delay = Math.min(500 * 2 ** i, 2000);
    assert.ok(seen[i]!.retryAt - seen[i - 1]!.retryAt >= delay, `retry ${i} waited its ${delay} ms: ${JSON.stringify(seen.map((e) => e.retryAt))}`);
  }
  assert.ok(!h.events.some((e) => e.type === 'pulled' && e.image === image), 'never counted as pulled');
  await assertOldKept(h, oldId);
}

test('registry down when the pull starts: the old version keeps running; it converges once the registry is back', async (t) => {
  const { dockerHost } = dockerTestEnv();
  const reg = await registry(t);
  const { h, oldId } = await withRunningV1(t, 'regdown');
  const ref = `${reg.host}/faults/down:${randomBytes(3).toString('hex')}`;
  pushUniqueImage(dockerHost, ref);
  await reg.stop();
  const failed = await h.settle(h.compose({ web: { image: ref, restart: 'always' } }), 'v2');
  const w = failed.services.find((s) => s.name === 'web');
  assert.deepEqual([w?.state, w?.lastError?.code], ['pull-failed', 'PULL_FAILED'], JSON.stringify(w));
  await assertOldKept(h, oldId);
  const back = Date.now();
  await reg.start();
  // Pull retries back off up to 2 s in the harness (5 min in production): bounded by that.
  await waitRunning(h, ref, 20_000);
  process.stdout.write(`converged ${Date.now() - back} ms after the registry came back\n`);
});

test('a corrupted layer in the registry: refused as DIGEST_MISMATCH at every retry, the old version keeps running; repaired, it converges', async (t) => {
  const { dockerHost } = dockerTestEnv();
  const reg = await registry(t);
  const { h, oldId } = await withRunningV1(t, 'regblob');
  const repo = 'faults/blob';
  const tag = randomBytes(3).toString('hex');
  const ref = `${reg.host}/${repo}:${tag}`;
  pushUniqueImage(dockerHost, ref);
  const layerDigest = (await reg.manifest(repo, tag)).layers[0]!.digest;
  const layer = reg.blobPath(layerDigest);
  const good = readFileSync(layer);
  writeFileSync(layer, randomBytes(statSync(layer).size)); // same size: only the digest can tell
  const began = Date.now();
  await h.apply(h.compose({ web: { image: ref, restart: 'always' } }), 'v2');
  await h.waitFor('the pull to fail', () => web(h)?.state === 'pull-failed', 60_000);
  process.stdout.write(`refused ${Date.now() - began} ms after the apply\n`);
  assert.equal(web(h)?.lastError?.code, 'DIGEST_MISMATCH', JSON.stringify(web(h)));
  assert.match(web(h)?.lastError?.message ?? '', new RegExp(`verification failed for digest ${layerDigest}`), 'the error names the layer');
  await assertOldKept(h, oldId);
  await assertRetriedAndRefused(h, ref, 'DIGEST_MISMATCH', oldId);
  assert.equal(await h.docker.getImage(ref).inspect().then(() => true, () => false), false, 'nothing of the bad layer was kept as an image');
  const repaired = Date.now();
  writeFileSync(layer, good);
  await waitRunning(h, ref, 30_000);
  process.stdout.write(`converged ${Date.now() - repaired} ms after the repair\n`);
});

test('an image pinned by digest whose content changed in the registry: refused as DIGEST_MISMATCH, never run; restored, it converges', async (t) => {
  const { dockerHost } = dockerTestEnv();
  const reg = await registry(t);
  const { h, oldId } = await withRunningV1(t, 'regpin');
  const pinnedRef = `${reg.host}/faults/pinned:a`;
  const digest = pushUniqueImage(dockerHost, pinnedRef);
  const other = `${reg.host}/faults/pinned:b`;
  pushUniqueImage(dockerHost, other);
  // The registry now serves another image's manifest under the pinned digest.
  const original = readFileSync(reg.blobPath(digest));
  writeFileSync(reg.blobPath(digest), readFileSync(reg.blobPath((await reg.manifest('faults/pinned', 'b')).digest)));
  const ref = `${reg.host}/faults/pinned@${digest}`;
  const failed = await h.settle(h.compose({ web: { image: ref, restart: 'always' } }), 'v2');
  const w = failed.services.find((s) => s.name === 'web');
  assert.deepEqual([w?.state, w?.lastError?.code], ['pull-failed', 'DIGEST_MISMATCH'], JSON.stringify(w));
  assert.match(w?.lastError?.message ?? '', new RegExp(`manifest verification failed for digest ${digest}`), 'the error names the pinned digest');
  assert.equal(failed.status, 'degraded', 'the version is not reported applied');
  await assertOldKept(h, oldId);
  await assertRetriedAndRefused(h, ref, 'DIGEST_MISMATCH', oldId);
  const restored = Date.now();
  writeFileSync(reg.blobPath(digest), original);
  await waitRunning(h, ref, 30_000);
  process.stdout.write(`converged ${Date.now() - restored} ms after the manifest was restored\n`);
  const running = await h.only('web');
  const image = await h.docker.getImage(running.Image).inspect();
  assert.ok(image.RepoDigests.includes(`${reg.host}/faults/pinned@${digest}`), 'what runs is the pinned content');
});

// Two ways a download stops moving: the registry (or a proxy) holds the connection open without
// another byte, which the engine waits on for good; or it cuts the download at the same point
// every time, which the engine tries again by itself, resuming, for well over a minute (both
// measured without the deadline: still `pulling` after 75 s). The deadline is longer than the
// engine's first 5 s retry countdown in the second case: counting down and starting again is not
// progress.
for (const { mode, stallMs } of [{ mode: 'hold', stallMs: 3000 }, { mode: 'cut', stallMs: 8000 }] as const) {
  test(`a layer download that stops moving (${mode}): cut by the stall deadline, PULL_FAILED, the old version keeps running; once the layer flows again, it converges`, async (t) => {
    const { dockerHost } = dockerTestEnv();
    const reg = await registry(t);
    // Each layer download stops after its first 64 KiB.
    const front = await startRegistryFront(reg.host, { blobStall: { afterBytes: 64 * 1024, mode } });
    t.after(() => front.close());
    const { h, oldId } = await withRunningV1(t, `regstall-${mode}`, { pullStallMs: stallMs });
    const tag = randomBytes(3).toString('hex');
    pushUniqueImage(dockerHost, `${reg.host}/faults/stall:${tag}`);
    const ref = `${front.host}/faults/stall:${tag}`;
    const began = Date.now();
    await h.apply(h.compose({ web: { image: ref, restart: 'always' } }), 'v2');
    await h.waitFor('the pull to fail', () => web(h)?.state === 'pull-failed', stallMs + 30_000);
    const failedAfter = Date.now() - began;
    const error = web(h)?.lastError;
    process.stdout.write(`failed ${failedAfter} ms after the apply (deadline ${stallMs} ms, ${front.blobsStalled} downloads stalled): ${error?.message ?? ''}\n`);
    assert.ok(failedAfter >= stallMs, 'not before the deadline');
    assert.ok(front.blobsStalled >= (mode === 'cut' ? 2 : 1), 'the layer download was the one stalled (and, cut, tried again by the engine)');
    assert.equal(error?.code, 'PULL_FAILED', JSON.stringify(web(h)));
    assert.match(error?.message ?? '', new RegExp(`no progress for ${stallMs / 1000} s`), 'the error says why');
    // Cut, the engine was counting down to its next attempt at the layer when the deadline came.
    if (mode === 'cut') assert.match(error?.message ?? '', /last: \w+: Retrying in \d+ seconds?\)/);
    await assertOldKept(h, oldId);
    await assertRetriedAndRefused(h, ref, 'PULL_FAILED', oldId, mode === 'cut' ? 2 : 3, 3 * stallMs + 20_000);
    assert.equal(await h.docker.getImage(ref).inspect().then(() => true, () => false), false, 'nothing of the stalled download was kept as an image');
    const flowing = Date.now();
    front.stallBlobs(null);
    // The next retry is up to 2 s away (the harness's back-off cap) and the engine may still count down its own.
    await waitRunning(h, ref, 45_000);
    process.stdout.write(`converged ${Date.now() - flowing} ms after the layer flowed again\n`);
  });
}
