import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { PullProgress } from '../../agent/supervisor/container-runtime.js';
import { LABELS, ownershipLabels } from '../../agent/supervisor/container-labels.js';
import { begin, type Case, CONTRACT_LABEL, live, recordEvents, rejectsWith, type RuntimeWorld } from './runtime-world.js';

export { CONTRACT_LABEL, type RuntimeWorld } from './runtime-world.js';

// Every assert.ok here carries a message: without one, node:assert re-reads the failing line from the
// source to describe it, which on a file run through tsx can spin for minutes instead of failing
// (nodejs/node#52677); the file then times out with no word of which assertion failed.

/**
 * What every ContainerRuntime promises the supervisor (supervisor.ts,
 * executor.ts, engine-events.ts), run against one adapter. `setUp` is called
 * per test; each test works in a scope of its own and cleans it up.
 */
export function containerRuntimeContract(name: string, setUp: () => Promise<RuntimeWorld>): void {
  const contract = (what: string, body: (c: Case, t: TestContext) => Promise<void>): void => {
    // A bound per test: an engine call that hangs names its test instead of timing out the file.
    test(`${name}: ${what}`, { timeout: 90_000 }, async (t) => body(await begin(t, setUp), t));
  };

  contract('a created container is listed by its ownership labels, with what its labels say; others are never seen', async (c) => {
    const owned = await c.create('web', { image: c.world.images.idle });
    const otherScope = await c.runtime.createContainer(`${c.scope}-other`, { ...c.spec('web', { image: c.world.images.idle }), Labels: { [CONTRACT_LABEL]: c.scope, ...ownershipLabels(`${c.scope}-x`), [LABELS.service]: 'web' } });
    const unowned = await c.runtime.createContainer(`${c.scope}-unowned`, { Image: c.world.images.idle, Labels: { [CONTRACT_LABEL]: c.scope, [LABELS.scope]: c.scope, [LABELS.service]: 'web' }, HostConfig: { NetworkMode: 'none' } });

    const listed = await c.runtime.listOwnedContainers(c.scope);
    assert.deepEqual(listed.map((x) => x.id), [owned]);
    const web = listed[0];
    assert.deepEqual(web && {
      name: web.name, service: web.service, configHash: web.configHash, version: web.version, dependsOn: web.dependsOn, image: web.image,
      status: web.status, health: web.health, exitCode: web.exitCode, startedAt: web.startedAt, finishedAt: web.finishedAt,
    }, {
      name: `${c.scope}-web`, service: 'web', configHash: 'hash-web', version: 'v1', dependsOn: [], image: c.world.images.idle,
      status: 'created', health: 'none', exitCode: null, startedAt: null, finishedAt: null,
    });
    assert.match(web?.imageId ?? '', /^sha256:/);
    assert.deepEqual(await c.runtime.inspectContainer(owned, c.scope), web);
    assert.deepEqual(await c.runtime.inspectContainer(`${c.scope}-web`, c.scope), web, 'by name too');
    assert.equal(await c.runtime.inspectContainer(otherScope, c.scope), undefined, 'another scope: not ours');
    assert.equal(await c.runtime.inspectContainer(unowned, c.scope), undefined, 'no managed label: not ours');
  });

  contract('depends-on is read back from the label, in the order written', async (c) => {
    const spec = c.spec('app', { image: c.world.images.idle });
    const id = await c.runtime.createContainer(`${c.scope}-app`, { ...spec, Labels: { ...spec.Labels, [LABELS.dependsOn]: 'db,cache' } });
    assert.deepEqual((await c.runtime.inspectContainer(id, c.scope))?.dependsOn, ['db', 'cache']);
  });

  contract('a missing container: inspect answers undefined; stop and remove succeed; start fails with RUNTIME_FAILED', async (c) => {
    const gone = await c.create('gone', { image: c.world.images.idle });
    await c.runtime.removeContainer(gone);
    assert.equal(await c.runtime.inspectContainer(gone, c.scope), undefined);
    assert.equal(await c.runtime.inspectContainer(`${c.scope}-never-was`, c.scope), undefined);
    await c.runtime.stopContainer(gone, 1000);
    await c.runtime.removeContainer(gone);
    await assert.rejects(c.runtime.startContainer(gone), rejectsWith('RUNTIME_FAILED'));
    assert.deepEqual(await c.runtime.listOwnedContainers(c.scope), []);
  });

  contract('create never pulls: an image the engine lacks fails with RUNTIME_FAILED; a name in use fails too', async (c) => {
    await c.world.forgetImage(c.world.images.crash);
    await assert.rejects(c.create('nopull', { image: c.world.images.crash }), rejectsWith('RUNTIME_FAILED'));
    assert.equal(await c.runtime.inspectImage(c.world.images.crash), undefined, 'the create did not pull');
    await c.create('twice', { image: c.world.images.idle });
    await assert.rejects(c.create('twice', { image: c.world.images.idle }), rejectsWith('RUNTIME_FAILED'));
  });

  contract('start runs the command with the environment; the exit code and times are read back; a second start of a running container succeeds', async (c) => {
    const exits = await c.create('exits', { image: c.world.images.idle, command: ['sh', '-c', 'exit $CODE'], environment: { CODE: '7' } });
    await c.runtime.startContainer(exits);
    const done = await c.until('the container to exit', exits, (x) => x.status === 'exited');
    assert.equal(done.exitCode, 7);
    // Both times, not their order: for a process that ends at once the engine may stamp its exit before its start.
    assert.ok(done.startedAt !== null && done.finishedAt !== null, `started ${String(done.startedAt)}, finished ${String(done.finishedAt)}`);

    const idle = await c.create('idle', { image: c.world.images.idle });
    await c.runtime.startContainer(`${c.scope}-idle`);
    const running = await c.until('the container to run', idle, (x) => x.status === 'running');
    assert.equal(running.exitCode, null);
    await c.runtime.startContainer(idle);
    assert.equal((await c.runtime.inspectContainer(idle, c.scope))?.startedAt, running.startedAt, 'not started again');
  });

  contract('the engine never restarts a container by itself, whatever the compose restart, and keeps the log caps asked for', async (c) => {
    const id = await c.create('always', {
      image: c.world.images.idle, restart: 'always', logging: { driver: 'local', options: { 'max-size': '1m', 'max-file': '2' } },
    });
    assert.deepEqual(await c.world.held(id), { restartPolicy: 'no', logConfig: { Type: 'local', Config: { 'max-size': '1m', 'max-file': '2' } } });
    const plain = await c.create('plain', { image: c.world.images.idle });
    assert.deepEqual((await c.world.held(plain)).logConfig, { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } });
  });

  contract('stop sends the stop signal the spec names, and waits for the container to end', async (c) => {
    const id = await c.create('trap', {
      image: c.world.images.idle, stop_signal: 'SIGUSR1', command: ['sh', '-c', 'trap "exit 42" USR1; touch /tmp/trapped; sleep 1000000 & wait'],
      healthcheck: { test: ['CMD', 'test', '-f', '/tmp/trapped'], interval: '500ms', retries: 1 },
    });
    await c.runtime.startContainer(id);
    // Healthy once the trap is set: PID 1 ignores a signal that arrives before it has a handler.
    await c.until('the trap to be set', id, (x) => x.health === 'healthy');
    await c.runtime.stopContainer(id, 30_000);
    const stopped = await c.runtime.inspectContainer(id, c.scope);
    assert.deepEqual(stopped && [stopped.status, stopped.exitCode], ['exited', 42]);
    await c.runtime.stopContainer(id, 1000);
  });

  contract('stop kills a container that ignores the signal once the timeout is over', async (c) => {
    // PID 1 ignores a signal it has no handler for: only the kill ends it.
    const id = await c.create('deaf', { image: c.world.images.idle, command: ['sleep', '1000000'], stop_grace_period: '1s' });
    await c.runtime.startContainer(id);
    await c.until('the container to run', id, (x) => x.status === 'running');
    await c.runtime.stopContainer(id, 1000);
    const stopped = await c.runtime.inspectContainer(id, c.scope);
    assert.deepEqual(stopped && [stopped.status, stopped.exitCode], ['exited', 137]);
  });

  contract('remove takes a running container away; named volumes stay for the next container', async (c) => {
    const running = await c.create('running', { image: c.world.images.idle });
    await c.runtime.startContainer(running);
    await c.until('the container to run', running, (x) => x.status === 'running');
    await c.runtime.removeContainer(running);
    assert.equal(await c.runtime.inspectContainer(running, c.scope), undefined);

    const writer = await c.create('writer', { image: c.world.images.idle, volumes: ['data:/data'], command: ['sh', '-c', 'echo kept > /data/file'] }, { volumes: ['data'] });
    await c.runtime.startContainer(writer);
    assert.equal((await c.until('the writer to exit', writer, (x) => x.status === 'exited')).exitCode, 0);
    await c.runtime.removeContainer(writer);
    const reader = await c.create('reader', { image: c.world.images.idle, volumes: ['data:/data:ro'], command: ['sh', '-c', 'grep -q kept /data/file'] }, { volumes: ['data'] });
    await c.runtime.startContainer(reader);
    assert.equal((await c.until('the reader to exit', reader, (x) => x.status === 'exited')).exitCode, 0);
  });

  contract('bind mounts, read-only ones too; network modes none and host', async (c) => {
    const dir = mkdtempSync(join(tmpdir(), 'tsunagu-contract-'));
    try {
      const none = await c.create('none', { image: c.world.images.idle, volumes: [`${dir}:/out`], command: ['sh', '-c', 'ls /sys/class/net > /out/none'] });
      const host = await c.create('host', { image: c.world.images.idle, network_mode: 'host', volumes: [`${dir}:/out`], command: ['sh', '-c', 'ls /sys/class/net > /out/host'] });
      const ro = await c.create('ro', { image: c.world.images.idle, volumes: [`${dir}:/out:ro`], command: ['sh', '-c', 'touch /out/ro'] });
      for (const id of [none, host, ro]) await c.runtime.startContainer(id);
      const exits = await Promise.all([none, host, ro].map((id) => c.until('the container to exit', id, (x) => x.status === 'exited')));
      assert.deepEqual(exits.map((x) => x.exitCode !== 0), [false, false, true], 'the read-only mount refused the write');
      const names = (file: string): string[] => readFileSync(join(dir, file), 'utf8').split(/\s+/).filter(Boolean).sort();
      assert.deepEqual(names('none'), ['lo']);
      assert.deepEqual(names('host'), readdirSync('/sys/class/net').sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  contract('resource limits and devices reach the container', async (c) => {
    const dir = mkdtempSync(join(tmpdir(), 'tsunagu-contract-'));
    try {
      // cgroup v2 first, v1 otherwise: the container sees its own group at the root either way.
      const read = (v2: string, v1: string): string => `$(cat /sys/fs/cgroup/${v2} 2>/dev/null || cat /sys/fs/cgroup/${v1})`;
      const script = [
        `echo ${read('memory.max', 'memory/memory.limit_in_bytes')} ${read('pids.max', 'pids/pids.max')} > /out/limits`,
        `echo ${read('cpu.max', 'cpu/cpu.cfs_quota_us')} >> /out/limits`,
        'test -c /dev/extra-null',
      ].join('; ');
      const id = await c.create('limits', {
        image: c.world.images.idle, volumes: [`${dir}:/out`], command: ['sh', '-c', script],
        mem_limit: '32m', deploy: { resources: { limits: { cpus: '0.5', pids: 64 } } }, devices: ['/dev/null:/dev/extra-null:rw'],
      });
      await c.runtime.startContainer(id);
      assert.equal((await c.until('the container to exit', id, (x) => x.status === 'exited')).exitCode, 0, 'the device is there');
      const [memory, pids, quota] = readFileSync(join(dir, 'limits'), 'utf8').split(/\s+/);
      assert.deepEqual([memory, pids, quota], [String(32 * 1024 * 1024), '64', '50000']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  contract('healthchecks: the spec\'s own, the image\'s, and NONE to turn the image\'s off; read back as the health', async (c) => {
    const own = await c.create('own', { image: c.world.images.idle, healthcheck: { test: ['CMD', 'true'], interval: '1s', retries: 1 } });
    const image = await c.create('image', { image: c.world.images.unhealthy });
    const off = await c.create('off', { image: c.world.images.unhealthy, healthcheck: { test: ['NONE'] } });
    for (const id of [own, image, off]) await c.runtime.startContainer(id);
    await c.until('the spec\'s healthcheck to pass', own, (x) => x.health === 'healthy');
    await c.until('the image\'s healthcheck to fail', image, (x) => x.health === 'unhealthy');
    const running = await c.until('the container without a healthcheck to run', off, (x) => x.status === 'running');
    assert.equal(running.health, 'none');
  });

  contract('events of the scope\'s owned containers: create, start, die with its exit code, health, destroy; nothing of others', async (c, t) => {
    const rec = recordEvents(c.runtime, c.scope, t);
    await live(c, rec);
    // The foreign containers go first: the engine sends events in order, so any of theirs would come before ours.
    const foreign = await c.runtime.createContainer(`${c.scope}-foreign`, { ...c.spec('web', { image: c.world.images.idle }), Labels: { [CONTRACT_LABEL]: c.scope, ...ownershipLabels(`${c.scope}-x`), [LABELS.service]: 'web' } });
    await c.runtime.startContainer(foreign);

    const crash = await c.create('crash', { image: c.world.images.crash });
    await c.runtime.startContainer(crash);
    const healthy = await c.create('healthy', { image: c.world.images.idle, healthcheck: { test: ['CMD', 'true'], interval: '1s', retries: 1 } });
    const sick = await c.create('sick', { image: c.world.images.unhealthy });
    await c.runtime.startContainer(healthy);
    await c.runtime.startContainer(sick);

    const started = await rec.next('start', (e) => e.action === 'start' && e.containerId === crash);
    assert.equal(started.service, 'crash');
    const died = await rec.next('die', (e) => e.action === 'die' && e.containerId === crash);
    assert.deepEqual([died.service, died.exitCode, died.health], ['crash', 3, null]);
    const good = await rec.next('health_status healthy', (e) => e.action === 'health_status' && e.containerId === healthy && e.health === 'healthy');
    assert.deepEqual([good.service, good.health], ['healthy', 'healthy']);
    const bad = await rec.next('health_status unhealthy', (e) => e.action === 'health_status' && e.containerId === sick && e.health === 'unhealthy');
    assert.equal(bad.service, 'sick');
    await c.runtime.removeContainer(crash);
    const destroyed = await rec.next('destroy', (e) => e.action === 'destroy' && e.containerId === crash);
    assert.equal(destroyed.service, 'crash');
    assert.deepEqual(rec.events.filter((e) => e.containerId === foreign), [], 'no events of another scope');
  });

  contract('the event stream resolves when its signal aborts, and when the engine goes away', async (c, t) => {
    const aborted = new AbortController();
    const watching = c.runtime.watchEvents(c.scope, () => undefined, aborted.signal);
    aborted.abort();
    await watching;

    const link = await c.world.severable();
    t.after(() => link.close());
    const rec = recordEvents(link.runtime, c.scope, t);
    await live(c, rec);
    await link.cut();
    assert.equal(await rec.ended, 'ended');
    await assert.rejects(link.runtime.listOwnedContainers(c.scope), rejectsWith('RUNTIME_UNAVAILABLE'));
  });

  contract('an engine that does not answer: RUNTIME_UNAVAILABLE from every call, the event stream included', async (c) => {
    const gone = c.world.unreachable();
    const signal = new AbortController().signal;
    await assert.rejects(gone.listOwnedContainers(c.scope), rejectsWith('RUNTIME_UNAVAILABLE'));
    await assert.rejects(gone.inspectContainer('x', c.scope), rejectsWith('RUNTIME_UNAVAILABLE'));
    await assert.rejects(gone.inspectImage(c.world.images.idle), rejectsWith('RUNTIME_UNAVAILABLE'));
    await assert.rejects(gone.pullImage(c.world.images.idle, {}), rejectsWith('RUNTIME_UNAVAILABLE'));
    await assert.rejects(gone.createContainer(`${c.scope}-x`, c.spec('x', { image: c.world.images.idle })), rejectsWith('RUNTIME_UNAVAILABLE'));
    await assert.rejects(gone.startContainer('x'), rejectsWith('RUNTIME_UNAVAILABLE'));
    await assert.rejects(gone.stopContainer('x', 1000), rejectsWith('RUNTIME_UNAVAILABLE'));
    await assert.rejects(gone.removeContainer('x'), rejectsWith('RUNTIME_UNAVAILABLE'));
    await assert.rejects(gone.watchEvents(c.scope, () => undefined, signal), rejectsWith('RUNTIME_UNAVAILABLE'));
  });

  contract('an aborted signal: CANCELLED, and an aborted pull never counts as done', async (c) => {
    const aborted = AbortSignal.abort();
    await assert.rejects(c.runtime.listOwnedContainers(c.scope, aborted), rejectsWith('CANCELLED'));
    await assert.rejects(c.runtime.createContainer(`${c.scope}-x`, c.spec('x', { image: c.world.images.idle }), aborted), rejectsWith('CANCELLED'));
    await c.world.forgetImage(c.world.images.crash);
    await assert.rejects(c.runtime.pullImage(c.world.images.crash, { signal: aborted }), rejectsWith('CANCELLED'));
    // Aborted once the engine answers: however far the engine got, the caller hears CANCELLED.
    const midway = new AbortController();
    await assert.rejects(c.runtime.pullImage(c.world.images.crash, { signal: midway.signal, onProgress: () => midway.abort() }), rejectsWith('CANCELLED'));
  });

  contract('a pull from the registry reports progress and leaves the image present, with the digest it was pulled by', async (c) => {
    const ref = c.world.images.idle;
    await c.world.forgetImage(ref);
    assert.equal(await c.runtime.inspectImage(ref), undefined);
    const progress: PullProgress[] = [];
    await c.runtime.pullImage(ref, { onProgress: (p) => progress.push(p) });
    assert.ok(progress.length > 0, 'progress was reported');
    for (const p of progress) {
      assert.equal(p.image, ref);
      assert.ok(p.currentBytes <= p.totalBytes || p.totalBytes === 0, JSON.stringify(p));
      assert.ok(p.progress === null || p.progress.current <= p.progress.total, JSON.stringify(p));
    }
    const held = await c.runtime.inspectImage(ref);
    const repo = ref.replace(/:[^/:]+$/, '');
    assert.ok(held !== undefined && held.digest !== null, 'present, with a digest');
    assert.ok(held.digest.startsWith(`${repo}@sha256:`), held.digest);
    assert.ok(held.repoDigests.includes(held.digest), held.repoDigests.join(', '));
    assert.match(held.id, /^sha256:/);
  });

  contract('a reference pinned by digest pulls and reads back with that digest', async (c) => {
    const ref = c.world.images.idle;
    await c.runtime.pullImage(ref, {});
    const byTag = await c.runtime.inspectImage(ref);
    assert.ok(byTag?.digest, 'pulled by tag, with a digest');
    const pinned = byTag.digest;
    await c.runtime.pullImage(pinned, {});
    const byDigest = await c.runtime.inspectImage(pinned);
    assert.equal(byDigest?.digest, pinned);
    assert.equal(byDigest.id, byTag.id);
  });

  contract('a tag or repository the registry lacks: PULL_FAILED, and no image', async (c) => {
    const { missing } = c.world.images;
    await assert.rejects(c.runtime.pullImage(missing, {}), rejectsWith('PULL_FAILED'));
    assert.equal(await c.runtime.inspectImage(missing), undefined);
    const noRepo = missing.replace(/\/[^/:]+:[^/:]+$/, '/no-such-repository:1');
    await assert.rejects(c.runtime.pullImage(noRepo, {}), rejectsWith('PULL_FAILED'));
  });
}
