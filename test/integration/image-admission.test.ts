import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { admit } from '../../agent/admission/admission.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { DockerImages } from '../../agent/images/docker-images.js';
import { ImageHousekeeping } from '../../agent/images/image-housekeeping.js';
import { parseImageReference } from '../../agent/images/image-reference.js';
import { devicePlatform, formatPlatform, type Platform } from '../../agent/images/platform.js';
import { RegistryClient } from '../../agent/images/registry-client.js';
import { RemoteImageFactsReader } from '../../agent/images/remote-image-facts.js';
import { parseDesiredState } from '../../protocol/compose/compose-schema.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { busyboxRootfs, pushImage, pushIndex, randomLayer, type WrittenImage } from '../support/image-writer.js';
import { startRegistryFront } from '../support/registry-front.js';
import { dockerTestEnv } from '../support/supervisor-harness.js';

// Admission against the real test engine and registry: images written into
// the registry with the platforms a test needs, their platforms read through
// the engine's distribution endpoint and their sizes through the registry
// API (also behind Basic, Bearer-token and TLS fronts).

const env = dockerTestEnv();
const socketPath = env.dockerHost.slice('unix://'.length);
const device = devicePlatform();
// Platforms no test machine is: images for them must be refused here.
const foreign: Platform[] = [{ os: 'linux', architecture: 's390x' }, { os: 'linux', architecture: 'riscv64' }]
  .filter((p) => p.architecture !== device.architecture);
const repo = `tsunagu-test-disk/admission-${randomBytes(3).toString('hex')}`;
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
let work: string;
let native: WrittenImage;
let alien: WrittenImage;
let multiRef: string;

function housekeeping(extra: { registry?: ConstructorParameters<typeof RegistryClient>[0] } = {}): ImageHousekeeping {
  return new ImageHousekeeping({
    disk: AgentConfigSchema.parse({}).disk, stateDir: mkdtempSync(join(work, 'state-')), engine: new DockerImages({ socketPath }), deviceLabels: new Set(),
    auth: () => undefined, emit: () => undefined, log: quiet, ...extra,
  });
}

async function refusal(checks: ImageHousekeeping, doc: object, firstTime = true): Promise<Record<string, string> | null> {
  try {
    await admit(parseDesiredState(doc), checks.admission, { firstTime });
    return null;
  } catch (err) {
    assert.ok(isTsunaguError(err, 'ADMISSION_REFUSED'), String(err));
    return err.details?.services as Record<string, string>;
  }
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'tsunagu-admission-'));
  const base = busyboxRootfs();
  native = await pushImage(env.registry, repo, 'native', [base, randomLayer(256 * 1024)], device);
  alien = await pushImage(env.registry, repo, 'alien', [base], foreign[0]);
  const other = await pushImage(env.registry, repo, 'other', [base], foreign[1]);
  multiRef = await pushIndex(env.registry, repo, 'multi', [alien, other]);
});

after(() => rmSync(work, { recursive: true, force: true }));

describe('architecture', () => {
  test('an image without a platform this device runs is refused, with the image\'s platforms named; the others pass', async () => {
    const services = await refusal(housekeeping(), { services: {
      ok: { image: native.ref }, alien: { image: alien.ref }, multi: { image: multiRef },
    } });
    assert.deepEqual(services, {
      alien: `image ${alien.ref} is built for ${formatPlatform(foreign[0]!)}; this device is ${formatPlatform(device)}`,
      multi: `image ${multiRef} is built for ${foreign.map(formatPlatform).join(', ')}; this device is ${formatPlatform(device)}`,
    });
  });

  test('an index that offers this device\'s platform passes, and its size is read for that platform', async () => {
    const indexRef = await pushIndex(env.registry, repo, 'with-native', [alien, native]);
    assert.equal(await refusal(housekeeping(), { services: { app: { image: indexRef } } }), null);
    const facts = await new RemoteImageFactsReader({ engine: new DockerImages({ socketPath }), registry: new RegistryClient(), device, auth: () => undefined }).read(indexRef);
    assert.deepEqual(facts.layers?.map((l) => l.compressedBytes), native.compressedBytes);
    assert.deepEqual(facts.layers?.map((l) => l.diffId), native.diffIds);
  });

  test('an image already on the engine, and a stored version, are not checked again', async () => {
    const local = env.images.local; // only in the engine: the registry has never seen it
    assert.equal(await refusal(housekeeping(), { services: { app: { image: local } } }), null);
    assert.equal(await refusal(housekeeping(), { services: { alien: { image: alien.ref } } }, false), null);
  });

  test('a registry that cannot be reached refuses nothing: the pull decides', async () => {
    assert.equal(await refusal(housekeeping(), { services: { app: { image: '127.0.0.1:1/nowhere/app:1' } } }), null);
  });
});

describe('reading sizes from the registry API', () => {
  const read = (registry: RegistryClient, ref: string, login?: { username: string; password: string }): Promise<unknown> =>
    registry.manifest(parseImageReference(ref), login).then((m) => m.body);

  test('plain HTTP for a loopback registry, the layers as pushed', async () => {
    const body = await read(new RegistryClient(), native.ref) as { layers: { size: number }[] };
    assert.deepEqual(body.layers.map((l) => l.size), native.compressedBytes);
  });

  test('Basic credentials when the registry asks for them; refused ones are REGISTRY_FAILED', async (t) => {
    const login = { username: 'device-7', password: randomBytes(6).toString('hex') };
    const front = await startRegistryFront(env.registry, { basicAuth: login });
    t.after(() => front.close());
    const ref = native.ref.replace(env.registry, front.host);
    const body = await read(new RegistryClient(), ref, login) as { layers: unknown[] };
    assert.equal(body.layers.length, 2);
    await assert.rejects(read(new RegistryClient(), ref, { ...login, password: 'wrong' }), (e) => isTsunaguError(e, 'REGISTRY_FAILED'));
    await assert.rejects(read(new RegistryClient(), ref), /carries none for it/);
  });

  test('a Bearer token from the realm the challenge names, fetched once and reused', async (t) => {
    const login = { username: 'device-8', password: randomBytes(6).toString('hex') };
    const front = await startRegistryFront(env.registry, { bearerAuth: login });
    t.after(() => front.close());
    const ref = native.ref.replace(env.registry, front.host);
    const client = new RegistryClient();
    const facts = await new RemoteImageFactsReader({
      engine: { remotePlatforms: () => Promise.reject(new Error('not asked here')) }, registry: client, device, auth: () => ({ ...login, serveraddress: front.host }),
    }).read(ref);
    assert.deepEqual(facts.layers?.map((l) => l.compressedBytes), native.compressedBytes, facts.unknown.join('; '));
    assert.deepEqual(facts.platforms, [device], 'the platform from the config when the engine cannot tell');
    assert.equal(front.tokensIssued, 1, 'the manifest and the config blob share one token');
    await assert.rejects(read(new RegistryClient(), ref, { ...login, password: 'wrong' }), /token service refused \(401\)/);
  });

  test('HTTPS verified against the registry\'s ca.crt in the certs directory, as the engine does', async (t) => {
    const dir = mkdtempSync(join(work, 'tls-'));
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const front = await startRegistryFront(env.registry, { tls: { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') } });
    t.after(() => front.close());
    const ref = native.ref.replace(env.registry, front.host);
    // Treated as a secure registry (not the engine's default insecure range), so its certificate must verify.
    const secure = { insecure: () => false, certsDir: join(dir, 'certs.d') };
    await assert.rejects(read(new RegistryClient(secure), ref), (e) => isTsunaguError(e, 'REGISTRY_FAILED') && /certificate/i.test(e.message));
    mkdirSync(join(dir, 'certs.d', front.host), { recursive: true });
    writeFileSync(join(dir, 'certs.d', front.host, 'ca.crt'), readFileSync(join(dir, 'cert.pem')));
    const body = await read(new RegistryClient(secure), ref) as { layers: unknown[] };
    assert.equal(body.layers.length, 2);
    // A loopback registry with TLS is spoken to over TLS (unverified, as the engine does for its insecure range).
    assert.equal((await read(new RegistryClient(), ref) as { layers: unknown[] }).layers.length, 2);
  });
});
