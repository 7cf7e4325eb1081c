import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MetricsReportSchema } from '../../protocol/reports.js';
import { isLinkState, logTime, sleep, startFaultDevice } from '../support/fault-device.js';
import { fleetSession } from '../support/fleet-session.js';
import { closeProxiedFleetWorld, startProxiedFleetWorld, type FleetSession, type ProxiedFleetWorld } from '../support/fleet-world.js';
import { waitFor } from '../support/wait-for.js';

// Scenario 2: the link between agent and broker cut for 60 s (every
// connection reset, every new one refused, by a relay the agent connects
// through) and restored. The broker stays up: the fleet watches from the
// other side of the cut and must receive every report made during it, in
// order, once the link is back.
const CUT_MS = 60_000;
const BACKOFF_CAP_MS = 5_000;
/** Stated recovery bound: one back-off ceiling, plus the connection and its setup. */
const RECOVERY_BOUND_MS = BACKOFF_CAP_MS + 3_000;
const METRICS_INTERVAL_MS = 1_000;

let world: ProxiedFleetWorld | undefined;
let fleet: FleetSession;

before(async () => {
  world = await startProxiedFleetWorld('tsunagu-fault-cut-');
  fleet = await fleetSession(world.tf, world.broker.url);
});

after(async () => {
  await fleet?.close();
  await closeProxiedFleetWorld(world ?? {});
});

test(`link cut for ${CUT_MS / 1000} s: every report made meanwhile is delivered, in order, once; back online within ${RECOVERY_BOUND_MS} ms`, async () => {
  const { work, tf, proxy } = world!;
  const device = await startFaultDevice({
    work, name: 'cut', tf, brokerUrl: proxy.url,
    configYaml: `
enrollment: { startupJitterMs: 0 }
link: { keepaliveSeconds: 5, backoffBaseMs: 1000, backoffCapMs: ${BACKOFF_CAP_MS} }
reports: { metricsIntervalMs: ${METRICS_INTERVAL_MS}, sampleIntervalMs: ${METRICS_INTERVAL_MS} }
`,
  });
  try {
    const metrics: number[] = [];
    await fleet.link.watch(device.deviceId, ['metrics'], (r) => {
      if (!r.retained) metrics.push(MetricsReportSchema.parse(JSON.parse(r.payload.toString())).at);
    });
    await waitFor('a first live report', () => metrics.length >= 2, 10_000);

    const cutAt = Date.now();
    proxy.cut();
    const offline = await device.agent.waitForLog((l) => isLinkState('offline')(l) && logTime(l) >= cutAt - 1000, 5_000);
    await sleep(CUT_MS - (Date.now() - cutAt));
    const restoredAt = Date.now();
    proxy.restore();
    const online = await device.agent.waitForLog((l) => isLinkState('online')(l) && logTime(l) >= restoredAt, RECOVERY_BOUND_MS + 5_000);
    const recoveryMs = logTime(online) - restoredAt;
    // The buffered reports drain; the newest one made after the link is back marks the end.
    await waitFor('the reports made after the link came back', () => metrics.some((at) => at > restoredAt + recoveryMs + METRICS_INTERVAL_MS), 20_000);

    const made = metrics.filter((at) => at > cutAt && at < restoredAt);
    const gaps = metrics.slice(1).map((at, i) => at - metrics[i]!);
    console.log(`# link cut: detected in ${logTime(offline) - cutAt} ms, back online ${recoveryMs} ms after the restore; ${made.length} reports made during the cut delivered, largest gap between consecutive reports ${Math.max(...gaps)} ms`);

    assert.ok(recoveryMs <= RECOVERY_BOUND_MS, `back online in ${recoveryMs} ms, bound ${RECOVERY_BOUND_MS} ms`);
    for (let i = 1; i < metrics.length; i++) assert.ok(metrics[i]! > metrics[i - 1]!, `report ${i} out of order or delivered twice`);
    // Nothing lost: one report per interval throughout, the cut included (a sample may slip by a fraction of an interval).
    assert.ok(made.length >= Math.floor(CUT_MS / METRICS_INTERVAL_MS) - 2, `${made.length} reports made during the cut reached the fleet`);
    assert.ok(Math.max(...gaps) < 2.5 * METRICS_INTERVAL_MS, `a hole of ${Math.max(...gaps)} ms in the reports`);
  } finally {
    await device.agent.stop();
  }
});
