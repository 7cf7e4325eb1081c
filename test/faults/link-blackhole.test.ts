import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isLinkState, logTime, startFaultDevice } from '../support/fault-device.js';
import { closeProxiedFleetWorld, startProxiedFleetWorld, type ProxiedFleetWorld } from '../support/fleet-world.js';

// Scenario 3: a silent black hole between agent and broker — bytes stop
// moving, nothing is closed or reset. Only the MQTT keepalive can notice:
// MQTT.js (5.x, KeepaliveManager) counts from the last packet it received,
// sends PINGREQ after one keepalive period and gives up half a period later,
// so a dead link is noticed at most 1.5 × link.keepaliveSeconds after the
// last packet that came through (docs/reliability.md, scenario 3).
const KEEPALIVE_S = 5; // the smallest the agent config accepts
const DETECTION_BOUND_MS = 1.5 * KEEPALIVE_S * 1000;
const BACKOFF_CAP_MS = 1_000;
// Timers fire late on a loaded machine; the bound itself is MQTT.js's arithmetic.
const TIMER_SLACK_MS = 750;

let world: ProxiedFleetWorld | undefined;

before(async () => {
  world = await startProxiedFleetWorld('tsunagu-fault-blackhole-');
});

after(async () => {
  await closeProxiedFleetWorld(world ?? {});
});

test(`a silent black hole is noticed within 1.5 × keepalive (${DETECTION_BOUND_MS} ms) and the agent reconnects once packets pass`, async () => {
  const { work, tf, proxy } = world!;
  const device = await startFaultDevice({
    work, name: 'blackhole', tf, brokerUrl: proxy.url,
    // Metrics rarely, so that the keepalive (not a report's missing ack) is what must notice.
    configYaml: `
enrollment: { startupJitterMs: 0 }
link: { keepaliveSeconds: ${KEEPALIVE_S}, backoffBaseMs: 200, backoffCapMs: ${BACKOFF_CAP_MS} }
reports: { metricsIntervalMs: 600000, sampleIntervalMs: 600000 }
`,
  });
  try {
    const detections: number[] = [];
    // Twice, from different points of the keepalive cycle.
    for (const offsetMs of [300, 3_700]) {
      await new Promise((r) => setTimeout(r, offsetMs));
      const holeAt = Date.now();
      proxy.blackhole();
      const offline = await device.agent.waitForLog((l) => isLinkState('offline')(l) && logTime(l) >= holeAt, DETECTION_BOUND_MS + 5_000);
      const detectedMs = logTime(offline) - holeAt;
      detections.push(detectedMs);
      // Not a close seen by the agent: the keepalive gave up. MQTT.js closes the
      // socket before it emits the error, so that line may come just after 'offline'.
      await device.agent.waitForLog((l) => l.msg === 'link error' && String(l.err).includes('Keepalive timeout') && logTime(l) >= holeAt, 2_000);
      assert.ok(detectedMs <= DETECTION_BOUND_MS + TIMER_SLACK_MS, `noticed after ${detectedMs} ms, bound ${DETECTION_BOUND_MS} ms`);

      const restoredAt = Date.now();
      proxy.restore();
      const online = await device.agent.waitForLog((l) => isLinkState('online')(l) && logTime(l) >= restoredAt, BACKOFF_CAP_MS + 10_000);
      console.log(`# black hole: noticed after ${detectedMs} ms (bound ${DETECTION_BOUND_MS}), online again ${logTime(online) - restoredAt} ms after packets pass`);
    }
    assert.equal(detections.length, 2);
  } finally {
    await device.agent.stop();
  }
});
