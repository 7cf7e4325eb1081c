import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { supervisorHarness } from '../support/supervisor-harness.js';

test('engine settings reach the container, and a named volume keeps its data across a recreate', async (t) => {
  const h = await supervisorHarness(t, 'settings');
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-bind-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'in.txt'), 'from the host\n');
  t.after(async () => {
    const { Volumes } = await h.docker.listVolumes({ filters: { label: [`${LABELS.scope}=${h.scope}`] } });
    for (const v of Volumes ?? []) await h.docker.getVolume(v.Name).remove().catch(() => undefined);
  });

  // The service appends a line to the volume at every start and copies the bind-mounted file out.
  const service = (generation: string): Record<string, unknown> => ({
    image: h.images.busybox1,
    restart: 'always',
    network_mode: 'host',
    command: ['sh', '-c', 'trap "exit 0" TERM; echo "$GEN" >> /data/starts; cp /in/in.txt /in/out.txt; sleep 1000000 & wait'],
    environment: { GEN: generation },
    volumes: ['store:/data', `${dir}:/in`],
    devices: ['/dev/null:/dev/extra-null:rw'],
    mem_limit: '32m',
    deploy: { resources: { limits: { cpus: '0.5', pids: 64 } } },
    logging: { driver: 'json-file', options: { 'max-size': '1m', 'max-file': '2' } },
    healthcheck: { test: ['CMD', 'true'], interval: '500ms' },
    stop_grace_period: '2s',
  });
  const doc = (generation: string): object => ({ name: 'proj', volumes: { store: {} }, ...h.compose({ app: service(generation) }) });

  await h.settle(doc('one'), 'v1');
  const first = await h.only('app');
  assert.equal(first.HostConfig.NetworkMode, 'host');
  assert.equal(first.HostConfig.Memory, 32 * 1024 * 1024);
  assert.equal(first.HostConfig.NanoCpus, 500_000_000);
  assert.equal(first.HostConfig.PidsLimit, 64);
  assert.deepEqual(first.HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '2' } });
  assert.deepEqual(first.HostConfig.Devices, [{ PathOnHost: '/dev/null', PathInContainer: '/dev/extra-null', CgroupPermissions: 'rw' }]);
  assert.equal((first.Config as { StopTimeout?: number }).StopTimeout, 2); // missing from @types/dockerode
  assert.ok(first.Config.Env.includes('GEN=one'), "first.Config.Env.includes('GEN=one')");
  const volume = first.Mounts.find((m) => m.Destination === '/data');
  assert.equal(volume?.Name, 'proj_store', 'named volumes carry the project prefix');
  await h.waitFor('the bind mount to be written through', () => {
    try { return readFileSync(join(dir, 'out.txt'), 'utf8') === 'from the host\n'; } catch { return false; }
  });

  await h.settle(doc('two'), 'v2');
  const second = await h.only('app');
  assert.notEqual(second.Id, first.Id);
  // The volume outlived the first container: read it through a throw-away container.
  const reader = await h.docker.createContainer({
    Image: h.images.local, Cmd: ['cat', '/data/starts'], Labels: { 'tsunagu.test': h.scope },
    HostConfig: { NetworkMode: 'none', Mounts: [{ Type: 'volume', Source: 'proj_store', Target: '/data' }] },
  });
  await reader.start();
  await reader.wait();
  assert.match(await h.logs(reader.id), /^one\ntwo\n$/);
});
