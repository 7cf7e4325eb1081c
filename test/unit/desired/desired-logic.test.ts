import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ContainerUsage, readContainerCgroup } from '../../../agent/resources/container-usage.js';
import { deviceLabelSet } from '../../../agent/resources/device-labels.js';
import { lastBytes } from '../../../agent/commands/service-control.js';
import { reportedState } from '../../../agent/desired/state-report.js';
import { unsealDesired } from '../../../agent/desired/unseal.js';
import { registryAuthFor } from '../../../agent/images/registry-auth.js';
import { registryOf } from '../../../agent/images/image-reference.js';
import { demultiplex } from '../../../agent/supervisor/log-stream.js';
import type { SupervisorState } from '../../../agent/supervisor/supervisor.js';
import { toBase64 } from '../../../protocol/bytes.js';
import { ReportedStateSchema } from '../../../protocol/desired.js';
import { isTsunaguError } from '../../../protocol/errors.js';
import { generateKeyPairs } from '../../../protocol/keys.js';
import { seal } from '../../../protocol/seal.js';

const device = generateKeyPairs();
const sealFor = (text: string, key = device.boxPublicKey): string => toBase64(seal(Buffer.from(text), key));

describe('unsealDesired', () => {
  test('sealed variables join the service environment, in map and list form; registries open apart', () => {
    const out = unsealDesired({
      version: 1,
      compose: { services: { a: { image: 'x', environment: { MODE: '1' } }, b: { image: 'y', environment: ['X=1=2'] } } },
      sealed: {
        environment: { a: { TOKEN: sealFor('t0ken') }, b: { PW: sealFor('pw') } },
        registries: sealFor(JSON.stringify({ 'reg.example:5000': { username: 'u', password: 'p' } })),
      },
    }, device.boxSecretKey);
    const services = out.compose.services as Record<string, { environment: Record<string, string> }>;
    assert.deepEqual(services.a?.environment, { MODE: '1', TOKEN: 't0ken' });
    assert.deepEqual(services.b?.environment, { X: '1=2', PW: 'pw' });
    assert.deepEqual(registryAuthFor(out.registries, 'reg.example:5000/app:1'), { username: 'u', password: 'p', serveraddress: 'reg.example:5000' });
    assert.equal(registryAuthFor(out.registries, 'library/app:1'), undefined);
  });

  test('the input document is not modified', () => {
    const compose = { services: { a: { image: 'x' } } };
    unsealDesired({ version: 1, compose, sealed: { environment: { a: { K: sealFor('v') } } } }, device.boxSecretKey);
    assert.deepEqual(compose, { services: { a: { image: 'x' } } });
  });

  test('refusals name the field, never the value', () => {
    const other = generateKeyPairs();
    const code = (f: () => unknown, c: string, field: string): void => {
      assert.throws(f, (e: unknown) => isTsunaguError(e) && e.code === c && e.details?.field === field && !e.message.includes('s3cret'));
    };
    code(() => unsealDesired({ version: 1, compose: { services: { a: { image: 'x' } } }, sealed: { environment: { a: { K: sealFor('s3cret', other.boxPublicKey) } } } }, device.boxSecretKey), 'SEAL_OPEN_FAILED', 'sealed.environment.a.K');
    code(() => unsealDesired({ version: 1, compose: { services: { a: { image: 'x' } } }, sealed: { environment: { b: { K: sealFor('s3cret') } } } }, device.boxSecretKey), 'SCHEMA', 'sealed.environment.b');
    code(() => unsealDesired({ version: 1, compose: { services: { a: { image: 'x', environment: { K: 'clear' } } } }, sealed: { environment: { a: { K: sealFor('s3cret') } } } }, device.boxSecretKey), 'SCHEMA', 'sealed.environment.a.K');
  });

  test('registryOf follows Docker\'s rule', () => {
    assert.equal(registryOf('busybox'), 'docker.io');
    assert.equal(registryOf('library/busybox:1'), 'docker.io');
    assert.equal(registryOf('127.0.0.1:5000/a/b:1'), '127.0.0.1:5000');
    assert.equal(registryOf('localhost/a'), 'localhost');
    assert.equal(registryOf('ghcr.io/a/b'), 'ghcr.io');
  });
});

describe('reportedState', () => {
  const sup: SupervisorState = {
    version: '2', status: 'synced', error: null,
    services: [{ name: 'web', image: 'img', imageDigest: null, containerId: 'c1', outdated: false, state: 'running', health: 'none', restartCount: 0, lastExitCode: null, retryAt: null, lastError: null, updateSwitch: null }],
  };

  test('a plain snapshot validates against the wire schema', () => {
    const s = reportedState({ supervisor: sup, acceptedVersion: 2, appliedVersion: 2, refusal: undefined, missingLabels: {}, at: 5 });
    ReportedStateSchema.parse(s);
    assert.equal(s.status, 'synced');
    assert.equal(s.error, null);
  });

  test('a refusal reports the refused version and keeps the applied one, with reasons per service', () => {
    const s = reportedState({ supervisor: sup, acceptedVersion: 2, appliedVersion: 2, refusal: { version: 3, code: 'UNSUPPORTED', message: 'services.web.build: no', services: { web: 'services.web.build: no' } }, missingLabels: {}, at: 5 });
    ReportedStateSchema.parse(s);
    assert.deepEqual([s.status, s.desiredVersion, s.appliedVersion, s.error?.code, s.error?.services?.web], ['refused', 3, 2, 'UNSUPPORTED', 'services.web.build: no']);
  });

  test('the disk rules and a switched update are reported, and validate against the wire schema', () => {
    const disk = {
      reserveBytes: 1024, unpackFactor: 2.5, gc: { highWatermarkPercent: 85, lowWatermarkPercent: 70 }, containerLogs: { maxSize: '10m', maxFiles: 3 },
      lastGc: { at: 4, trigger: 'pull', usedPercentBefore: 90, usedPercentAfter: 69.5, removed: 2, freedBytes: 3000, short: false },
    };
    const switched = { ...sup, status: 'applying' as const, services: sup.services.map((x) => ({ ...x, updateSwitch: { strategy: 'kill-then-download' as const, reason: 'needs about 1.0 GiB' } })) };
    const s = ReportedStateSchema.parse(reportedState({ supervisor: switched, acceptedVersion: 2, appliedVersion: 1, refusal: undefined, missingLabels: {}, disk, at: 5 }));
    assert.deepEqual(s.disk, disk);
    assert.deepEqual(s.services[0]?.updateSwitch, { strategy: 'kill-then-download', reason: 'needs about 1.0 GiB' });
    const refused = reportedState({ supervisor: sup, acceptedVersion: 2, appliedVersion: 2, refusal: { version: 3, code: 'ADMISSION_REFUSED', message: 'no room' }, missingLabels: {}, disk, at: 5 });
    assert.deepEqual(ReportedStateSchema.parse(refused).disk, disk);
  });

  test('missing labels are named per service; an engine error comes first', () => {
    const s = reportedState({ supervisor: sup, acceptedVersion: 2, appliedVersion: 2, refusal: undefined, missingLabels: { gpu: ['gpu'], web: [] }, at: 5 });
    assert.equal(s.error?.code, 'MISSING_LABEL');
    assert.deepEqual(Object.keys(s.error?.services ?? {}), ['gpu']);
    const failed = reportedState({ supervisor: { ...sup, status: 'failed', error: { code: 'RUNTIME_UNAVAILABLE', message: 'down' } }, acceptedVersion: 2, appliedVersion: 1, refusal: undefined, missingLabels: { gpu: ['gpu'] }, at: 5 });
    assert.equal(failed.error?.code, 'RUNTIME_UNAVAILABLE');
  });
});

describe('device labels, log tails, stream framing', () => {
  test('labels as key=value, true booleans also bare', () => {
    assert.deepEqual([...deviceLabelSet({ arch: 'arm64', gpu: 'true', 'device.serial': 'false' })].sort(), ['arch=arm64', 'device.serial=false', 'gpu', 'gpu=true']);
  });

  test('lastBytes keeps whole lines within the bound', () => {
    const text = Buffer.from('first line\nsecond\nthird\n');
    assert.equal(lastBytes(text, 100), 'first line\nsecond\nthird\n');
    assert.equal(lastBytes(text, 14), 'second\nthird\n');
    assert.equal(lastBytes(text, 12), 'third\n');
    assert.ok(Buffer.byteLength(lastBytes(Buffer.from('é'.repeat(50)), 11)) <= 11, "Buffer.byteLength(lastBytes(Buffer.from('é'.repeat(50)), 11)) <= 11");
  });

  test('demultiplex joins stdout and stderr frames in order; unframed output passes through', () => {
    const frame = (type: number, text: string): Buffer => {
      const h = Buffer.alloc(8);
      h[0] = type;
      h.writeUInt32BE(Buffer.byteLength(text), 4);
      return Buffer.concat([h, Buffer.from(text)]);
    };
    assert.equal(demultiplex(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, 'more\n')])).toString(), 'out\nerr\nmore\n');
    assert.equal(demultiplex(Buffer.from('plain text\n')).toString(), 'plain text\n');
    assert.equal(demultiplex(Buffer.alloc(0)).length, 0);
  });
});

describe('container usage from cgroup files', () => {
  test('v1 and v2 layouts; CPU as a fraction of one core between two samples', () => {
    const root = mkdtempSync(join(tmpdir(), 'cg-'));
    try {
      mkdirSync(join(root, 'system.slice', 'docker-v2.scope'), { recursive: true });
      writeFileSync(join(root, 'system.slice', 'docker-v2.scope', 'memory.current'), '2048\n');
      writeFileSync(join(root, 'system.slice', 'docker-v2.scope', 'cpu.stat'), 'usage_usec 1000\nuser_usec 800\n');
      mkdirSync(join(root, 'memory', 'docker', 'v1'), { recursive: true });
      mkdirSync(join(root, 'cpuacct', 'docker', 'v1'), { recursive: true });
      writeFileSync(join(root, 'memory', 'docker', 'v1', 'memory.usage_in_bytes'), '4096\n');
      writeFileSync(join(root, 'cpuacct', 'docker', 'v1', 'cpuacct.usage'), '0\n');
      assert.deepEqual(readContainerCgroup('v2', root), { memoryBytes: 2048, cpuNs: 1_000_000 });
      assert.deepEqual(readContainerCgroup('v1', root), { memoryBytes: 4096, cpuNs: 0 });
      assert.equal(readContainerCgroup('none', root), undefined);

      let now = 1000;
      const usage = new ContainerUsage({ root, now: () => now });
      const list = [{ name: 'a', containerId: 'v1', state: 'running' }, { name: 'b', containerId: 'v2', state: 'exited' }];
      assert.deepEqual(usage.sample(list), [{ name: 'a', cpu: 0, memoryBytes: 4096 }]);
      writeFileSync(join(root, 'cpuacct', 'docker', 'v1', 'cpuacct.usage'), '500000000\n'); // 0.5 s of CPU
      now = 2000; // in 1 s
      assert.deepEqual(usage.sample(list), [{ name: 'a', cpu: 0.5, memoryBytes: 4096 }]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
