import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isTsunaguError, type ErrorCode } from '../../../protocol/errors.js';
import { parseDesiredState, parseDesiredStateYaml } from '../../../protocol/compose/compose-schema.js';
import { DEFAULT_LOGGING } from '../../../protocol/compose/desired-service.js';

function refused(doc: unknown, code: ErrorCode, message: string): void {
  assert.throws(() => parseDesiredState(doc), (e: unknown) => {
    assert.ok(isTsunaguError(e, code), `expected ${code}, got ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  });
}

const web = (extra: Record<string, unknown>): unknown => ({ services: { web: { image: 'busybox:1', ...extra } } });

describe('refused fields name their path', () => {
  for (const field of ['build', 'container_name', 'secrets', 'networks', 'user', 'security_opt', 'userns_mode', 'ipc', 'sysctls']) {
    test(`services.web.${field}`, () => refused(web({ [field]: 'x' }), 'UNSUPPORTED', `services.web.${field}: not supported`));
  }
  test('top-level networks', () => refused({ services: {}, networks: {} }, 'UNSUPPORTED', 'networks: not supported'));
  test('top-level secrets', () => refused({ services: {}, secrets: {} }, 'UNSUPPORTED', 'secrets: not supported'));
  test('volume driver', () => refused({ services: {}, volumes: { data: { driver: 'nfs' } } }, 'UNSUPPORTED', 'volumes.data.driver: not supported'));
  test('deploy.replicas', () => refused(web({ deploy: { replicas: 2 } }), 'UNSUPPORTED', 'services.web.deploy.replicas: not supported'));
  test('deploy reservations', () => refused(web({ deploy: { resources: { reservations: {} } } }), 'UNSUPPORTED', 'services.web.deploy.resources.reservations: not supported'));
  test('healthcheck unknown key', () => refused(web({ healthcheck: { test: 'true', start_interval: '1s' } }), 'UNSUPPORTED', 'services.web.healthcheck.start_interval: not supported'));
  test('depends_on restart flag', () => refused({ services: { a: { image: 'x' }, web: { image: 'x', depends_on: { a: { restart: true } } } } }, 'UNSUPPORTED', 'services.web.depends_on.a.restart: not supported'));
  test('unknown x-tsunagu key', () => refused(web({ 'x-tsunagu': { replicas: 1 } }), 'UNSUPPORTED', 'services.web.x-tsunagu.replicas: not supported'));
  test('network_mode container:', () => refused(web({ network_mode: 'container:db' }), 'SCHEMA', 'services.web.network_mode: "container:db" is not supported (bridge, host, none)'));
  test('relative bind mount', () => refused({ services: { web: { image: 'x', volumes: ['./data:/data'] } } }, 'SCHEMA', 'services.web.volumes.0: "./data:/data": "./data" is not a volume name (relative paths are not supported)'));
  test('anonymous volume', () => refused(web({ volumes: ['/data'] }), 'SCHEMA', 'services.web.volumes.0: "/data" is not SOURCE:TARGET[:ro]; anonymous volumes are not supported'));
  test('undeclared named volume', () => refused(web({ volumes: ['data:/data'] }), 'SCHEMA', 'services.web.volumes.0: volume "data" is not declared under top-level volumes'));
  test('port range', () => refused(web({ ports: ['8000-8010:80'] }), 'SCHEMA', 'services.web.ports.0: "8000-8010:80": port ranges are not supported'));
  test('bad duration', () => refused(web({ healthcheck: { interval: 'soon' } }), 'SCHEMA', 'services.web.healthcheck.interval: "soon" is not a duration like 10s or 1m30s'));
  test('bad size', () => refused(web({ mem_limit: '12 parsecs' }), 'SCHEMA', 'services.web.mem_limit: "12 parsecs" is not a size like 64m or 1g'));
  test('conflicting memory limits', () => refused(web({ mem_limit: '64m', deploy: { resources: { limits: { memory: '32m' } } } }), 'SCHEMA', 'services.web.mem_limit: conflicts with deploy.resources.limits.memory'));
  test('bad restart', () => refused(web({ restart: 'sometimes' }), 'SCHEMA', 'services.web.restart: "sometimes" is not one of no, always, on-failure[:N], unless-stopped'));
  test('reserved label', () => refused(web({ labels: { 'io.tsunagu.managed': 'false' } }), 'SCHEMA', 'services.web.labels.io.tsunagu.managed: the prefix io.tsunagu. is reserved for the agent'));
  test('environment without value', () => refused(web({ environment: ['HOME'] }), 'SCHEMA', 'services.web.environment.0: "HOME" is not KEY=VALUE (values taken from the agent\'s own environment are not supported)'));
  test('missing image', () => refused({ services: { web: {} } }, 'SCHEMA', 'services.web.image: Invalid input: expected string, received undefined'));
  test('unknown dependency', () => refused(web({ depends_on: ['db'] }), 'SCHEMA', 'services.web.depends_on.db: no such service'));
  test('dependency cycle', () => refused({ services: { a: { image: 'x', depends_on: ['b'] }, b: { image: 'x', depends_on: ['a'] } } }, 'SCHEMA', 'services.a.depends_on: dependency cycle: a -> b -> a'));
  test('bad device', () => refused(web({ devices: ['ttyUSB0'] }), 'SCHEMA', 'services.web.devices.0: "ttyUSB0" is not /dev/HOST[:/CONTAINER[:rwm]]'));
  test('pid other than host', () => refused(web({ pid: 'service:db' }), 'SCHEMA', 'services.web.pid: "service:db" is not supported (host)'));
  test('privileged not a boolean', () => refused(web({ privileged: 'yes' }), 'SCHEMA', 'services.web.privileged: Invalid input: expected boolean, received string'));
  test('bad capability name', () => refused(web({ cap_add: ['NET ADMIN'] }), 'SCHEMA', 'services.web.cap_add.0: "NET ADMIN" is not a capability name like NET_ADMIN'));
  test('unknown stop signal', () => refused(web({ stop_signal: 'SIGFOO' }), 'SCHEMA', 'services.web.stop_signal: "SIGFOO" is not a signal name like SIGTERM or SIGQUIT'));
  test('stop signal number out of range', () => refused(web({ stop_signal: 65 }), 'SCHEMA', 'services.web.stop_signal: "65" is not a signal number (1-64)'));
  test('bad priority', () => refused(web({ 'x-tsunagu': { priority: 'urgent' } }), 'SCHEMA', 'services.web.x-tsunagu.priority: Invalid option: expected one of "critical"|"normal"|"best-effort"'));
});

describe('normalisation', () => {
  test('defaults', () => {
    const state = parseDesiredState(web({}));
    assert.equal(state.project, 'tsunagu');
    assert.deepEqual(state.services[0], {
      name: 'web', image: 'busybox:1', command: null, entrypoint: null, environment: {}, ports: [], volumes: [],
      restart: { name: 'no' }, healthcheck: null, dependsOn: [], networkMode: 'bridge', pid: null, privileged: false, capAdd: [], capDrop: [], devices: [], labels: {},
      limits: { memoryBytes: null, nanoCpus: null, pids: null }, logging: { driver: DEFAULT_LOGGING.driver, options: { ...DEFAULT_LOGGING.options } },
      stopGraceMs: 10_000, stopSignal: null, tsunagu: { requires: [], priority: 'normal', update: 'download-then-kill' },
    });
  });

  test('every supported field', () => {
    const state = parseDesiredStateYaml(`
name: demo
x-anchors: &env { A: "1" }
x-tsunagu: { update: kill-then-download }
volumes: { data: {} }
services:
  db:
    image: db:1
    healthcheck: { test: "pg_isready", interval: 1m30s, timeout: 500ms, retries: 3, start_period: 2s }
  web:
    image: web:2
    command: sh -c "echo 'hi there'"
    entrypoint: ["/init"]
    environment: { <<: *env, B: 2, C: true }
    ports: ["8080:80", "127.0.0.1:5353:53/udp", 9000, { target: 81, published: "8081", host_ip: "0.0.0.0" }]
    volumes: ["data:/var/data:ro", "/srv/conf:/etc/conf", { type: bind, source: /dev/shm, target: /shm }]
    restart: on-failure:5
    depends_on: { db: { condition: service_healthy } }
    network_mode: host
    pid: host
    privileged: true
    cap_add: [SYS_TIME, cap_net_admin, NET_ADMIN]
    cap_drop: [ALL]
    devices: ["/dev/ttyUSB0", "/dev/i2c-1:/dev/i2c:rw"]
    labels: ["b=2", "a=1"]
    mem_limit: 64m
    stop_grace_period: 3s
    stop_signal: quit
    deploy: { resources: { limits: { cpus: "0.5", memory: 64m, pids: 100 } } }
    logging: { driver: local, options: { max-size: 1m } }
    x-other: ignored
    x-tsunagu: { requires: [camera, gpu], priority: critical }
`);
    assert.equal(state.project, 'demo');
    assert.deepEqual(state.volumes, ['data']);
    assert.deepEqual(state.services.map((s) => s.name), ['db', 'web']);
    const [db, web] = state.services;
    assert.deepEqual(db?.healthcheck, { test: ['CMD-SHELL', 'pg_isready'], intervalMs: 90_000, timeoutMs: 500, retries: 3, startPeriodMs: 2000 });
    assert.ok(web, 'web');
    assert.deepEqual(web.command, ['sh', '-c', "echo 'hi there'"]);
    assert.deepEqual(web.entrypoint, ['/init']);
    assert.deepEqual(web.environment, { A: '1', B: '2', C: 'true' });
    assert.deepEqual(web.ports, [
      { containerPort: 80, protocol: 'tcp', hostPort: 8080 },
      { containerPort: 53, protocol: 'udp', hostPort: 5353, hostIp: '127.0.0.1' },
      { containerPort: 9000, protocol: 'tcp' },
      { containerPort: 81, protocol: 'tcp', hostPort: 8081, hostIp: '0.0.0.0' },
    ]);
    assert.deepEqual(web.volumes, [
      { type: 'volume', source: 'data', target: '/var/data', readOnly: true },
      { type: 'bind', source: '/srv/conf', target: '/etc/conf', readOnly: false },
      { type: 'bind', source: '/dev/shm', target: '/shm', readOnly: false },
    ]);
    assert.deepEqual(web.restart, { name: 'on-failure', maxRetries: 5 });
    assert.deepEqual(web.dependsOn, [{ service: 'db', condition: 'service_healthy' }]);
    assert.equal(web.networkMode, 'host');
    assert.equal(web.pid, 'host');
    assert.equal(web.privileged, true);
    assert.deepEqual(web.capAdd, ['NET_ADMIN', 'SYS_TIME'], 'one spelling, sorted, no duplicates');
    assert.deepEqual(web.capDrop, ['ALL']);
    assert.deepEqual(web.devices, [
      { host: '/dev/ttyUSB0', container: '/dev/ttyUSB0', permissions: 'rwm' },
      { host: '/dev/i2c-1', container: '/dev/i2c', permissions: 'rw' },
    ]);
    assert.deepEqual(Object.entries(web.labels), [['a', '1'], ['b', '2']]);
    assert.deepEqual(web.limits, { memoryBytes: 64 * 1024 * 1024, nanoCpus: 500_000_000, pids: 100 });
    // The file count it leaves out is the device's cap (DEFAULT_LOGGING's here).
    assert.deepEqual(web.logging, { driver: 'local', options: { 'max-file': '3', 'max-size': '1m' } });
    assert.equal(web.stopGraceMs, 3000);
    assert.equal(web.stopSignal, 'SIGQUIT');
    assert.deepEqual(web.tsunagu, { requires: ['camera', 'gpu'], priority: 'critical', update: 'kill-then-download' });
  });

  test('services come after their dependencies', () => {
    const state = parseDesiredState({ services: { a: { image: 'x', depends_on: ['c'] }, b: { image: 'x' }, c: { image: 'x', depends_on: ['b'] } } });
    assert.deepEqual(state.services.map((s) => s.name), ['b', 'c', 'a']);
  });

  test('healthcheck disable becomes NONE', () => {
    assert.deepEqual(parseDesiredState(web({ healthcheck: { disable: true } })).services[0]?.healthcheck?.test, ['NONE']);
  });

  test('invalid YAML and alias bombs are refused', () => {
    assert.throws(() => parseDesiredStateYaml('services: [unclosed'), (e) => isTsunaguError(e, 'MALFORMED'));
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n');
    assert.throws(() => parseDesiredStateYaml(bomb), (e) => isTsunaguError(e, 'MALFORMED'));
  });

  test('the input object is not modified', () => {
    const doc = { services: { web: { image: 'x', 'x-note': 1 } }, 'x-top': 2 };
    const copy = structuredClone(doc);
    parseDesiredState(doc);
    assert.deepEqual(doc, copy);
  });
});

describe('container log caps', () => {
  const caps = { containerLogs: { maxSize: '2m', maxFiles: 2 } };

  test('a service without logging gets the device caps', () => {
    assert.deepEqual(parseDesiredState(web({}), caps).services[0]?.logging, { driver: 'json-file', options: { 'max-file': '2', 'max-size': '2m' } });
  });

  test('json-file and local without a size or count get the missing cap, never unbounded', () => {
    const state = parseDesiredState({ services: { a: { image: 'x', logging: { driver: 'json-file' } }, b: { image: 'x', logging: { driver: 'local', options: { 'max-file': 1 } } } } }, caps);
    assert.deepEqual(state.services.map((s) => s.logging), [
      { driver: 'json-file', options: { 'max-file': '2', 'max-size': '2m' } },
      { driver: 'local', options: { 'max-file': '1', 'max-size': '2m' } },
    ]);
  });

  test('drivers that keep no files in the data root are left as given', () => {
    const state = parseDesiredState({ services: { a: { image: 'x', logging: { driver: 'none' } }, b: { image: 'x', logging: { driver: 'journald', options: { tag: 'b' } } } } }, caps);
    assert.deepEqual(state.services.map((s) => s.logging), [{ driver: 'none', options: {} }, { driver: 'journald', options: { tag: 'b' } }]);
  });

  test('the default caps equal DEFAULT_LOGGING, so the configuration hash of existing services is unchanged', () => {
    assert.deepEqual(parseDesiredState(web({})).services[0]?.logging, { driver: DEFAULT_LOGGING.driver, options: { ...DEFAULT_LOGGING.options } });
  });
});
