import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ReportedState } from '../../../protocol/desired.js';
import type { ReceivedDeviceEvent } from '../../../protocol/events/device-events.js';
import { defaultEd25519 } from '../../../protocol/ed25519.js';
import { describeResult, jsonDeployOutput, textDeployOutput } from '../../../provisioning/deploy/deploy-output.js';
import { exitCodeFor, judgeState, parseEvent, parseState } from '../../../provisioning/deploy/rollout.js';
import { chooseVersion } from '../../../provisioning/deploy/version.js';
import { createFleetDir } from '../../../provisioning/fleet-dir.js';
import { FleetSigner } from '../../../provisioning/fleet-signer.js';

function state(over: Partial<ReportedState>): ReportedState {
  return { v: 1, at: 1, desiredVersion: null, appliedVersion: null, status: 'applying', error: null, services: [], ...over };
}

test('the version is the signer counter, raised above anything seen on the device', () => {
  assert.equal(chooseVersion(1000, {}), 1000);
  assert.equal(chooseVersion(1000, { desired: 5, desiredVersion: 7, appliedVersion: 6 }), 1000);
  assert.equal(chooseVersion(1000, { desired: 1000 }), 1001);
  assert.equal(chooseVersion(1000, { desiredVersion: 2000, appliedVersion: null }), 2001);
  assert.equal(chooseVersion(1000, { appliedVersion: 3000, desired: null }), 3001);
});

test('reserved counters rise strictly, across signer instances and with a clock that goes back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-version-'));
  try {
    const fleet = createFleetDir(join(dir, 'fleet'), {
      fleetId: 'f', broker: { url: 'mqtt://127.0.0.1:1', protocolVersion: 5, username: 'u', password: 'p', kind: 'mosquitto' }, claim: { mode: 'approve' },
    });
    let now = 5_000;
    const a = new FleetSigner(fleet, defaultEd25519(), () => now);
    const v1 = a.reserveCounter();
    const msg = a.sign({ to: 'd-1', typ: 'desired', data: {}, lifetimeMs: 1 });
    assert.ok(msg.bytes.length > 0, 'msg.bytes.length > 0');
    now = 10; // the clock went back
    const b = new FleetSigner(fleet, defaultEd25519(), () => now);
    const v2 = b.reserveCounter();
    assert.equal(v1, 5_000);
    assert.equal(v2, 5_002, 'above the reserved value and the signed message\'s counter');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rollout judgement: applied needs the version applied and synced/degraded; failure must name our version', () => {
  assert.deepEqual(judgeState(state({ appliedVersion: 10, desiredVersion: 10, status: 'synced' }), 10)?.kind, 'applied');
  assert.deepEqual(judgeState(state({ appliedVersion: 10, desiredVersion: 10, status: 'degraded' }), 10)?.kind, 'applied');
  assert.deepEqual(judgeState(state({ appliedVersion: 12, desiredVersion: 12, status: 'synced' }), 10)?.kind, 'applied', 'superseded by a newer version');
  assert.equal(judgeState(state({ appliedVersion: 9, desiredVersion: 10, status: 'applying' }), 10), null);
  assert.equal(judgeState(state({ appliedVersion: 9, desiredVersion: 9, status: 'synced' }), 10), null, 'the old retained state');
  assert.equal(judgeState(state({ appliedVersion: 10, desiredVersion: 11, status: 'applying' }), 10)?.kind, undefined);
  assert.equal(judgeState(state({ appliedVersion: 8, desiredVersion: 9, status: 'failed' }), 10), null, 'an older failure does not end our rollout');
  assert.equal(judgeState(state({ appliedVersion: 9, desiredVersion: 10, status: 'failed' }), 10)?.kind, 'failed');
  assert.equal(judgeState(state({ appliedVersion: 9, desiredVersion: 10, status: 'refused' }), 10)?.kind, 'failed');
  assert.equal(exitCodeFor({ kind: 'applied', status: 'synced', state: state({}) }), 0);
  assert.equal(exitCodeFor({ kind: 'failed', status: 'refused', state: state({}) }), 2);
  assert.equal(exitCodeFor({ kind: 'timeout', state: null }), 3);
});

/** An event as the fleet reads it off the wire. */
function received(event: Record<string, unknown>): ReceivedDeviceEvent {
  const r = parseEvent(Buffer.from(JSON.stringify(event)));
  assert.ok(r !== undefined, `not an event: ${JSON.stringify(event)}`);
  return r;
}

test('reports are parsed leniently: junk is ignored, not thrown', () => {
  assert.equal(parseState(Buffer.from('not json')), undefined);
  assert.equal(parseState(Buffer.alloc(0)), undefined);
  assert.equal(parseState(Buffer.from(JSON.stringify({ v: 1 }))), undefined);
  assert.equal(parseState(Buffer.from(JSON.stringify(state({ status: 'synced' }))))?.status, 'synced');
  const progress = parseEvent(Buffer.from('{"v":1,"at":1,"type":"service-pull-progress","service":"web","image":"nginx","currentBytes":5,"totalBytes":10}'));
  assert.equal(progress?.known === true && progress.event.type === 'service-pull-progress' ? progress.event.currentBytes : undefined, 5);
  assert.equal(parseEvent(Buffer.from('{"type":"x"}')), undefined);
  // A known type with members that do not match its schema is not an event of that type.
  assert.equal(parseEvent(Buffer.from('{"v":1,"at":1,"type":"service-pull-progress","service":"web","image":"nginx","currentBytes":"5","totalBytes":10}')), undefined);
  // A type from a newer agent: kept with its frame and every member, for display.
  assert.deepEqual(parseEvent(Buffer.from('{"v":1,"at":1,"type":"service-teleported","service":"web","to":"mars"}')),
    { known: false, event: { v: 1, at: 1, type: 'service-teleported', service: 'web', to: 'mars' } });
});

test('output: JSON lines only with --json; plain lines at 10 % steps; a table for several devices; reasons shown', () => {
  const refused = state({
    desiredVersion: 10, appliedVersion: 9, status: 'refused',
    error: { code: 'UNSUPPORTED', message: 'services.web.security_opt: not supported', services: { web: 'security_opt is not supported' } },
  });
  const result = { deviceId: 'd-1', version: 10, outcome: { kind: 'failed' as const, status: 'refused' as const, state: refused } };
  assert.deepEqual(describeResult(result).detail, ['UNSUPPORTED: services.web.security_opt: not supported', '  web: security_opt is not supported']);

  let out = '';
  const json = jsonDeployOutput((t) => { out += t; });
  json.published('d-1', 10);
  json.event('d-1', received({ v: 1, at: 1, type: 'service-pull-progress', service: 'web', image: 'nginx', currentBytes: 1, totalBytes: 2 }));
  json.result(result);
  json.summary([result]);
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines.map((l) => l.type), ['published', 'event', 'result']);
  assert.equal(lines[1]!.event, 'service-pull-progress');
  assert.deepEqual(lines[2]!.error, refused.error);

  out = '';
  const plain = textDeployOutput((t) => { out += t; }, { tty: false, multi: false });
  for (const current of [0, 3, 5, 12, 100]) plain.event('d-1', received({ v: 1, at: 1, type: 'service-pull-progress', service: 'web', image: 'nginx', currentBytes: current, totalBytes: 100 }));
  plain.result(result);
  assert.deepEqual(out.trim().split('\n'), [
    'web nginx: pulling 0% (0.0 MiB of 0.0 MiB)', 'web nginx: pulling 12% (0.0 MiB of 0.0 MiB)', 'web nginx: pulling 100% (0.0 MiB of 0.0 MiB)',
    'd-1: version 10 failed (refused)', '  UNSUPPORTED: services.web.security_opt: not supported', '    web: security_opt is not supported',
  ]);
  assert.ok(!out.includes('\r'), 'no control characters when not on a TTY');

  out = '';
  const tty = textDeployOutput((t) => { out += t; }, { tty: true, multi: false });
  tty.event('d-1', received({ v: 1, at: 1, type: 'service-pull-progress', service: 'web', image: 'nginx', currentBytes: 50, totalBytes: 100 }));
  assert.ok(out.startsWith(`\r\u001b[Kweb nginx [${'#'.repeat(15)}${' '.repeat(15)}] 50%`), JSON.stringify(out));

  out = '';
  const multi = textDeployOutput((t) => { out += t; }, { tty: false, multi: true });
  multi.summary([result, { deviceId: 'd-2', version: 11, outcome: { kind: 'timeout', state: null } }]);
  assert.deepEqual(out.trim().split('\n').map((l) => l.split(/\s{2,}/).slice(0, 4)), [
    ['DEVICE', 'VERSION', 'RESULT', 'STATUS'], ['d-1', '10', 'failed', 'refused'], ['d-2', '11', 'timeout', '-'],
  ]);
});

test('text from a device reaches the terminal as visible escapes, never as control sequences', () => {
  let out = '';
  // A title-setting OSC sequence and a cursor move, as a compromised device could send them.
  const hostile = 'web\u001b]0;owned\u0007\u001b[2A';
  const tty = textDeployOutput((t) => { out += t; }, { tty: true, multi: true });
  tty.event('d-1', received({ v: 1, at: 1, type: 'service-pull-progress', service: hostile, image: 'nginx', currentBytes: 50, totalBytes: 100 }));
  tty.event('d-1', received({ v: 1, at: 1, type: 'service-exited', service: hostile, containerId: 'c1', exitCode: 1 }));
  tty.summary([{ deviceId: 'd-1', version: 10, outcome: { kind: 'timeout', state: null } }]);
  // The output's own bar control (\r and ESC [K) stays; nothing the device sent is a live escape.
  const withoutOwn = out.replaceAll('\r\u001b[K', '');
  assert.ok(!withoutOwn.includes('\u001b'), JSON.stringify(out));
  assert.ok(!withoutOwn.includes('\u0007'), "!withoutOwn.includes('\\u0007')");
  assert.ok(out.includes('web\\x1b]0;owned\\x07\\x1b[2A'), JSON.stringify(out));
});
