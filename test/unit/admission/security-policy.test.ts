import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { admit } from '../../../agent/admission/admission.js';
import { protectedHostPaths, realHostPath, securityPolicyCheck } from '../../../agent/admission/security-policy-check.js';
import { checkSecurityPolicy, DEFAULT_SECURITY_POLICY, type HostView, type SecurityPolicy } from '../../../agent/admission/security-policy.js';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import { isTsunaguError } from '../../../protocol/errors.js';

// The host as the check sees it: the protected paths of an agent with state in
// /var/lib/tsunagu, and symlinks given as a table (a path not listed is real).
const protectedPaths = protectedHostPaths({ engineSocket: '/run/engine/custom.sock', stateDir: '/var/lib/tsunagu', configFile: '/etc/tsunagu/agent.yaml' });
function host(links: Record<string, string> = {}): HostView {
  return {
    protectedPaths,
    realPath: (path) => {
      for (const [link, target] of Object.entries(links)) {
        if (path === link || path.startsWith(`${link}/`)) return target + path.slice(link.length);
      }
      return path;
    },
  };
}
const debianHost = host({ '/var/run': '/run' });

function check(service: Record<string, unknown>, policy: Partial<SecurityPolicy> = {}, view: HostView = debianHost): string[] | undefined {
  const desired = parseDesiredState({ volumes: { data: null }, services: { web: { image: 'busybox:1', ...service } } });
  return checkSecurityPolicy(desired, { ...DEFAULT_SECURITY_POLICY, ...policy }, view).web;
}

describe('the default policy', () => {
  test('an ordinary service passes: named volumes, bridge or no network, dropped capabilities', () => {
    assert.equal(check({ volumes: ['data:/data'], cap_drop: ['ALL'], network_mode: 'none' }), undefined);
    assert.equal(check({ network_mode: 'bridge', privileged: false }), undefined);
  });

  test('each setting beyond an ordinary container is refused, naming the setting and the policy key', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ privileged: true }, "privileged: not allowed by this device's policy (policy.allowPrivileged)"],
      [{ network_mode: 'host' }, "network_mode host: not allowed by this device's policy (policy.allowHostNetwork)"],
      [{ pid: 'host' }, "pid host: not allowed by this device's policy (policy.allowHostPid)"],
      [{ cap_add: ['CAP_NET_ADMIN'] }, 'cap_add NET_ADMIN: not in policy.capabilities'],
      [{ cap_add: ['ALL'] }, 'cap_add ALL: not in policy.capabilities'],
      [{ volumes: ['/srv/app:/app:ro'] }, 'volumes[0] bind /srv/app: not in policy.binds'],
      [{ devices: ['/dev/ttyUSB0'] }, 'devices /dev/ttyUSB0: not in policy.devices'],
      [{ devices: ['/dev/mem'] }, 'devices /dev/mem: not in policy.devices'],
      [{ volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }, "volumes[0] bind /var/run/docker.sock (→ /run/docker.sock): the container engine's socket is never allowed"],
      [{ volumes: ['/:/host'] }, "volumes[0] bind /: contains the container engine's socket (/run/engine/custom.sock), never allowed"],
    ];
    for (const [service, reason] of cases) assert.deepEqual(check(service), [reason], JSON.stringify(service));
  });

  test('every reason of a service at once, in document order; a passing service has no entry', () => {
    const desired = parseDesiredState({
      services: {
        ok: { image: 'a' },
        bad: { image: 'a', privileged: true, pid: 'host', cap_add: ['SYS_ADMIN', 'NET_ADMIN'], volumes: ['/etc:/etc', '/srv:/srv'], devices: ['/dev/sda'] },
      },
    });
    assert.deepEqual(checkSecurityPolicy(desired, DEFAULT_SECURITY_POLICY, debianHost), {
      bad: [
        "privileged: not allowed by this device's policy (policy.allowPrivileged)",
        "pid host: not allowed by this device's policy (policy.allowHostPid)",
        'cap_add NET_ADMIN: not in policy.capabilities',
        'cap_add SYS_ADMIN: not in policy.capabilities',
        "volumes[0] bind /etc: contains the agent's config file (/etc/tsunagu/agent.yaml), never allowed",
        'volumes[1] bind /srv: not in policy.binds',
        'devices /dev/sda: not in policy.devices',
      ],
    });
  });
});

describe('a policy that allows more', () => {
  test('the switches allow privileged mode, host network and host PID', () => {
    assert.equal(check({ privileged: true, network_mode: 'host', pid: 'host' }, { allowPrivileged: true, allowHostNetwork: true, allowHostPid: true }), undefined);
    assert.deepEqual(check({ privileged: true, network_mode: 'host' }, { allowHostNetwork: true }), ["privileged: not allowed by this device's policy (policy.allowPrivileged)"]);
  });

  test('capabilities: listed ones only; ALL in the policy allows any, cap_add ALL included', () => {
    const policy = { capabilities: ['NET_ADMIN', 'SYS_TIME'] };
    assert.equal(check({ cap_add: ['net_admin', 'CAP_SYS_TIME'] }, policy), undefined);
    assert.deepEqual(check({ cap_add: ['NET_ADMIN', 'SYS_MODULE'] }, policy), ['cap_add SYS_MODULE: not in policy.capabilities']);
    assert.deepEqual(check({ cap_add: ['ALL'] }, policy), ['cap_add ALL: not in policy.capabilities']);
    assert.equal(check({ cap_add: ['ALL', 'SYS_MODULE'] }, { capabilities: ['ALL'] }), undefined);
  });

  test('binds: from the allowlist, by glob; read-only rules allow :ro only', () => {
    const policy = { binds: [{ path: '/srv/app/**', readOnly: false }, { path: '/etc/localtime', readOnly: true }, { path: '/media/usb*', readOnly: false }] };
    assert.equal(check({ volumes: ['/srv/app:/app', '/srv/app/conf/x.yaml:/x.yaml', '/etc/localtime:/etc/localtime:ro', '/media/usb1:/usb'] }, policy), undefined);
    assert.deepEqual(check({ volumes: ['/etc/localtime:/etc/localtime'] }, policy), ['volumes[0] bind /etc/localtime: policy.binds allows it read-only only (mount it with :ro)']);
    assert.deepEqual(check({ volumes: ['/srv/apple:/a', '/media/usb1/../../etc:/e'] }, policy), [
      'volumes[0] bind /srv/apple: not in policy.binds',
      'volumes[1] bind /media/usb1/../../etc (→ /etc): contains the agent\'s config file (/etc/tsunagu/agent.yaml), never allowed',
    ]);
    // A rule read-write and a rule read-only both matching: read-write is allowed.
    assert.equal(check({ volumes: ['/etc/localtime:/x'] }, { binds: [{ path: '/etc/localtime', readOnly: true }, { path: '/etc/local*', readOnly: false }] }), undefined);
  });

  test('.. cannot climb out of an allowed directory', () => {
    const policy = { binds: [{ path: '/srv/app/**', readOnly: false }] };
    assert.deepEqual(check({ volumes: ['/srv/app/../secrets:/s'] }, policy), ['volumes[0] bind /srv/app/../secrets (→ /srv/secrets): not in policy.binds']);
    assert.deepEqual(check({ volumes: [{ type: 'bind', source: '/srv/app/../../root', target: '/r' }] }, policy), ['volumes[0] bind /srv/app/../../root (→ /root): not in policy.binds']);
  });

  test('a symlink is judged by where it leads', () => {
    const policy = { binds: [{ path: '/srv/app/**', readOnly: false }], devices: ['/dev/ttyUSB*'] };
    const view = host({ '/var/run': '/run', '/srv/app/root': '/', '/srv/app/etc': '/etc', '/opt/app': '/srv/app/real', '/dev/serial/by-id/usb-FTDI': '/dev/ttyUSB3', '/dev/serial/by-id/disk': '/dev/sda' });
    assert.deepEqual(check({ volumes: ['/srv/app/root:/r'] }, policy, view), ["volumes[0] bind /srv/app/root (→ /): contains the container engine's socket (/run/engine/custom.sock), never allowed"]);
    assert.deepEqual(check({ volumes: ['/srv/app/etc/shadow:/s'] }, policy, view), ['volumes[0] bind /srv/app/etc/shadow (→ /etc/shadow): not in policy.binds']);
    assert.equal(check({ volumes: ['/opt/app:/a'] }, policy, view), undefined, 'outside the allowlist by name, inside by where it leads');
    assert.equal(check({ devices: ['/dev/serial/by-id/usb-FTDI:/dev/ttyUSB0'] }, policy, view), undefined);
    assert.deepEqual(check({ devices: ['/dev/serial/by-id/disk'] }, policy, view), ['devices /dev/serial/by-id/disk (→ /dev/sda): not in policy.devices']);
  });

  test('never the engine socket, the agent\'s state or its config, nor a directory above them, whatever the allowlist says', () => {
    const policy = { binds: [{ path: '/**', readOnly: false }] };
    const socket = "the container engine's socket is never allowed";
    const cases: [string, string][] = [
      ['/run/docker.sock', `volumes[0] bind /run/docker.sock: ${socket}`],
      ['/var/run/docker.sock', `volumes[0] bind /var/run/docker.sock (→ /run/docker.sock): ${socket}`],
      ['/run/engine/custom.sock', `volumes[0] bind /run/engine/custom.sock: ${socket}`],
      ['/run/containerd/containerd.sock', `volumes[0] bind /run/containerd/containerd.sock: ${socket}`],
      ['/run/podman/podman.sock', `volumes[0] bind /run/podman/podman.sock: ${socket}`],
      ['/', "volumes[0] bind /: contains the container engine's socket (/run/engine/custom.sock), never allowed"],
      ['/run', "volumes[0] bind /run: contains the container engine's socket (/run/engine/custom.sock), never allowed"],
      ['/var/run', "volumes[0] bind /var/run (→ /run): contains the container engine's socket (/run/engine/custom.sock), never allowed"],
      ['/var/lib/tsunagu', "volumes[0] bind /var/lib/tsunagu: the agent's state directory is never allowed"],
      ['/var/lib/tsunagu/keys.json', "volumes[0] bind /var/lib/tsunagu/keys.json: the agent's state directory is never allowed"],
      ['/var/lib', "volumes[0] bind /var/lib: contains the agent's state directory (/var/lib/tsunagu), never allowed"],
      ['/etc/tsunagu', "volumes[0] bind /etc/tsunagu: contains the agent's config file (/etc/tsunagu/agent.yaml), never allowed"],
      ['/etc/tsunagu/agent.yaml', "volumes[0] bind /etc/tsunagu/agent.yaml: the agent's config file is never allowed"],
    ];
    for (const [source, reason] of cases) assert.deepEqual(check({ volumes: [`${source}:/x:ro`] }, policy), [reason], source);
    assert.equal(check({ volumes: ['/srv:/srv', '/var/lib/other:/o', '/etc/hostname:/h:ro'] }, policy), undefined, 'the rest of the host is the owner\'s to allow');
  });

  test('a protected path reached through a link is protected where it leads too', () => {
    // The engine's socket configured as /var/run/x.sock, with /var/run a link to /run: /run/x.sock is the same socket.
    const view: HostView = { ...host({ '/var/run': '/run' }), protectedPaths: protectedHostPaths({ engineSocket: '/var/run/x.sock', stateDir: '/data/agent', configFile: '/data/agent.yaml' }) };
    assert.deepEqual(check({ volumes: ['/run/x.sock:/x'] }, { binds: [{ path: '/**', readOnly: false }] }, view), ["volumes[0] bind /run/x.sock: the container engine's socket is never allowed"]);
  });

  test('devices: from the allowlist, by glob', () => {
    const policy = { devices: ['/dev/ttyUSB*', '/dev/video*', '/dev/gpiochip*', '/dev/bus/usb/**'] };
    assert.equal(check({ devices: ['/dev/ttyUSB0', '/dev/video0:/dev/video0:r', '/dev/gpiochip0', '/dev/bus/usb/001/004'] }, policy), undefined);
    assert.deepEqual(check({ devices: ['/dev/ttyACM0', '/dev/mem', '/dev/../etc/shadow'] }, policy), [
      'devices /dev/ttyACM0: not in policy.devices',
      'devices /dev/mem: not in policy.devices',
      'devices /dev/../etc/shadow (→ /etc/shadow): not in policy.devices',
    ]);
  });
});

test('as an admission check: the whole desired state is refused with POLICY_REFUSED and the reasons per service', async () => {
  const desired = parseDesiredState({ services: { a: { image: 'x', privileged: true, cap_add: ['NET_RAW'] }, b: { image: 'x' } } });
  const checks = [securityPolicyCheck(DEFAULT_SECURITY_POLICY, debianHost)];
  await assert.rejects(admit(desired, checks, { firstTime: false }), (err) => {
    assert.ok(isTsunaguError(err, 'POLICY_REFUSED'), "isTsunaguError(err, 'POLICY_REFUSED')");
    assert.deepEqual(err.details?.services, { a: "privileged: not allowed by this device's policy (policy.allowPrivileged); cap_add NET_RAW: not in policy.capabilities" });
    return true;
  });
  await admit(parseDesiredState({ services: { b: { image: 'x' } } }), checks, { firstTime: true });
});

test('realHostPath follows symlinks as far as the path exists and keeps the rest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'policy-realpath-'));
  try {
    mkdirSync(join(dir, 'real'));
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    symlinkSync('/', join(dir, 'root'));
    const real = realHostPath(dir);
    assert.equal(realHostPath(join(dir, 'link')), join(real, 'real'));
    assert.equal(realHostPath(join(dir, 'link', 'absent', 'deeper')), join(real, 'real', 'absent', 'deeper'));
    assert.equal(realHostPath(join(dir, 'root')), '/');
    assert.equal(realHostPath(join(dir, 'root', 'etc')), '/etc');
    assert.equal(realHostPath('/no-such-dir-here/x'), '/no-such-dir-here/x');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
