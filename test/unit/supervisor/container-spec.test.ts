import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { configHash } from '../../../agent/supervisor/config-hash.js';
import { createOptions } from '../../../agent/supervisor/container-spec.js';

const identity = { scope: 'prod', project: 'demo', configHash: 'h1', version: 'v7' };

test('a full service maps onto the engine create request', () => {
  const state = parseDesiredState({
    volumes: { data: null },
    services: {
      db: { image: 'db:1' },
      web: {
        image: 'web:1', command: ['run'], entrypoint: ['/init'], environment: { B: '2', A: '1' },
        ports: ['127.0.0.1:8080:80', '53/udp'], volumes: ['data:/data:ro', '/etc/hosts:/etc/hosts'],
        healthcheck: { test: ['CMD', 'true'], interval: '2s', timeout: '1s', retries: 2, start_period: '5s' },
        depends_on: ['db'], network_mode: 'host', devices: ['/dev/ttyUSB0:/dev/ttyS0:rw'], labels: { team: 'a' },
        mem_limit: '64m', deploy: { resources: { limits: { cpus: 1.5, pids: 50 } } }, stop_grace_period: '2500ms',
      },
    },
  });
  const web = state.services.find((s) => s.name === 'web');
  assert.ok(web, 'web');
  assert.deepEqual(createOptions(web, identity), {
    Image: 'web:1',
    Cmd: ['run'],
    Entrypoint: ['/init'],
    Env: ['A=1', 'B=2'],
    Labels: {
      team: 'a', 'io.tsunagu.managed': 'true', 'io.tsunagu.scope': 'prod', 'io.tsunagu.service': 'web',
      'io.tsunagu.config-hash': 'h1', 'io.tsunagu.version': 'v7', 'io.tsunagu.depends-on': 'db',
    },
    ExposedPorts: { '80/tcp': {}, '53/udp': {} },
    StopTimeout: 3,
    Healthcheck: { Test: ['CMD', 'true'], Interval: 2e9, Timeout: 1e9, Retries: 2, StartPeriod: 5e9 },
    HostConfig: {
      NetworkMode: 'host',
      PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }], '53/udp': [{ HostIp: '', HostPort: '' }] },
      Mounts: [
        { Type: 'volume', Source: 'demo_data', Target: '/data', ReadOnly: true, VolumeOptions: { NoCopy: false, Labels: { 'io.tsunagu.managed': 'true', 'io.tsunagu.scope': 'prod' }, DriverConfig: { Name: 'local', Options: {} } } },
        { Type: 'bind', Source: '/etc/hosts', Target: '/etc/hosts', ReadOnly: false },
      ],
      Devices: [{ PathOnHost: '/dev/ttyUSB0', PathInContainer: '/dev/ttyS0', CgroupPermissions: 'rw' }],
      RestartPolicy: { Name: 'no' },
      Memory: 64 * 1024 * 1024,
      NanoCpus: 1_500_000_000,
      PidsLimit: 50,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
  });
});

test('defaults leave the image\'s command and healthcheck alone and cap logs', () => {
  const [s] = parseDesiredState({ services: { a: { image: 'a:1' } } }).services;
  assert.ok(s, 's');
  const o = createOptions(s, identity);
  assert.equal('Cmd' in o, false);
  assert.equal('Entrypoint' in o, false);
  assert.equal('Healthcheck' in o, false);
  assert.equal(o.HostConfig?.NetworkMode, 'default');
  assert.deepEqual(o.HostConfig?.LogConfig, { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } });
  for (const key of ['Privileged', 'PidMode', 'CapAdd', 'CapDrop']) assert.equal(key in (o.HostConfig ?? {}), false, key);
});

test('privileged, host PID and capabilities reach the engine', () => {
  const [s] = parseDesiredState({ services: { a: { image: 'a:1', privileged: true, pid: 'host', cap_add: ['CAP_SYS_TIME'], cap_drop: ['NET_RAW', 'MKNOD'] } } }).services;
  assert.ok(s, 's');
  const host = createOptions(s, identity).HostConfig;
  assert.equal(host?.Privileged, true);
  assert.equal(host?.PidMode, 'host');
  assert.deepEqual(host?.CapAdd, ['SYS_TIME']);
  assert.deepEqual(host?.CapDrop, ['MKNOD', 'NET_RAW']);
});

test('the config hash of a service that uses none of the newer settings is the one agent 0.1.0 gave it', () => {
  // Computed by the agent before privileged, pid and capabilities were supported: an
  // upgrade must not see every running container as changed and recreate it.
  const [s] = parseDesiredState({ services: { web: { image: 'busybox:1', network_mode: 'none', command: ['sleep', '1'], volumes: ['/srv/a:/a:ro'], devices: ['/dev/zero'] } } }).services;
  assert.ok(s, 's');
  assert.equal(configHash(s), 'ffa8f44b5b8e0af79201cc0917564940');
  for (const changed of [{ ...s, privileged: true }, { ...s, pid: 'host' as const }, { ...s, capAdd: ['NET_ADMIN'] }, { ...s, capDrop: ['ALL'] }, { ...s, stopSignal: 'SIGQUIT' }]) {
    assert.notEqual(configHash(changed), configHash(s), 'a setting in use changes the hash');
  }
});

test('stop_signal reaches the engine as the container\'s StopSignal, normalised; absent, the image\'s own stays', () => {
  const state = parseDesiredState({ services: { a: { image: 'a:1', stop_signal: 'int', stop_grace_period: '2s' }, b: { image: 'b:1', stop_signal: 'SIGRTMIN+3' }, c: { image: 'c:1', stop_signal: 9 }, d: { image: 'd:1' } } });
  const opts = new Map(state.services.map((s) => [s.name, createOptions(s, identity)]));
  assert.equal(opts.get('a')?.StopSignal, 'SIGINT');
  assert.equal(opts.get('a')?.StopTimeout, 2);
  assert.equal(opts.get('b')?.StopSignal, 'SIGRTMIN+3');
  assert.equal(opts.get('c')?.StopSignal, '9');
  assert.equal('StopSignal' in (opts.get('d') ?? {}), false);
});

test('user labels cannot override ownership labels', () => {
  assert.throws(() => parseDesiredState({ services: { a: { image: 'a', labels: { 'io.tsunagu.scope': 'other' } } } }));
});
