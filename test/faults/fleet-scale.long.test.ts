import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { enroll } from '../../agent/enrollment/enroller.js';
import { DeviceLink, DEFAULT_LINK_BACKOFF } from '../../agent/link/device-link.js';
import { nativeEd25519 } from '../../protocol/ed25519.js';
import type { EnrollGrant } from '../../protocol/enrollment.js';
import { generateKeyPairs } from '../../protocol/keys.js';
import { createTestFleet, type TestFleet } from '../support/fleet.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { peakRate, TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

// Scenarios 11 and 12: a fleet of 200 devices against one broker and one
// enrollment service, with the production timings (enrollment start-up
// jitter 10 s, enrollment and link back-off as shipped).
//
// The devices are simulated in this one process: each is the agent's own
// enrollment code (enroller.ts, with its start-up jitter) and its own link
// (device-link.ts, with its reconnect back-off), with keys of its own, but
// not 200 agent processes (the bundle takes ~40 MB each and a second of CPU
// to start, which this 2-core machine cannot give 200 times at once). What
// is left out — inventory, reports, the supervisor — does not take part in
// when a device connects. Every connection goes through a relay on loopback
// that records when each TCP connection reached it: the connection rate the
// broker sees.
const DEVICES = 200;
const STARTUP_JITTER_MS = 10_000; // agent/config.ts default
const ENROLL_BOUND_MS = 240_000;

let broker: TestBroker;
let proxy: TcpProxy;
let tf: TestFleet;
const links: DeviceLink[] = [];
const grants: EnrollGrant[] = [];
const ed = nativeEd25519();

before(async () => {
  broker = await startMosquitto();
  proxy = await TcpProxy.start({ host: '127.0.0.1', port: broker.port });
  tf = await createTestFleet(broker);
  await tf.startServer();
});

after(async () => {
  await Promise.all(links.map((l) => l.close()));
  await tf?.close();
  await proxy?.close();
  await broker?.close();
});

/** Connections per second: the mean over the span and the peak in any one-second window. */
function rates(times: readonly number[]): { spanMs: number; mean: number; peak: number } {
  const spanMs = Math.max(...times) - Math.min(...times);
  return { spanMs, mean: times.length / Math.max(1, spanMs / 1000), peak: peakRate(times, 1000) };
}

test(`${DEVICES} devices powered up at once: all enroll, none twice, connections spread over the ${STARTUP_JITTER_MS / 1000} s jitter window`, { timeout: ENROLL_BOUND_MS + 60_000 }, async () => {
  const bootstrap = { ...tf.bootstrap, broker: { ...tf.bootstrap.broker, url: proxy.url } };
  const abort = new AbortController();
  const deadline = setTimeout(() => abort.abort(new Error('not every device enrolled in time')), ENROLL_BOUND_MS + 10_000);
  const poweredAt = Date.now();
  const enrolled = await Promise.all(Array.from({ length: DEVICES }, async (_, i) => {
    const keys = generateKeyPairs();
    const grant = await enroll({
      bootstrap, keys, ed, logger: silentLogger(), signal: abort.signal, startupJitterMs: STARTUP_JITTER_MS,
      claim: { serial: `SCALE-${String(i).padStart(4, '0')}`, model: 'sim', arch: 'arm64', macs: [], hostname: `sim-${i}`, claimToken: tf.claimToken },
    });
    grants.push(grant);
    // Then, as the agent does, its own session at once.
    const link = new DeviceLink({
      deviceId: grant.deviceId, clientId: grant.clientId, logger: silentLogger(), agentVersion: 'sim',
      endpoint: { url: proxy.url, protocolVersion: 5, username: grant.username, password: grant.password },
    });
    links.push(link);
    link.start();
    return { grant, at: Date.now() };
  }));
  clearTimeout(deadline);
  const doneMs = Math.max(...enrolled.map((e) => e.at)) - poweredAt;
  const enrollConnects = proxy.accepted.filter((t) => t >= poweredAt);
  const r = rates(enrollConnects);
  await tf.server!.service.idle();

  // All enrolled, none twice: one registry entry and one "enrolled" audit entry per device, all ids distinct.
  const ids = new Set(enrolled.map((e) => e.grant.deviceId));
  assert.equal(ids.size, DEVICES);
  assert.equal(tf.server!.database.list().length, DEVICES);
  const audit = tf.server!.database.auditLog(10 * DEVICES);
  assert.equal(audit.filter((e) => e.event === 'enrolled').length, DEVICES, 'exactly one enrollment per device');
  assert.equal(new Set(audit.filter((e) => e.event === 'enrolled').map((e) => e.deviceId)).size, DEVICES);

  console.log(`# power-up: ${DEVICES} enrolled in ${doneMs} ms; ${enrollConnects.length} connections at the broker (enrollment and sessions) over ${r.spanMs} ms: mean ${r.mean.toFixed(1)}/s, peak ${r.peak} in one second`);
  // Spread over the jitter window, not one burst: a uniform spread would put
  // ~2×200/10 = 40 connections a second (an enrollment and a session each);
  // three times that is still far from all of them at once.
  assert.ok(r.spanMs >= 0.8 * STARTUP_JITTER_MS, `connections spread over ${r.spanMs} ms only`);
  assert.ok(r.peak <= 3 * (2 * DEVICES * 1000) / STARTUP_JITTER_MS, `a burst of ${r.peak} connections in one second`);
  // 11.8 s measured (docs/reliability.md, scenario 11). The bound dates from
  // before Mosquitto's set_tcp_nodelay and the enroller's re-sending of an
  // unanswered request under the same id, when 200 devices took 94–160 s;
  // one run since is thin ground for a tighter one.
  assert.ok(doneMs <= ENROLL_BOUND_MS, `enrollment took ${doneMs} ms, bound ${ENROLL_BOUND_MS} ms`);
  await waitFor('every device online', () => links.every((l) => l.state === 'online'), 30_000);
});

test(`the broker restarted with ${DEVICES} devices connected: they come back spread out, not in one burst`, async () => {
  assert.equal(links.length, DEVICES, 'the previous test enrolled the fleet');
  const backAt: number[] = [];
  for (const link of links) link.on('state', (s) => { if (s === 'online') backAt.push(Date.now()); });
  const restartAt = Date.now();
  await broker.restart();
  const upAt = Date.now();
  // Within the reconnect spread (10 s) plus a second window for those whose first try hit the broker still down.
  const bound = 3 * DEFAULT_LINK_BACKOFF.floorMs!;
  await waitFor('every device back online', () => backAt.length >= DEVICES, bound);
  const attempts = proxy.accepted.filter((t) => t >= restartAt);
  const a = rates(attempts);
  const b = rates(backAt);
  console.log(`# broker restart (down ${upAt - restartAt} ms): all ${DEVICES} back ${Math.max(...backAt) - upAt} ms after it was up; reconnections: mean ${b.mean.toFixed(1)}/s over ${b.spanMs} ms, peak ${b.peak} in one second; ${attempts.length} connection attempts, peak ${a.peak} in one second`);
  // Spread evenly over the 10 s window that would be 20 a second.
  assert.ok(b.peak <= DEVICES / 4, `${b.peak} of ${DEVICES} devices reconnected within one second`);
  assert.ok(a.peak <= DEVICES / 4, `${a.peak} connection attempts within one second`);
});
