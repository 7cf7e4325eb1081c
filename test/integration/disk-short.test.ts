import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { admit } from '../../agent/admission/admission.js';
import { AgentConfigSchema, type DiskConfig } from '../../agent/config.js';
import { usedPercent } from '../../agent/images/disk-fit.js';
import { DockerImages } from '../../agent/images/docker-images.js';
import { ImageHousekeeping } from '../../agent/images/image-housekeeping.js';
import { parseDesiredState } from '../../agent/supervisor/compose-schema.js';
import { DockerRuntime } from '../../agent/supervisor/docker-runtime.js';
import { Supervisor, type SupervisorEvent, type SupervisorState } from '../../agent/supervisor/supervisor.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { busyboxRootfs, pushImage, randomLayer, type WrittenImage } from '../support/image-writer.js';
import { startSmallDiskEngine, type SmallDiskEngine } from '../support/small-disk-engine.js';
import { dockerTestEnv, TEST_LABEL } from '../support/supervisor-harness.js';

// The disk rules against a real engine whose data root is a small ext4
// filesystem made for this file: garbage collection down to the low
// watermark, admission refusing what cannot fit, an update switched to
// kill-then-download on a short disk, a pull refused when even that cannot
// fit, and a pull that meets a full disk anyway, then recovers.

const MiB = 1024 * 1024;
const env = dockerTestEnv();
const repo = `tsunagu-test-disk/short-${randomBytes(3).toString('hex')}`;
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
let engine: SmallDiskEngine;
let work: string;

function diskConfig(overrides: Partial<DiskConfig>): DiskConfig {
  return { ...AgentConfigSchema.parse({}).disk, ...overrides };
}

function housekeeping(disk: DiskConfig, events: unknown[], stateDir = mkdtempSync(join(work, 'state-'))): ImageHousekeeping {
  return new ImageHousekeeping({
    disk, stateDir, engine: new DockerImages({ socketPath: engine.socket }), deviceLabels: new Set(),
    auth: () => undefined, emit: (e) => { events.push(e); }, log: quiet,
  });
}

async function present(ref: string): Promise<boolean> {
  return engine.docker.getImage(ref).inspect().then(() => true, () => false);
}

async function available(): Promise<number> {
  return (await housekeeping(diskConfig({}), []).gauge.read()).availableBytes;
}

/** Take the engine's disk down to `bytes` available, with a file beside its data. */
function fillTo(bytes: number, current: number): void {
  const path = join(engine.dataRoot, 'filler');
  rmSync(path, { force: true });
  const size = current - bytes;
  if (size <= 0) return;
  const r = spawnSync('fallocate', ['-l', String(size), path], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

function unfill(): void {
  rmSync(join(engine.dataRoot, 'filler'), { force: true });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, detail: () => unknown = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${JSON.stringify(detail())}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A supervisor on the small engine with the agent's disk rules wired as agent.ts wires them. */
function supervised(disk: DiskConfig, guarded = true): { supervisor: Supervisor; hk: ImageHousekeeping; events: (SupervisorEvent | Record<string, unknown>)[]; states: SupervisorState[]; scope: string } {
  const events: (SupervisorEvent | Record<string, unknown>)[] = [];
  const states: SupervisorState[] = [];
  const hk = housekeeping(disk, events);
  const scope = `t-disk-${randomBytes(3).toString('hex')}`;
  const supervisor = new Supervisor({
    runtime: new DockerRuntime({ socketPath: engine.socket }), scope,
    pullBackoff: { initialDelayMs: 500, maxDelayMs: 2000, resetAfterMs: 0 },
    containerLogs: disk.containerLogs,
    ...(guarded ? { pullGuard: hk.pullGuard } : {}),
    onEvent: (e) => { events.push(e); hk.onSupervisorEvent(e); },
    onState: (s) => { states.push(s); hk.onSupervisorState(s); },
  });
  hk.attach(supervisor);
  supervisor.start();
  return { supervisor, hk, events, states, scope };
}

function app(image: string): object {
  return { services: { app: { image, network_mode: 'none', restart: 'always', labels: { [TEST_LABEL]: 'disk-short' } } } };
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'tsunagu-disk-short-'));
  engine = await startSmallDiskEngine(384);
});

after(async () => {
  await engine?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('image garbage collection', () => {
  test('above the high watermark, unused images the agent pulled go, least recently used first, down to the low watermark', async () => {
    const base = busyboxRootfs();
    const images: WrittenImage[] = [];
    for (const n of [1, 2, 3, 4, 5, 6]) images.push(await pushImage(env.registry, repo, `gc${n}`, [base, randomLayer(20 * MiB)]));
    const [g1, g2, g3, g4, g5] = images as [WrittenImage, WrittenImage, WrittenImage, WrittenImage, WrittenImage];
    const runtime = new DockerRuntime({ socketPath: engine.socket });
    for (const i of images) await runtime.pullImage(i.ref, {});
    // g1 has a container (not even running); g2 is the desired state's; foreign was pulled by someone else.
    await engine.docker.createContainer({ Image: g1.ref, Labels: { [TEST_LABEL]: 'disk-short' }, HostConfig: { NetworkMode: 'none' } });

    const stateDir = mkdtempSync(join(work, 'state-'));
    const recorder = housekeeping(diskConfig({}), [], stateDir);
    const hour = 3600_000;
    for (const [n, i] of [g1, g2, g3, g4, g5].entries()) {
      const id = await recorder.engine.imageId(i.ref);
      assert.ok(id);
      recorder.records.notePulled(i.ref, id, 1_000_000);
      recorder.records.noteUsed(id, 1_000_000 + (n + 1) * 2 * hour);
    }
    recorder.records.save();

    const disk = await recorder.gauge.read();
    const used = usedPercent(disk);
    const onePercent = (20 * MiB / (disk.usedBytes + disk.availableBytes)) * 100;
    // Two images must go to reach the low watermark: g3 and g4 (g1 is in use, g2 protected, foreign not ours); g5, used last, stays.
    const watermarks = { highWatermarkPercent: used - 1, lowWatermarkPercent: used - 1.5 * onePercent };
    const events: Record<string, unknown>[] = [];
    const hk = housekeeping(diskConfig({ gc: watermarks }), events, stateDir);
    hk.attach({ desiredImages: () => [g2.ref], state: () => ({ version: null, status: 'applying', services: [], error: null }) });

    const summary = await hk.collector.collect('test');
    assert.ok(summary);
    assert.equal(summary.removed, 2, JSON.stringify(summary));
    assert.ok(summary.usedPercentAfter <= watermarks.lowWatermarkPercent, JSON.stringify({ summary, watermarks }));
    assert.deepEqual(events.filter((e) => e.type === 'image-removed').map((e) => e.image), [g3.ref, g4.ref]);
    assert.deepEqual(events.filter((e) => e.type === 'gc').map((e) => [e.removed, e.trigger]), [[2, 'test']]);
    assert.deepEqual(await Promise.all(images.map((i) => present(i.ref))), [true, true, false, false, true, true]);
    const file = JSON.parse(readFileSync(join(stateDir, 'images.json'), 'utf8')) as { images: { ref: string }[] };
    assert.deepEqual(file.images.map((r) => r.ref).sort(), [g1.ref, g2.ref, g5.ref].sort());
    assert.deepEqual(hk.report().lastGc && [hk.report().lastGc?.removed, hk.report().lastGc?.short], [2, false]);
    // Below the high watermark now: nothing more goes.
    assert.equal(await hk.collector.collect('test'), null);
  });
});

describe('admission on a short disk', () => {
  test('images that cannot fit above the reserve are refused with the sizes named; what fits passes; images on the engine need nothing', async () => {
    const base = busyboxRootfs();
    const big = await pushImage(env.registry, repo, 'big', [base, randomLayer(40 * MiB)]);
    const small = await pushImage(env.registry, repo, 'small', [base, randomLayer(2 * MiB)]);
    const room = 15 * MiB;
    const disk = diskConfig({ reserveBytes: (await available()) - room, unpackFactor: 1 });
    const hk = housekeeping(disk, []);
    await assert.rejects(admit(parseDesiredState({ services: { web: { image: big.ref }, cache: { image: small.ref } } }), hk.admission, { firstTime: true }), (e) => {
      assert.ok(isTsunaguError(e, 'ADMISSION_REFUSED'));
      const services = e.details?.services as Record<string, string>;
      assert.deepEqual(Object.keys(services).sort(), ['cache', 'web']);
      assert.match(services.web ?? '', new RegExp(`^image ${big.ref} needs about 40\\.\\d MiB of disk; all pulls of this desired state need about 42\\.\\d MiB, at most 1[45]\\.\\d MiB can be free on ${engine.dataRoot} above the reserve`));
      return true;
    });
    await admit(parseDesiredState({ services: { cache: { image: small.ref } } }), hk.admission, { firstTime: true });
    const runtime = new DockerRuntime({ socketPath: engine.socket });
    await runtime.pullImage(big.ref, {}); // (the reserve is only the agent's rule: the engine itself still has room)
    await admit(parseDesiredState({ services: { web: { image: big.ref } } }), hk.admission, { firstTime: true });
    await engine.docker.getImage(big.ref).remove();
  });
});

describe('updates on a short disk', () => {
  let k2: WrittenImage;

  test('when the new image fits only without the old one, the update switches to kill-then-download, says so, and completes', async (t) => {
    const base = busyboxRootfs();
    const k1 = await pushImage(env.registry, repo, 'k1', [base, randomLayer(40 * MiB)]);
    k2 = await pushImage(env.registry, repo, 'k2', [base, randomLayer(40 * MiB)]);
    const reserve = 10 * MiB;
    const s = supervised(diskConfig({ reserveBytes: reserve, unpackFactor: 1.2 }));
    t.after(() => s.supervisor.stop());
    t.after(() => unfill());
    await s.supervisor.apply(app(k1.ref), '1');
    await s.supervisor.idle();
    await waitFor('v1 synced', () => s.supervisor.state().status === 'synced');
    const oldContainer = s.supervisor.state().services[0]?.containerId;
    assert.ok(oldContainer);

    // 30 MiB above the reserve: k2 needs about 48 MiB (40 MiB × 1.2); removing k1 frees 40 MiB more.
    fillTo(reserve + 30 * MiB, await available());
    await s.supervisor.apply(app(k2.ref), '2');
    await s.supervisor.idle();
    await waitFor('v2 synced', () => s.supervisor.state().status === 'synced');

    const switched = s.events.find((e): e is Extract<SupervisorEvent, { type: 'update-switched' }> => e.type === 'update-switched');
    assert.ok(switched, JSON.stringify(s.events.map((e) => e.type)));
    assert.deepEqual([switched.service, switched.image, switched.strategy], ['app', k2.ref, 'kill-then-download']);
    assert.match(switched.reason, /needs about 48\.\d MiB, .* removing the old version first frees about 40\.\d MiB: switching to kill-then-download/);
    assert.ok(s.states.some((st) => st.services[0]?.updateSwitch?.strategy === 'kill-then-download'), 'the switch was visible in the reported state');
    const removed: Record<string, unknown> | undefined = s.events.find((e) => e.type === 'image-removed');
    assert.deepEqual(removed && [removed.image, removed.trigger], [k1.ref, 'kill-then-download']);
    const order = s.events.map((e) => e.type);
    assert.ok(order.indexOf('update-switched') < order.indexOf('image-removed') && order.indexOf('image-removed') < order.lastIndexOf('pulled'), order.join(' '));
    const now = s.supervisor.state().services[0];
    assert.ok(now);
    assert.deepEqual([now.image, now.state, now.updateSwitch], [k2.ref, 'running', null]);
    assert.notEqual(now.containerId, oldContainer);
    assert.equal(await present(k1.ref), false, 'the old image made room');
  });

  test('when even that cannot fit, the pull is refused with NO_SPACE and the running version stays', async (t) => {
    const old = await pushImage(env.registry, repo, 'k2b', [busyboxRootfs(), randomLayer(40 * MiB)]);
    const k3 = await pushImage(env.registry, repo, 'k3', [busyboxRootfs(), randomLayer(120 * MiB)]);
    const reserve = 10 * MiB;
    const s = supervised(diskConfig({ reserveBytes: reserve, unpackFactor: 1.2 }));
    t.after(() => s.supervisor.stop());
    t.after(() => unfill());
    await s.supervisor.apply(app(old.ref), '1');
    await s.supervisor.idle();
    await waitFor('v1 synced', () => s.supervisor.state().status === 'synced');
    const running = s.supervisor.state().services[0]?.containerId;
    fillTo(reserve + 30 * MiB, await available());

    await s.supervisor.apply(app(k3.ref), '2');
    await s.supervisor.idle();
    const r = s.supervisor.state().services[0];
    assert.ok(r);
    assert.deepEqual([r.state, r.lastError?.code, r.containerId, r.outdated], ['pull-failed', 'NO_SPACE', running, true], JSON.stringify(r));
    assert.match(r.lastError?.message ?? '', /needs about 144\.\d MiB, at most \d+\.\d MiB can be free above the reserve even without the old version/);
    assert.equal(s.events.some((e) => e.type === 'update-switched'), false);
    const failed = s.events.find((e): e is Extract<SupervisorEvent, { type: 'pull-failed' }> => e.type === 'pull-failed');
    assert.equal(failed?.code, 'NO_SPACE');
    assert.equal((await engine.docker.getContainer(running ?? '').inspect()).State.Running, true);
  });

  test('a pull that fills the disk anyway fails with NO_SPACE, keeps the old version, and completes by itself once space returns', async (t) => {
    // The engine holds the download beside the unpacked layer: 40 MiB needs about 80 MiB while it is pulled.
    const big = await pushImage(env.registry, repo, 'k4', [busyboxRootfs(), randomLayer(40 * MiB)]);
    // No guard: the engine meets the full disk itself.
    const s = supervised(diskConfig({}), false);
    t.after(() => s.supervisor.stop());
    t.after(() => unfill());
    await s.supervisor.apply(app(k2.ref), '1');
    await s.supervisor.idle();
    await waitFor('v1 synced', () => s.supervisor.state().status === 'synced');
    const running = s.supervisor.state().services[0]?.containerId;
    fillTo(20 * MiB, await available());

    await s.supervisor.apply(app(big.ref), '2');
    await waitFor('the pull to fail', () => s.events.some((e) => e.type === 'pull-failed'));
    const failed = s.events.find((e) => e.type === 'pull-failed') as Extract<SupervisorEvent, { type: 'pull-failed' }>;
    assert.equal(failed.code, 'NO_SPACE', failed.error);
    assert.match(failed.error, /no space left on device.*the engine's disk is full/);
    assert.equal((await engine.docker.getContainer(running ?? '').inspect()).State.Running, true, 'the old version runs on');

    unfill();
    await waitFor('the update to complete by itself', () => {
      const r = s.supervisor.state().services[0];
      return r?.image === big.ref && r.state === 'running';
    }, 60_000, () => s.supervisor.state().services);
  });
});
