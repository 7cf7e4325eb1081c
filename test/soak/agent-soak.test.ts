import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { AgentProcess } from '../support/agent-process.js';
import { fleetCli } from '../support/deploy-cli.js';
import { cpuFraction, sampleProcess, type ProcSample } from '../support/proc-sample.js';
import { dockerTestEnv, TEST_LABEL } from '../support/supervisor-harness.js';
import { removeContainers, testDocker } from '../support/test-docker.js';
import { closeFleetWorld, startFleetWorld } from '../support/fleet-world.js';
import { AGENT_ENVIRONMENT, AGENT_NODE_FLAGS } from '../../scripts/agent-launch.mjs';
import { inspectIfPresent } from '../support/inspect-listed.js';

// `npm run soak` (not in CI): the real agent bundle for an hour (TSUNAGU_SOAK_MINUTES) with the
// broker restarted every few minutes, a deploy every minute and a crash-looping service beside
// it. Memory, descriptors, libuv handles and link listeners are sampled and must stay flat; the
// figures go to TSUNAGU_SOAK_OUT (JSON) and are printed as a table for docs/reliability.md.

const minutes = Number(process.env.TSUNAGU_SOAK_MINUTES ?? 60);
const brokerRestartEveryMs = Number(process.env.TSUNAGU_SOAK_BROKER_RESTART_MINUTES ?? 4) * 60_000;
const deployEveryMs = 60_000;
const sampleEveryMs = 30_000;
/**
 * What the retained heap may gain from the second quarter to the last. Nothing the agent keeps
 * grows with deploys, reconnections or time (docs/reliability.md, Soak); what is left is V8
 * compiling functions a rare path runs for the first time.
 */
const HEAP_LIVE_SLACK_BYTES = 1024 * 1024;
/** What resident memory may gain over the same span: the live heap's slack, plus pages V8 and malloc keep. */
const RSS_SLACK_BYTES = 4 * 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
// To look for a leak: extra node flags for the agent (e.g. `--heapsnapshot-signal=SIGUSR1
// --diagnostic-dir=/tmp/snaps`, or `--trace-gc`, whose lines TSUNAGU_TEST_VERBOSE=1 shows) and
// the minutes at which the test sends it SIGUSR1 (TSUNAGU_SOAK_HEAPSNAPSHOT_MINUTES=4,19): node
// writes a heap snapshot, after a full GC. Writing one stalls the agent for seconds, long enough
// for the broker to drop it (keepalive): a snapshot costs a reconnection. Bundle with
// TSUNAGU_BUNDLE_KEEP_NAMES=1 for the source's class names in the snapshot.
const nodeArgs = (process.env.TSUNAGU_SOAK_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
const snapshotMinutes = (process.env.TSUNAGU_SOAK_HEAPSNAPSHOT_MINUTES ?? '').split(',').filter((m) => m !== '').map(Number).sort((a, b) => a - b);

interface Sample extends ProcSample { minute: number; heapUsedBytes: number; heapLiveBytes: number; handles: number; linkListeners: number }

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

test(`soak: ${minutes} min of broker restarts, deploys and a crash loop; the agent's resources stay flat`, { timeout: (minutes + 10) * 60_000 }, async () => {
  const { images } = dockerTestEnv();
  const docker = testDocker();
  const scope = `soak-${randomBytes(3).toString('hex')}`;
  const { broker, tf, work, bootstrapPath } = await startFleetWorld('tsunagu-soak-');
  const agent = new AgentProcess({
    stateDir: join(work, 'device'), bootstrapPath,
    // Started as a device starts it (scripts/agent-launch.mjs): the node flags decide how V8
    // grows and collects the heap. --expose-gc: each diagnostics dump also measures the heap
    // after a full collection (heapLiveBytes), so that garbage V8 has not collected yet (it may
    // wait an hour to) is not taken for a leak, nor hides one.
    nodeArgs: [...AGENT_NODE_FLAGS, '--expose-gc', ...nodeArgs], env: AGENT_ENVIRONMENT,
    configYaml: `enrollment: { startupJitterMs: 0 }\nlink: { keepaliveSeconds: 10, backoffBaseMs: 200, backoffCapMs: 5000 }\nruntime: { scope: ${scope} }\nrollout: { probationMs: 0 }\nreports: { metricsIntervalMs: 10000, sampleIntervalMs: 5000 }\n`,
  });
  const samples: Sample[] = [];
  const deploys: { n: number; cliStatus: number | null; convergedMs: number | null }[] = [];
  let brokerRestarts = 0;
  const started = Date.now();
  try {
    const deviceId = await agent.enrolledAndOnline(60_000);
    const pid = agent.pid!;

    const webContainers = async (): Promise<Docker.ContainerInfo[]> =>
      (await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${scope}`, 'io.tsunagu.service=web'] } }));
    const deploy = async (n: number): Promise<void> => {
      const image = n % 2 === 0 ? images.busybox1 : images.busybox2;
      const file = join(work, `compose-${n}.yaml`);
      writeFileSync(file, stringify({
        services: {
          web: { image, network_mode: 'none', restart: 'always', environment: { ROUND: String(n) }, labels: { [TEST_LABEL]: scope } },
          crasher: { image: images.crash, network_mode: 'none', restart: 'always', labels: { [TEST_LABEL]: scope } },
        },
      }));
      const began = Date.now();
      const r = await fleetCli(['deploy', '--dir', tf.fleet.dir, deviceId, file, '--no-wait']);
      let convergedMs: number | null = null;
      while (Date.now() - began < deployEveryMs - 5000) {
        const all = await webContainers().catch(() => []);
        const running = all.filter((c) => c.State === 'running');
        if (all.length === 1 && running.length === 1 && running[0]!.Image === image) {
          // Gone since the listing: replaced meanwhile, looked at again next time round.
          const info = await inspectIfPresent(docker, running[0]!.Id);
          if (info?.Config.Env.includes(`ROUND=${n}`) === true) { convergedMs = Date.now() - began; break; }
        }
        await sleep(500);
      }
      deploys.push({ n, cliStatus: r.status, convergedMs });
    };
    const sample = async (): Promise<void> => {
      const dump = agent.lines.length;
      process.kill(pid, 'SIGUSR2');
      const line = await agent.waitForLog((l) => l.msg === 'diagnostics' && agent.lines.indexOf(l) >= dump, 10_000);
      const d = line.diagnostics as { heapUsedBytes: number; heapLiveBytes: number; activeResources: Record<string, number>; linkListeners: number };
      samples.push({
        ...sampleProcess(pid), minute: (Date.now() - started) / 60_000, heapUsedBytes: d.heapUsedBytes, heapLiveBytes: d.heapLiveBytes,
        handles: Object.values(d.activeResources).reduce((a, b) => a + b, 0), linkListeners: d.linkListeners,
      });
    };

    // The snapshot is written on the agent's main thread (seconds, on a loaded machine):
    // a diagnostics line asked for just after it is the sign that it is done.
    const snapshot = async (): Promise<void> => {
      const dump = agent.lines.length;
      process.kill(pid, 'SIGUSR1');
      await sleep(1000);
      process.kill(pid, 'SIGUSR2');
      await agent.waitForLog((l) => l.msg === 'diagnostics' && agent.lines.indexOf(l) >= dump, 300_000);
    };

    let nextDeploy = Date.now();
    let nextRestart = Date.now() + brokerRestartEveryMs;
    let nextSample = Date.now();
    let n = 0;
    const end = started + minutes * 60_000;
    while (Date.now() < end) {
      if (Date.now() >= nextSample) { await sample(); nextSample += sampleEveryMs; }
      if (snapshotMinutes.length > 0 && Date.now() >= started + snapshotMinutes[0]! * 60_000) { snapshotMinutes.shift(); await snapshot(); }
      if (Date.now() >= nextRestart) { await broker.restart(3000); brokerRestarts++; nextRestart += brokerRestartEveryMs; }
      if (Date.now() >= nextDeploy) { await deploy(n++); nextDeploy += deployEveryMs; }
      await sleep(250);
    }
    // A quiet minute after the last disturbance: the figures compared are the settled ones.
    await sleep(30_000);
    await sample();
    assert.equal(agent.lines.some((l) => String(l.msg).startsWith('stderr:')), false, 'no uncaught error on stderr');

    const report = summarize(samples, deploys, brokerRestarts);
    const out = process.env.TSUNAGU_SOAK_OUT ?? join(tmpdir(), `tsunagu-soak-${Date.now()}.json`);
    writeFileSync(out, `${JSON.stringify({ minutes, brokerRestarts, deploys, samples, report }, null, 1)}\n`);
    process.stdout.write(`\nsoak figures (${out}):\n${report.table}\n`);

    // Convergence: every deploy but the ones overlapping a broker outage reached the device;
    // the last one certainly did.
    const converged = deploys.filter((d) => d.convergedMs !== null).length;
    assert.ok(converged >= deploys.length - brokerRestarts, `${converged} of ${deploys.length} deploys converged`);
    assert.ok(deploys.at(-1)!.convergedMs !== null, 'the last deploy converged');
    // Flat: the settled figures of the last quarter against those of the second (after warm-up).
    // The one-hour run of docs/reliability.md moved RSS by 0.2 MB and the live heap by 0.1 MB.
    const { early, late } = report;
    assert.ok(late.rssBytes <= early.rssBytes + RSS_SLACK_BYTES, `RSS ${early.rssBytes} → ${late.rssBytes}`);
    assert.ok(late.heapLiveBytes <= early.heapLiveBytes + HEAP_LIVE_SLACK_BYTES, `live heap ${early.heapLiveBytes} → ${late.heapLiveBytes}`);
    assert.ok(late.fds <= early.fds + 3, `fds ${early.fds} → ${late.fds}`);
    assert.ok(late.handles <= early.handles + 3, `libuv handles ${early.handles} → ${late.handles}`);
    assert.ok(late.linkListeners <= early.linkListeners + 2, `link listeners ${early.linkListeners} → ${late.linkListeners}`);
  } finally {
    await agent.stop();
    await removeContainers(docker, `${TEST_LABEL}=${scope}`);
    await closeFleetWorld({ broker, tf, work });
  }
});

type Figures = Pick<Sample, 'rssBytes' | 'heapUsedBytes' | 'heapLiveBytes' | 'fds' | 'handles' | 'linkListeners'>;

function summarize(samples: Sample[], deploys: { convergedMs: number | null }[], brokerRestarts: number): { early: Figures; late: Figures; table: string } {
  const q = Math.max(1, Math.floor(samples.length / 4));
  const second = samples.slice(q, 2 * q);
  const last = samples.slice(-q);
  const pick = (xs: Sample[]): Figures => ({
    rssBytes: median(xs.map((s) => s.rssBytes)), heapUsedBytes: median(xs.map((s) => s.heapUsedBytes)), heapLiveBytes: median(xs.map((s) => s.heapLiveBytes)),
    fds: median(xs.map((s) => s.fds)), handles: median(xs.map((s) => s.handles)), linkListeners: median(xs.map((s) => s.linkListeners)),
  });
  const early = pick(second);
  const late = pick(last);
  const mb = (b: number): string => (b / 1024 / 1024).toFixed(1);
  const cpu = cpuFraction(samples[0]!, samples.at(-1)!);
  const converged = deploys.filter((d) => d.convergedMs !== null);
  const rows = [
    '| figure | second quarter (median) | last quarter (median) | min – max over the run |',
    '|---|---|---|---|',
    `| RSS (MB) | ${mb(early.rssBytes)} | ${mb(late.rssBytes)} | ${mb(Math.min(...samples.map((s) => s.rssBytes)))} – ${mb(Math.max(...samples.map((s) => s.rssBytes)))} |`,
    `| JS heap used (MB) | ${mb(early.heapUsedBytes)} | ${mb(late.heapUsedBytes)} | ${mb(Math.min(...samples.map((s) => s.heapUsedBytes)))} – ${mb(Math.max(...samples.map((s) => s.heapUsedBytes)))} |`,
    `| JS heap live, after a full GC (MB) | ${mb(early.heapLiveBytes)} | ${mb(late.heapLiveBytes)} | ${mb(Math.min(...samples.map((s) => s.heapLiveBytes)))} – ${mb(Math.max(...samples.map((s) => s.heapLiveBytes)))} |`,
    `| open fds | ${early.fds} | ${late.fds} | ${Math.min(...samples.map((s) => s.fds))} – ${Math.max(...samples.map((s) => s.fds))} |`,
    `| libuv handles | ${early.handles} | ${late.handles} | ${Math.min(...samples.map((s) => s.handles))} – ${Math.max(...samples.map((s) => s.handles))} |`,
    `| link listeners | ${early.linkListeners} | ${late.linkListeners} | ${Math.min(...samples.map((s) => s.linkListeners))} – ${Math.max(...samples.map((s) => s.linkListeners))} |`,
    '',
    `${samples.length} samples over ${samples.at(-1)!.minute.toFixed(1)} min; ${brokerRestarts} broker restarts; ${converged.length}/${deploys.length} deploys converged ` +
      `(median ${converged.length === 0 ? '-' : (median(converged.map((d) => d.convergedMs!)) / 1000).toFixed(1)} s); agent CPU ${(cpu * 100).toFixed(2)} % of one core on average.`,
  ];
  return { early, late, table: rows.join('\n') };
}
