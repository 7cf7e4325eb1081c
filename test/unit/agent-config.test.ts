import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SECURITY_POLICY } from '../../agent/admission/security-policy.js';
import { loadAgentConfig, type AgentConfig } from '../../agent/config.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { withTempFile } from '../support/temp-dirs.js';

function load(yaml: string): AgentConfig {
  return withTempFile('agent.yaml', yaml, (path) => loadAgentConfig(path, {}));
}

function refused(yaml: string, message: RegExp): void {
  assert.throws(() => load(yaml), (e) => isTsunaguError(e, 'CONFIG') && message.test(e.message), yaml);
}

test('without a policy section the device allows nothing beyond an ordinary container', () => {
  assert.deepEqual(load('logLevel: info\n').policy, DEFAULT_SECURITY_POLICY);
  assert.deepEqual(load('policy: {}\n').policy, DEFAULT_SECURITY_POLICY);
});

test('a policy: switches, capabilities in one spelling, bind rules bare or read-only, device patterns', () => {
  const policy = load(`
policy:
  allowHostNetwork: true
  capabilities: [cap_net_admin, SYS_TIME]
  binds:
    - /srv/app/**
    - { path: /etc/localtime, readOnly: true }
    - { path: /media/usb* }
  devices: [/dev/ttyUSB*, /dev/video*, /dev/gpiochip*]
`).policy;
  assert.deepEqual(policy, {
    allowPrivileged: false, allowHostNetwork: true, allowHostPid: false,
    capabilities: ['NET_ADMIN', 'SYS_TIME'],
    binds: [{ path: '/srv/app/**', readOnly: false }, { path: '/etc/localtime', readOnly: true }, { path: '/media/usb*', readOnly: false }],
    devices: ['/dev/ttyUSB*', '/dev/video*', '/dev/gpiochip*'],
  });
});

test('a policy the agent cannot read exactly is refused at start, naming the key', () => {
  refused('policy: { allowPrivileged: yes please }\n', /policy\.allowPrivileged/);
  refused('policy: { allowEverything: true }\n', /allowEverything/);
  refused('policy: { binds: [srv/app] }\n', /policy\.binds\.0\.path: "srv\/app" must be an absolute path/);
  refused('policy: { binds: [/srv/../etc] }\n', /must be normalised/);
  refused('policy: { binds: [{ path: /srv, readonly: true }] }\n', /policy\.binds\.0: Unrecognized key: "readonly"/);
  refused('policy: { devices: [/etc/*] }\n', /policy\.devices\.0: must be a path under \/dev\//);
  refused('policy: { devices: [/dev] }\n', /policy\.devices\.0: must be a path under \/dev\//);
  refused('policy: { capabilities: [NET ADMIN] }\n', /policy\.capabilities\.0: "NET ADMIN" is not a capability name/);
});

test('runtime.pullStallMs: five minutes by default, 0 turns it off, anything shorter than 10 s is refused', () => {
  assert.equal(load('logLevel: info\n').runtime.pullStallMs, 300_000);
  assert.equal(load('runtime: { scope: edge }\n').runtime.pullStallMs, 300_000);
  assert.equal(load('runtime: { pullStallMs: 0 }\n').runtime.pullStallMs, 0);
  assert.equal(load('runtime: { pullStallMs: 900000 }\n').runtime.pullStallMs, 900_000);
  refused('runtime: { pullStallMs: 5000 }\n', /runtime\.pullStallMs: must be 0 \(off\) or at least 10000/);
});
