import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { fleetCli } from '../support/deploy-cli.js';
import { logTime, sleep, startFaultDevice } from '../support/fault-device.js';
import type { TestFleet } from '../support/fleet.js';
import type { TestBroker } from '../support/mosquitto.js';
import { cpuFraction, sampleProcess, type ProcSample } from '../support/proc-sample.js';
import { dockerTestEnv, TEST_LABEL, type TestImages } from '../support/supervisor-harness.js';
import { waitFor } from '../support/wait-for.js';
import { removeContainers, testDocker } from '../support/test-docker.js';
import { closeFleetWorld, startFleetWorld } from '../support/fleet-world.js';

// Scenario 10: a service that exits at once, in a loop, beside a healthy one,
// for 10 minutes (TSUNAGU_CRASHLOOP_MINUTES: shorter for a trial, longer to
// see more restarts at the cap). The real agent bundle with the shipped
// supervisor timings. The crash-looper's restarts must follow the documented
// back-off (docs/lifecycle.md, "Crash loops": 2 s doubling, capped at 300 s)
// and never come faster or slower; the healthy service must be the same
// container the whole time, never restarted, healthy; the agent must stay
// cheap (CPU from /proc/<pid>/stat); and no other container may appear.
const minutes = Number(process.env.TSUNAGU_CRASHLOOP_MINUTES ?? 10);
const WINDOW_MS = minutes * 60_000;
/** docs/lifecycle.md: the first restart 2 s after the exit, doubling, at most 300 s. */
const FIRST_DELAY_MS = 2_000;
const CAP_MS = 300_000;
/**
 * A restart comes at the earliest when its delay is over (counted from the
 * exit the agent saw) and at most this much later: the exit's run time, the
 * event reaching the agent, a reconcile pass, the engine's start — on a
 * shared, loaded 2-core machine.
 */
const LATE_MS = 5_000;
/**
 * Agent CPU over the window, as a fraction of one core. Measured 0.29 % over
 * 10 min and 0.23 % over 25 min, at most 1.0 % in any 30 s sample
 * (docs/reliability.md, scenario 10): 2 % is about seven times the mean and
 * above the busiest half-minute, so a loaded machine does not fail it, while
 * anything that polls or spins (a reconcile loop that does not wait for the
 * back-off, a re-read on every healthcheck event) would cost far more.
 */
const CPU_BOUND = 0.02;
const expectedDelay = (failures: number): number => Math.min(CAP_MS, FIRST_DELAY_MS * 2 ** (failures - 1));

const scope = `fault-crash-${randomBytes(3).toString('hex')}`;
let broker: TestBroker;
let tf: TestFleet;
let work: string;
let docker: Docker;
let images: TestImages;

before(async () => {
  const env = dockerTestEnv();
  images = env.images;
  docker = testDocker();
  ({ broker, tf, work } = await startFleetWorld('tsunagu-fault-crash-'));
});

after(async () => {
  await removeContainers(docker, `${LABELS.scope}=${scope}`);
  await closeFleetWorld({ broker, tf, work });
});

interface EngineEvent { action: string; id: string; service: string; at: number }

/** Every container event of the agent's scope, as the engine reports it (times are the engine's). */
async function followEngine(signal: AbortSignal): Promise<EngineEvent[]> {
  const events: EngineEvent[] = [];
  const stream = await docker.getEvents({ filters: { type: ['container'], label: [`${LABELS.scope}=${scope}`] }, abortSignal: signal });
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line === '') continue;
      const e = JSON.parse(line) as { Action: string; id: string; timeNano: number; Actor: { Attributes: Record<string, string> } };
      events.push({ action: e.Action.trim(), id: e.id, service: e.Actor.Attributes[LABELS.service] ?? '?', at: e.timeNano / 1e6 });
    }
  });
  stream.on('error', () => undefined);
  return events;
}

test(`a crash-looping service beside a healthy one for ${minutes} min: back-off capped at ${CAP_MS / 1000} s, the healthy one undisturbed, agent CPU below ${CPU_BOUND * 100} %`, { timeout: WINDOW_MS + 5 * 60_000 }, async () => {
  const device = await startFaultDevice({
    work, name: 'device', tf, brokerUrl: broker.url,
    // Everything else as shipped: supervisor back-off, 30 s probation, 30 s metrics, 30 s keepalive.
    configYaml: `enrollment: { startupJitterMs: 0 }\nruntime: { scope: ${scope} }\n`,
  });
  const abort = new AbortController();
  const engine = await followEngine(abort.signal);
  try {
    const file = join(work, 'compose.yaml');
    writeFileSync(file, stringify({
      services: {
        healthy: {
          image: images.busybox1, network_mode: 'none', restart: 'always', labels: { [TEST_LABEL]: scope },
          // Every 2 s: each check is three engine events the agent's event stream receives. Timeout and
          // retries leave room for a loaded machine: with a 1 s timeout and a single retry the container
          // turned unhealthy once, at a load average of 10.
          healthcheck: { test: ['CMD', 'true'], interval: '2s', timeout: '5s', retries: 3 },
        },
        crasher: {
          image: images.crash, command: ['/bin/sh', '-c', 'exit 3'], network_mode: 'none', restart: 'always', labels: { [TEST_LABEL]: scope },
        },
      },
    }));
    const published = await fleetCli(['deploy', '--dir', tf.fleet.dir, device.deviceId, file, '--no-wait']);
    assert.equal(published.status, 0, published.stderr);

    // Both services up: the healthy one healthy, the crasher started at least once.
    let healthy: Docker.ContainerInspectInfo | undefined;
    await waitFor('the healthy service healthy and the crasher started', async () => {
      const mine = await docker.listContainers({ all: true, filters: { label: [`${LABELS.scope}=${scope}`] } });
      const h = mine.find((c) => c.Labels[LABELS.service] === 'healthy');
      if (h === undefined || !engine.some((e) => e.service === 'crasher' && e.action === 'start')) return false;
      healthy = await docker.getContainer(h.Id).inspect();
      return healthy.State.Health?.Status === 'healthy';
    }, 120_000);
    const healthyId = healthy!.Id;
    const healthyStartedAt = healthy!.State.StartedAt;
    const crasherId = engine.find((e) => e.service === 'crasher' && e.action === 'start')!.id;

    // The window: the agent's CPU, the healthy container and the scope's containers watched throughout.
    const pid = device.agent.pid!;
    const cpu: ProcSample[] = [sampleProcess(pid)];
    const windowStart = Date.now();
    const strangers = new Set<string>();
    let checks = 0;
    while (Date.now() - windowStart < WINDOW_MS) {
      await sleep(Math.min(10_000, WINDOW_MS - (Date.now() - windowStart)));
      const h = await docker.getContainer(healthyId).inspect();
      assert.equal(h.State.Running, true, 'the healthy container is running');
      assert.equal(h.State.StartedAt, healthyStartedAt, 'the healthy container was not restarted');
      assert.equal(h.RestartCount, 0);
      assert.equal(h.State.Health?.Status, 'healthy', `the healthy container is healthy: ${JSON.stringify(h.State.Health?.Log)}`);
      for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABELS.scope}=${scope}`] } })) {
        if (c.Id !== healthyId && c.Id !== crasherId) strangers.add(`${c.Labels[LABELS.service]}:${c.Id.slice(0, 12)}`);
      }
      checks++;
      if (Date.now() - cpu.at(-1)!.at >= 30_000) cpu.push(sampleProcess(pid));
    }
    const windowEnd = Date.now();
    cpu.push(sampleProcess(pid));
    abort.abort();

    // The crash loop, from the engine's own events.
    const crasherStarts = engine.filter((e) => e.id === crasherId && e.action === 'start').map((e) => e.at);
    const crasherDies = engine.filter((e) => e.id === crasherId && e.action === 'die');
    const intervals = crasherStarts.slice(1).map((t, i) => t - crasherStarts[i]!);
    // The agent's side: one back-off per exit, with the retry time it scheduled.
    const backoffs = device.agent.lines.filter((l) => l.msg === 'service crasher: backoff');
    const scheduled = backoffs.map((l, i) => ({ failures: i + 1, delayMs: Number(l.retryAt) - logTime(l) }));
    const cpuWindow = cpuFraction(cpu[0]!, cpu.at(-1)!);
    const cpuPeak = Math.max(...cpu.slice(1).map((s, i) => cpuFraction(cpu[i]!, s)));
    const healthyEvents = engine.filter((e) => e.id === healthyId);
    const creates = engine.filter((e) => e.action === 'create');
    const late = intervals.map((iv, k) => iv - expectedDelay(k + 1));
    console.log(`# ${minutes} min (window ${((windowEnd - windowStart) / 60_000).toFixed(1)} min, ${checks} checks): crasher started ${crasherStarts.length} times, exited ${crasherDies.length} times`);
    console.log(`# restart intervals (s): ${intervals.map((i) => (i / 1000).toFixed(1)).join(', ')}`);
    console.log(`# late beyond the documented delay (ms): ${late.map((l) => Math.round(l)).join(', ')}`);
    // Where the lateness goes: from the exit to the agent counting it, and from the retry time to the engine's start.
    const counted = backoffs.map((l, i) => logTime(l) - (crasherDies[i]?.at ?? NaN)).filter((ms) => !Number.isNaN(ms));
    const startLag = backoffs.map((l, i) => (crasherStarts[i + 1] ?? NaN) - Number(l.retryAt)).filter((ms) => !Number.isNaN(ms));
    console.log(`# exit → back-off counted (ms): ${counted.map(Math.round).join(', ')}; retry time → engine start (ms): ${startLag.map(Math.round).join(', ')}`);
    console.log(`# ${intervals.filter((iv) => iv >= CAP_MS).length} intervals at the cap`);
    console.log(`# retries the agent scheduled (s after the exit): ${scheduled.map((s) => (s.delayMs / 1000).toFixed(1)).join(', ')}`);
    console.log(`# healthy container ${healthyId.slice(0, 12)}: ${healthyEvents.filter((e) => e.action.startsWith('exec_die')).length} health checks, events other than checks: ${healthyEvents.filter((e) => !e.action.startsWith('exec_') && !e.action.startsWith('health_status')).map((e) => e.action).join(', ')}`);
    console.log(`# agent CPU: ${(cpuWindow * 100).toFixed(2)} % of one core over the window (${(cpu.at(-1)!.cpuTicks - cpu[0]!.cpuTicks) / 100} s of CPU), peak ${(cpuPeak * 100).toFixed(2)} % over a 30 s sample; RSS ${(cpu.at(-1)!.rssBytes / 2 ** 20).toFixed(1)} MB`);

    // Back-off: every restart after its documented delay, never more than LATE_MS later;
    // growing until the cap, then at the cap.
    assert.ok(intervals.length >= 3, `only ${crasherStarts.length} starts of the crasher`);
    intervals.forEach((iv, k) => {
      const want = expectedDelay(k + 1);
      assert.ok(iv >= want - 100, `restart ${k + 1} came ${iv} ms after the one before, before its ${want} ms back-off`);
      assert.ok(iv <= want + LATE_MS, `restart ${k + 1} came ${iv} ms after the one before, more than ${LATE_MS} ms past its ${want} ms back-off`);
      if (k > 0 && want < CAP_MS) assert.ok(iv > intervals[k - 1]!, `restart interval ${k + 1} (${iv} ms) did not grow`);
    });
    assert.ok(intervals.every((iv) => iv <= CAP_MS + LATE_MS), 'no interval beyond the cap');
    // The loop is still going at the end: the time since the last start is within the next delay.
    const pending = windowEnd - crasherStarts.at(-1)!;
    assert.ok(pending <= expectedDelay(crasherStarts.length) + LATE_MS, `no restart for ${pending} ms at the end of the window`);
    // The agent counted each exit once, and scheduled the documented delay, the cap included.
    assert.ok(backoffs.length === crasherDies.length || backoffs.length === crasherDies.length - 1, `${backoffs.length} back-offs for ${crasherDies.length} exits`);
    for (const s of scheduled) {
      const want = expectedDelay(s.failures);
      assert.ok(s.delayMs <= want && s.delayMs >= want - 1_000, `retry ${s.failures} scheduled ${s.delayMs} ms after the exit, documented ${want} ms`);
    }

    // The cap itself: once the doubling passes 300 s (the 9th exit, about 8.5 min into the loop), the
    // agent schedules 300 s, not 512; a longer run then sees the restarts come at the cap.
    const capReachedAfterMs = [1, 2, 3, 4, 5, 6, 7, 8].reduce((sum, f) => sum + expectedDelay(f) + LATE_MS, 0);
    if (windowEnd - crasherStarts[0]! > capReachedAfterMs) {
      assert.ok(scheduled.some((s) => FIRST_DELAY_MS * 2 ** (s.failures - 1) > CAP_MS), 'the loop reached the cap');
    }

    // The healthy service: one container, started once, never stopped, only ever healthy.
    assert.deepEqual(healthyEvents.filter((e) => ['start', 'die', 'kill', 'stop', 'restart', 'destroy', 'oom'].includes(e.action)).map((e) => e.action), ['start']);
    assert.deepEqual([...new Set(healthyEvents.filter((e) => e.action.startsWith('health_status')).map((e) => e.action))], ['health_status: healthy']);
    // No other container: one created per service, nothing else listed in the scope at any check.
    assert.deepEqual(creates.map((e) => e.service).sort(), ['crasher', 'healthy']);
    assert.deepEqual([...strangers], []);
    assert.ok(cpuWindow < CPU_BOUND, `agent CPU ${(cpuWindow * 100).toFixed(2)} % of one core over the window`);
    assert.equal(device.agent.lines.some((l) => String(l.msg).startsWith('stderr:')), false, 'nothing on stderr');
  } finally {
    abort.abort();
    await device.agent.stop();
  }
});
