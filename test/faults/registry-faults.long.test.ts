import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { dockerTestEnv, supervisorHarness, type SupervisorHarness } from '../support/supervisor-harness.js';
import { pushUniqueImage, startPrivateRegistry, type PrivateRegistry } from '../support/private-registry.js';

// Scenario 8, against the real engine and a registry of this test's own (stopped and damaged
// here, never the shared one): the registry down, a corrupted layer, a digest-pinned image whose
// content changed. Each time the old version keeps running, alone, the pull fails with
// PULL_FAILED, and nothing unverified ever runs.

async function withRunningV1(t: Parameters<typeof supervisorHarness>[0], name: string): Promise<{ h: SupervisorHarness; oldId: string }> {
  const h = await supervisorHarness(t, name);
  await h.settle(h.compose({ web: { image: h.images.busybox1, restart: 'always' } }), 'v1');
  return { h, oldId: (await h.only('web')).Id };
}

async function assertOldKept(h: SupervisorHarness, oldId: string): Promise<void> {
  const all = (await h.containers()).get('web') ?? [];
  assert.deepEqual(all.map((c) => [c.Id, c.State.Running]), [[oldId, true]], 'the old container, alone, still running');
}

function registry(t: Parameters<typeof supervisorHarness>[0]): Promise<PrivateRegistry> {
  return startPrivateRegistry().then((r) => { t.after(() => r.close()); return r; });
}

test('registry down when the pull starts: the old version keeps running; it converges once the registry is back', async (t) => {
  const { dockerHost } = dockerTestEnv();
  const reg = await registry(t);
  const { h, oldId } = await withRunningV1(t, 'regdown');
  const ref = `${reg.host}/faults/down:${randomBytes(3).toString('hex')}`;
  pushUniqueImage(dockerHost, ref);
  await reg.stop();
  const failed = await h.settle(h.compose({ web: { image: ref, restart: 'always' } }), 'v2');
  const web = failed.services.find((s) => s.name === 'web');
  assert.deepEqual([web?.state, web?.lastError?.code], ['pull-failed', 'PULL_FAILED'], JSON.stringify(web));
  await assertOldKept(h, oldId);
  const back = Date.now();
  await reg.start();
  // Pull retries back off up to 2 s in the harness (30 s in production): bounded by that.
  await h.waitFor('v2 running', async () => ((await h.containers()).get('web') ?? []).some((c) => c.State.Running && c.Config.Image === ref), 20_000);
  await h.waitFor('one web container', async () => ((await h.containers()).get('web') ?? []).length === 1, 10_000);
  process.stdout.write(`converged ${Date.now() - back} ms after the registry came back\n`);
});

test('a corrupted layer in the registry: the engine refuses it, the old version keeps running; repaired, it converges', async (t) => {
  const { dockerHost } = dockerTestEnv();
  const reg = await registry(t);
  const { h, oldId } = await withRunningV1(t, 'regblob');
  const repo = 'faults/blob';
  const tag = randomBytes(3).toString('hex');
  const ref = `${reg.host}/${repo}:${tag}`;
  pushUniqueImage(dockerHost, ref);
  const layer = reg.blobPath((await reg.manifest(repo, tag)).layers[0]!.digest);
  const good = readFileSync(layer);
  writeFileSync(layer, randomBytes(statSync(layer).size)); // same size: only the digest can tell
  await h.supervisor.apply(h.compose({ web: { image: ref, restart: 'always' } }), 'v2');
  // The engine itself retries a layer that fails verification (5 attempts, growing delays)
  // before the pull fails: up to about a minute.
  await h.waitFor('the pull to fail', () => h.supervisor.state().services.find((s) => s.name === 'web')?.state === 'pull-failed', 120_000);
  const web = h.supervisor.state().services.find((s) => s.name === 'web');
  assert.equal(web?.lastError?.code, 'PULL_FAILED', JSON.stringify(web));
  assert.match(web?.lastError?.message ?? '', /verif|digest|checksum/i, 'the error says why');
  await assertOldKept(h, oldId);
  assert.equal(await h.docker.getImage(ref).inspect().then(() => true, () => false), false, 'nothing of the bad layer was kept as an image');
  writeFileSync(layer, good);
  await h.waitFor('v2 running', async () => ((await h.containers()).get('web') ?? []).some((c) => c.State.Running && c.Config.Image === ref), 120_000);
});

test('an image pinned by digest whose content changed in the registry: refused, never run', async (t) => {
  const { dockerHost } = dockerTestEnv();
  const reg = await registry(t);
  const { h, oldId } = await withRunningV1(t, 'regpin');
  const pinnedRef = `${reg.host}/faults/pinned:a`;
  const digest = pushUniqueImage(dockerHost, pinnedRef);
  const other = `${reg.host}/faults/pinned:b`;
  pushUniqueImage(dockerHost, other);
  // The registry now serves another image's manifest under the pinned digest.
  writeFileSync(reg.blobPath(digest), readFileSync(reg.blobPath((await reg.manifest('faults/pinned', 'b')).digest)));
  const ref = `${reg.host}/faults/pinned@${digest}`;
  const failed = await h.settle(h.compose({ web: { image: ref, restart: 'always' } }), 'v2');
  const web = failed.services.find((s) => s.name === 'web');
  assert.deepEqual([web?.state, web?.lastError?.code], ['pull-failed', 'PULL_FAILED'], JSON.stringify(web));
  await assertOldKept(h, oldId);
  // Still refused at the retries (the harness retries pulls within 2 s).
  await new Promise((r) => setTimeout(r, 3000));
  await assertOldKept(h, oldId);
  assert.ok(h.events.some((e) => e.type === 'pull-failed'), 'reported as a pull failure');
});
