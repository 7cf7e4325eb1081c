import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as z from 'zod/mini';
import { parseDesiredState } from '../../protocol/compose/compose-schema.js';
import { CommandSchema } from '../../protocol/commands.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { renderSchemaFiles } from '../../scripts/wire-schemas.js';
import { checkJsonSchema } from '../support/json-schema-check.js';

/**
 * docs/schemas/ is what `npm run docs:schemas` makes from the code's zod
 * schemas: the committed files must be exactly that, and the published test
 * vectors must be valid against them (the schemas and the vectors agree).
 */
const root = join(import.meta.dirname, '..', '..');
const schemaDir = join(root, 'docs', 'schemas');
const schema = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(schemaDir, file), 'utf8')) as Record<string, unknown>;
const vector = (file: string): Record<string, Record<string, unknown>> => JSON.parse(readFileSync(join(root, 'protocol', 'vectors', file), 'utf8')) as Record<string, Record<string, unknown>>;

function assertValid(file: string, value: unknown): void {
  assert.deepEqual(checkJsonSchema(schema(file), value), [], `not valid against docs/schemas/${file}`);
}

function assertInvalid(file: string, value: unknown): void {
  assert.notDeepEqual(checkJsonSchema(schema(file), value), [], `valid against docs/schemas/${file}, but should not be`);
}

test('docs/schemas/ holds exactly what the code generates (npm run docs:schemas)', () => {
  const rendered = renderSchemaFiles();
  assert.deepEqual(readdirSync(schemaDir).sort(), Object.keys(rendered).sort(), 'docs/schemas/ has missing or extra files: run npm run docs:schemas');
  for (const [name, text] of Object.entries(rendered)) {
    assert.equal(readFileSync(join(schemaDir, name), 'utf8'), text, `docs/schemas/${name} is out of date: run npm run docs:schemas`);
  }
});

test('every wire topic of the protocol has its schema in the index', () => {
  const index = readFileSync(join(schemaDir, 'README.md'), 'utf8');
  for (const topic of ['tsunagu/enroll/request', 'tsunagu/enroll/response/{requestId}', ...['cmd', 'desired', 'reply', 'status', 'inventory', 'metrics', 'state', 'events'].map((k) => `tsunagu/devices/{deviceId}/${k}`)]) {
    assert.ok(index.includes(`| ${topic}`), `no schema for ${topic} in docs/schemas/README.md`);
  }
});

test('the test vectors are valid against the published schemas', () => {
  const { request, grantResponse, staleRequestResponse } = vector('enrollment.json');
  for (const parts of [request, grantResponse, staleRequestResponse, vector('envelope.json')]) {
    assertValid('envelope.json', JSON.parse(parts!.wireText as string));
    assertValid('signed-payload.json', JSON.parse(parts!.payloadText as string));
  }
  assertValid('enroll-request.payload.json', JSON.parse(request!.payloadText as string));
  assertValid('enroll-claim.json', request!.claim);
  assertValid('enroll-response.payload.json', JSON.parse(grantResponse!.payloadText as string));
  assertValid('enroll-response.payload.json', JSON.parse(staleRequestResponse!.payloadText as string));
  assertValid('enroll-grant.json', grantResponse!.grant);
  // A payload is valid only against the schema of its own type.
  assertInvalid('enroll-response.payload.json', JSON.parse(request!.payloadText as string));
  assertInvalid('enroll-request.payload.json', JSON.parse(grantResponse!.payloadText as string));
});

const command = (data: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  typ: 'cmd', id: '0123456789abcdef0123456789abcdef', to: 'd-0104ab9319bfed95fbbd', iat: 1767225600000, exp: 1767225660000, ctr: 1767225600000, data, ...extra,
});

test('the command schema and the code agree on every command, and on what is refused', () => {
  const accepted = [
    { name: 'ping' }, { name: 'ping', args: {} }, { name: 'report-now' }, { name: 'reread-desired', args: {} },
    { name: 'restart', args: { service: 'web' } }, { name: 'stop', args: { service: 'web' } }, { name: 'start', args: { service: 'db.1' } },
    { name: 'logs', args: { service: 'web' } }, { name: 'logs', args: { service: 'web', lines: 1000 } },
    { name: 'rotate-credentials', args: { sealed: 'AAAA' } }, { name: 'retire' }, { name: 'retire', args: {} },
  ];
  const refused = [
    { name: 'reboot', args: {} }, { name: 'ping', args: { now: true } }, { name: 'restart', args: {} },
    { name: 'logs', args: { service: 'web', lines: 0 } }, { name: 'stop', args: { service: '-web' } }, { name: 'ping', extra: 1 },
    { name: 'retire', args: { keepVolumes: true } },
  ];
  const names = new Set(CommandSchema.def.options.map((o) => o.shape.name.def.values[0]));
  assert.deepEqual(new Set(accepted.map((c) => c.name)), names, 'every command has an accepted example');
  for (const data of accepted) {
    assert.equal(z.safeParse(CommandSchema, data).success, true, JSON.stringify(data));
    assertValid('cmd.payload.json', command(data));
  }
  for (const data of refused) {
    assert.equal(z.safeParse(CommandSchema, data).success, false, JSON.stringify(data));
    assertInvalid('cmd.payload.json', command(data));
  }
  // The device refuses a fleet message without a counter, or with a member the payload does not have.
  const { ctr: _ctr, ...withoutCounter } = command({ name: 'ping' });
  assertInvalid('cmd.payload.json', withoutCounter);
  assertInvalid('cmd.payload.json', command({ name: 'ping' }, { extra: true }));
  assertInvalid('cmd.payload.json', command({ name: 'ping' }, { typ: 'desired' }));
});

test('replies, status, events and reports: examples of what the agent sends are valid', () => {
  assertValid('reply.payload.json', {
    typ: 'reply', id: 'fedcba9876543210fedcba9876543210', to: 'acme', iat: 5, exp: 3_600_005,
    data: { re: '0123456789abcdef0123456789abcdef', ok: false, code: 'UNKNOWN_SERVICE', message: 'service web is not part of the desired state' },
  });
  assertInvalid('reply.payload.json', { typ: 'reply', id: 'fedcba9876543210fedcba9876543210', to: 'acme', iat: 5, exp: 6, data: { re: 'x', ok: true } });
  assertValid('status.json', { v: 1, state: 'offline', at: 1767225600000, agentVersion: '0.1.0', reason: 'connection lost' });
  assertInvalid('status.json', { v: 1, state: 'away', at: 1 });
  assertValid('event.json', { v: 1, at: 1767225600000, type: 'service-started', service: 'web', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
  assertInvalid('event.json', { v: 1, at: 1767225600000 });
  assertValid('desired.payload.json', {
    typ: 'desired', id: '0123456789abcdef0123456789abcdef', to: 'd-0104ab9319bfed95fbbd', iat: 1, exp: 2, ctr: 3,
    data: { version: 3, compose: { services: { web: { image: 'nginx' } } }, sealed: { environment: { web: { TOKEN: 'AAAA' } } } },
  });
  assertInvalid('desired.payload.json', {
    typ: 'desired', id: '0123456789abcdef0123456789abcdef', to: 'd-0104ab9319bfed95fbbd', iat: 1, exp: 2, data: { version: 0, compose: {} },
  });
  const labels = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`l${i}`, 'true']));
  assertInvalid('inventory.json', { ...inventory(), labels });
  assertValid('inventory.json', inventory());
});

function inventory(): Record<string, unknown> {
  return {
    v: 1, at: 0, hardware: {}, os: { platform: 'linux', distro: 'Debian', release: '12', kernel: '6.1.0' }, arch: 'arm/v7',
    cpu: { model: 'ARMv7', cores: 4, physicalCores: 4 }, memory: { totalBytes: 1 << 30 }, disks: [], filesystems: [],
    network: [{ name: 'eth0', mac: 'dc:a6:32:01:02:03', physical: true, addresses: ['192.0.2.7'] }], accelerators: [], devices: [{ path: '/dev/ttyUSB0', kind: 'serial' }],
    labels: { arch: 'arm/v7', 'device.serial': 'true' },
  };
}

test('the Compose subset schema and the agent agree on the fields they accept', () => {
  const accepted = [
    { services: { web: { image: 'nginx:1.27' } } },
    {
      name: 'shop', version: '3.8', 'x-notes': 'dropped', 'x-tsunagu': { priority: 'critical' }, volumes: { data: null },
      services: {
        db: { image: 'postgres:16', volumes: ['data:/var/lib/postgresql/data'], healthcheck: { test: ['CMD', 'pg_isready'], interval: '10s' } },
        web: {
          image: 'registry.example.com/web:1.2', command: ['serve', '--port', '8080'], environment: { MODE: 'prod', LEVEL: 3 },
          ports: ['8080:8080', { target: 9090, published: 9090, protocol: 'tcp' }], depends_on: { db: { condition: 'service_healthy' } },
          restart: 'unless-stopped', mem_limit: '256m', deploy: { resources: { limits: { cpus: '0.5', pids: 100 } } },
          logging: { driver: 'json-file', options: { 'max-size': '10m' } }, 'x-tsunagu': { requires: ['gpu'], update: 'kill-then-download' }, 'x-other': 1,
        },
      },
    },
  ];
  for (const doc of accepted) {
    parseDesiredState(doc);
    assertValid('desired-compose.json', doc);
  }
  const unsupported = [
    { services: { web: { image: 'nginx', build: '.' } } },
    { services: { web: { image: 'nginx', security_opt: ['seccomp:unconfined'] } } },
    { services: { web: { image: 'nginx' } }, networks: { front: {} } },
    { services: { web: { image: 'nginx', deploy: { replicas: 2 } } } },
  ];
  for (const doc of unsupported) {
    assert.throws(() => parseDesiredState(doc), (e) => isTsunaguError(e, 'UNSUPPORTED') || isTsunaguError(e, 'SCHEMA'), JSON.stringify(doc));
    assertInvalid('desired-compose.json', doc);
  }
});

test('protocol.md §9.7 names every field of the Compose subset, as the schema has them', () => {
  const doc = readFileSync(join(root, 'docs', 'protocol.md'), 'utf8');
  const subset = doc.slice(doc.indexOf('**The Compose subset**')).split('\n\n')[0]!;
  const compose = schema('desired-compose.json') as { properties: Record<string, { additionalProperties?: { properties: Record<string, unknown> } }> };
  const service = compose.properties.services!.additionalProperties!.properties;
  for (const field of [...Object.keys(compose.properties), ...Object.keys(service)]) {
    assert.ok(subset.includes(`\`${field}\``) || subset.includes(`\`${field}.`), `protocol.md §9.7 does not name the Compose field ${field}`);
  }
});
