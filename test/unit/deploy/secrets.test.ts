import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBase64, fromUtf8, toBase64 } from '../../../protocol/bytes.js';
import { RegistryCredentialsSchema } from '../../../protocol/desired.js';
import { isTsunaguError } from '../../../protocol/errors.js';
import { generateKeyPairs } from '../../../protocol/keys.js';
import { openSealed } from '../../../protocol/seal.js';
import { desiredDataFor, prepareDeployment } from '../../../provisioning/deploy/compose-document.js';
import { extractSecrets, parseRegistryAuth, registryAuthFromEnv, sealSecrets } from '../../../provisioning/deploy/secrets.js';

test('secrets are taken from the environment (both forms) or the env file, and removed from the document', () => {
  const doc = {
    services: {
      web: { image: 'nginx', environment: { DB_PASSWORD: 'p@ss', MODE: 'prod', API_KEY: null }, 'x-tsunagu': { secrets: ['DB_PASSWORD', 'API_KEY'], priority: 'critical' } },
      worker: { image: 'busybox', environment: ['TOKEN=t0k', 'LEVEL=3'], 'x-tsunagu': { secrets: ['TOKEN'] } },
      plain: { image: 'busybox', environment: { A: '1' } },
    },
  };
  const before = structuredClone(doc);
  const { compose, secrets } = extractSecrets(doc, { API_KEY: 'from-file', DB_PASSWORD: 'ignored: inline wins' });
  assert.deepEqual(doc, before, 'the input is not modified');
  assert.deepEqual(secrets, { web: { DB_PASSWORD: 'p@ss', API_KEY: 'from-file' }, worker: { TOKEN: 't0k' } });
  assert.deepEqual(compose, {
    services: {
      web: { image: 'nginx', environment: { MODE: 'prod' }, 'x-tsunagu': { priority: 'critical' } },
      worker: { image: 'busybox', environment: ['LEVEL=3'] },
      plain: { image: 'busybox', environment: { A: '1' } },
    },
  });
  const text = JSON.stringify(compose);
  for (const v of ['p@ss', 'from-file', 't0k', 'secrets']) assert.ok(!text.includes(v), v);
});

test('a secret may come only from the env file; an environment emptied of secrets disappears', () => {
  const { compose, secrets } = extractSecrets({ services: { s: { image: 'x', 'x-tsunagu': { secrets: ['K'] }, environment: ['K'] } } }, { K: 'v' });
  assert.deepEqual(secrets, { s: { K: 'v' } });
  assert.deepEqual(compose, { services: { s: { image: 'x' } } });
});

test('a secret without a value, or a malformed secrets list, is refused with its path', () => {
  assert.throws(() => extractSecrets({ services: { s: { image: 'x', 'x-tsunagu': { secrets: ['MISSING'] } } } }),
    (err) => isTsunaguError(err, 'SCHEMA') && err.message === 'services.s.x-tsunagu.secrets: MISSING has no value: set it in the service\'s environment or in the --env-file');
  for (const bad of ['K', [1], ['has space'], { K: 1 }]) {
    assert.throws(() => extractSecrets({ services: { s: { image: 'x', 'x-tsunagu': { secrets: bad } } } }),
      (err) => isTsunaguError(err, 'SCHEMA') && err.message.startsWith('services.s.x-tsunagu.secrets: must be a list'));
  }
});

test('sealed secrets open with the device box key to the original values, and not with another key', () => {
  const device = generateKeyPairs();
  const other = generateKeyPairs();
  const creds = { 'registry.example.com': { username: 'ci', password: 'p:a=ss' } };
  const sealed = sealSecrets({ web: { DB_PASSWORD: 'p@ss', EMPTY: '' } }, creds, toBase64(device.boxPublicKey));
  assert.ok(sealed?.environment !== undefined && sealed.registries !== undefined, 'sealed?.environment !== undefined && sealed.registries !== undefined');
  const open = (b64: string, key: Uint8Array): string => fromUtf8(openSealed(fromBase64(b64, 'sealed'), key));
  assert.equal(open(sealed.environment.web!.DB_PASSWORD!, device.boxSecretKey), 'p@ss');
  assert.equal(open(sealed.environment.web!.EMPTY!, device.boxSecretKey), '');
  assert.deepEqual(RegistryCredentialsSchema.parse(JSON.parse(open(sealed.registries, device.boxSecretKey))), creds);
  assert.throws(() => open(sealed.environment!.web!.DB_PASSWORD!, other.boxSecretKey), (err) => isTsunaguError(err, 'SEAL_OPEN_FAILED'));
  assert.equal(sealSecrets({}, {}, toBase64(device.boxPublicKey)), undefined, 'nothing to seal: no sealed field');
});

test('registry credentials: host=user:password, the password may hold : and =; bad entries refused', () => {
  assert.deepEqual(parseRegistryAuth(['r.example.com:5000=u:p:w=d', 'ghcr.io=bot:x']), {
    'r.example.com:5000': { username: 'u', password: 'p:w=d' }, 'ghcr.io': { username: 'bot', password: 'x' },
  });
  assert.deepEqual(registryAuthFromEnv(' a=b:c\nd=e:f '), ['a=b:c', 'd=e:f']);
  assert.deepEqual(registryAuthFromEnv(undefined), []);
  for (const bad of ['nohost', '=u:p', 'host=nocolon']) {
    assert.throws(() => parseRegistryAuth([bad]), (err) => isTsunaguError(err, 'CONFIG'), bad);
  }
  assert.throws(() => parseRegistryAuth(['h=a:b', 'h=c:d']), (err) => isTsunaguError(err, 'CONFIG') && /twice/.test(err.message));
  assert.throws(() => parseRegistryAuth(['host=user-without-password']), (err) => isTsunaguError(err, 'CONFIG') && !err.message.includes('user-without-password'), 'the message does not echo credentials');
});

test('the deployment is validated with the device schema; each refused field class names its path', () => {
  const cases: [string, string, string][] = [
    ['services:\n  web:\n    image: nginx\n    build: .\n', 'UNSUPPORTED', 'services.web.build'],
    ['services:\n  web:\n    image: nginx\n    security_opt: [seccomp=unconfined]\n', 'UNSUPPORTED', 'services.web.security_opt'],
    ['services:\n  web:\n    image: nginx\n    pid: service:db\n', 'SCHEMA', 'services.web.pid'],
    ['services:\n  web:\n    image: nginx\n    secrets: [db]\n', 'UNSUPPORTED', 'services.web.secrets'],
    ['services:\n  web:\n    image: nginx\nsecrets:\n  db:\n    file: ./db.txt\n', 'UNSUPPORTED', 'secrets'],
    ['services:\n  web:\n    image: nginx\n    depends_on: [db]\n', 'SCHEMA', 'services.web.depends_on.db'],
    ['services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n', 'SCHEMA', 'services.a.depends_on'],
    ['services:\n  web:\n    image: nginx\n    depends_on:\n      db: { condition: service_exploded }\n  db:\n    image: x\n', 'SCHEMA', 'services.web.depends_on'],
    ['services:\n  web:\n    image: nginx\n    x-tsunagu: { secrets: [A], colour: blue }\n    environment: { A: "1" }\n', 'UNSUPPORTED', 'services.web.x-tsunagu.colour'],
  ];
  for (const [yaml, code, field] of cases) {
    assert.throws(() => prepareDeployment(yaml), (err) => isTsunaguError(err) && err.code === code && err.details?.field === field && err.message.startsWith(`${field}:`), `${field}: ${yaml}`);
  }
  assert.throws(() => prepareDeployment('services: [\n'), (err) => isTsunaguError(err, 'MALFORMED'));
  assert.throws(() => prepareDeployment('a: 1\na: 2\n'), (err) => isTsunaguError(err, 'MALFORMED'), 'duplicate keys, as the device refuses them');
  assert.throws(() => prepareDeployment(`services: {}\n#${'x'.repeat(256 * 1024)}`), (err) => isTsunaguError(err, 'TOO_LARGE'));
});

test('privileged, host PID and capabilities pass deploy-time validation: only the device knows its own policy', () => {
  const prepared = prepareDeployment('services:\n  web:\n    image: nginx\n    privileged: true\n    pid: host\n    cap_add: [NET_ADMIN]\n    cap_drop: [ALL]\n');
  const [web] = prepared.state.services;
  assert.deepEqual([web?.privileged, web?.pid, web?.capAdd, web?.capDrop], [true, 'host', ['NET_ADMIN'], ['ALL']]);
  assert.deepEqual(prepared.compose, { services: { web: { image: 'nginx', privileged: true, pid: 'host', cap_add: ['NET_ADMIN'], cap_drop: ['ALL'] } } });
});

test('a valid deployment becomes wire data without its secrets; anchors are expanded', () => {
  const yaml = [
    'x-common: &common',
    '  restart: always',
    'services:',
    '  web:',
    '    <<: *common',
    '    image: nginx:1.27',
    '    environment: { DB_PASSWORD: hunter2, MODE: prod }',
    '    x-tsunagu: { secrets: [DB_PASSWORD] }',
  ].join('\n');
  const device = generateKeyPairs();
  const prepared = prepareDeployment(yaml);
  assert.deepEqual(prepared.state.services.map((s) => [s.name, s.restart.name, s.environment]), [['web', 'always', { MODE: 'prod' }]]);
  const data = desiredDataFor(prepared, 42, toBase64(device.boxPublicKey));
  assert.equal(data.version, 42);
  assert.deepEqual((data.compose.services as Record<string, unknown>).web, { restart: 'always', image: 'nginx:1.27', environment: { MODE: 'prod' } });
  assert.ok(!JSON.stringify(data).includes('hunter2'), "!JSON.stringify(data).includes('hunter2')");
  assert.equal(fromUtf8(openSealed(fromBase64(data.sealed!.environment!.web!.DB_PASSWORD!, 's'), device.boxSecretKey)), 'hunter2');
  assert.equal(data.sealed?.registries, undefined);
});

test('a secret too large for the wire format is refused before sending', () => {
  const device = generateKeyPairs();
  const prepared = prepareDeployment('services:\n  s:\n    image: x\n    x-tsunagu: { secrets: [BIG] }\n', { envFile: { BIG: 'x'.repeat(7000) } });
  assert.throws(() => desiredDataFor(prepared, 1, toBase64(device.boxPublicKey)), (err) => isTsunaguError(err, 'TOO_LARGE') && /sealed\.environment\.s\.BIG/.test(err.message));
});
