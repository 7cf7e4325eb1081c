// `npm run bench`: the footprint and speed figures of issue #7, each beside
// its baseline measured in the same run, printed and written to
// docs/benchmarks.md. Started by scripts/bench.mjs, which builds the bundles
// and provides the private dockerd and the local registry; never part of
// `npm test`, and nothing here asserts a timing.
import { AGENT_ENVIRONMENT, AGENT_NODE_FLAGS } from '../scripts/agent-launch.mjs';
import { LABELS } from '../agent/supervisor/container-labels.js';
import { BenchDevice } from './bench-device.js';
import { openBenchWorld } from './bench-world.js';
import { updateBenchmarksDoc } from './benchmarks-doc.js';
import type { FigureResult } from './figure.js';
import { measureBundleSize } from './figures/bundle-size.js';
import { measureColdStart } from './figures/cold-start.js';
import { measureDeployCommandLatency } from './figures/deploy-command-latency.js';
import { measureDeployLatency } from './figures/deploy-latency.js';
import { measureEnrollment } from './figures/enrollment-load.js';
import { measurePowerOn } from './figures/power-on.js';
import { measureReportCost } from './figures/report-cost.js';
import { measureRollout } from './figures/rollout-load.js';
import { measureSignatureVerify } from './figures/signature-verify.js';
import { deployIdleServices, measureSteadyFootprint } from './figures/steady-footprint.js';
import { measureUpdateDowntime } from './figures/update-downtime.js';
import { runFlagsStudy } from './flags-study.js';
import { buildFloor, startFloors, stopFloors } from './floor/floor-processes.js';
import { describeMachine } from './machine.js';
import { parseBenchOptions } from './options.js';
import { renderTable } from './report-table.js';

const DOC = 'docs/benchmarks.md';
const STEADY_DEVICES = 3;
const ENROLLING_DEVICES = 500;
const ROLLOUT_DEVICES = 1000;

const options = parseBenchOptions(process.argv.slice(2));
const log = (line: string): void => console.log(line);
const began = Date.now();
const machine = describeMachine();
const flags = [...AGENT_NODE_FLAGS];
const agentEnv = { ...AGENT_ENVIRONMENT };
log(`tsunagu bench — ${new Date(began).toISOString()} — ${machine} — node ${process.version}`);

function header(): string {
  const minutes = ((Date.now() - began) / 60_000).toFixed(1);
  return [
    `- date: ${new Date(began).toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `- machine: ${machine}`,
    `- node ${process.version} (the agent bundle runs on the same node here); the agent started as on a device (scripts/agent-launch.mjs): \`${[...Object.entries(agentEnv).map(([k, v]) => `${k}=${v}`), 'node', ...flags].join(' ')}\``,
    `- command: \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\`, ${minutes} min`,
  ].join('\n');
}

if (options.flagsStudy) {
  const world = await openBenchWorld();
  try {
    const table = await runFlagsStudy(world, options.windowMs, options.warmupMs, log);
    console.log(`\n${table}\n`);
    if (options.write) updateBenchmarksDoc(DOC, { flags: `${header()}\n\n${table}` });
  } finally {
    await world.close();
  }
  process.exit(0);
}

const figures: FigureResult[] = [];
const want = (g: Parameters<typeof options.only.has>[0]): boolean => options.only.has(g);

if (want('bundle')) figures.push(measureBundleSize());
if (want('verify')) {
  log('signature verification…');
  figures.push(measureSignatureVerify(5));
}
if (want('enroll')) {
  log(`enrollment of ${ENROLLING_DEVICES} simulated devices…`);
  figures.push(...(await measureEnrollment(ENROLLING_DEVICES, 3, log)));
}

if (want('rollout')) {
  log(`rollout across ${ROLLOUT_DEVICES} simulated devices…`);
  figures.push(...(await measureRollout(ROLLOUT_DEVICES, log)));
}

if (want('poweron')) {
  log('power-on to workload running…');
  figures.push(...(await measurePowerOn(5, log)));
}

const needsDevices = want('steady') || want('deploy') || want('cold') || want('report') || want('update');
if (needsDevices) {
  const world = await openBenchWorld();
  const devices = Array.from({ length: STEADY_DEVICES }, (_, i) => new BenchDevice(world, `device-${String.fromCharCode(97 + i)}`, flags, agentEnv));
  try {
    for (const d of devices) {
      await d.startOnline();
      await deployIdleServices(world, d);
      log(`  ${d.name} (${d.deviceId}): online, 10 services deployed through \`tsunagu-fleet deploy\``);
    }
    if (want('steady')) {
      // The floor starts with the warm-up, so that it settles as long as the agents have.
      const built = await buildFloor(world);
      const floors = await startFloors(world, built.file, devices[0]!, flags, agentEnv);
      try {
        const floor = { bundleBytes: built.bytes, processes: floors };
        const { figures: steady } = await measureSteadyFootprint(world, { devices, warmupMs: options.warmupMs, windowMs: options.windowMs, everyMs: 10_000, nodeFlags: flags, nodeEnv: agentEnv, floor, log });
        figures.push(...steady);
      } finally {
        stopFloors(floors);
      }
    }
    const [a, b, c] = devices as [BenchDevice, BenchDevice, BenchDevice];
    if (want('deploy')) {
      log('deploy latency…');
      figures.push(await measureDeployLatency(world, a, 5, log));
      log('deploy command latency…');
      figures.push(await measureDeployCommandLatency(world, a, 5, log));
    }
    if (want('cold')) {
      log('cold start…');
      await b.stop();
      figures.push(await measureColdStart(b, flags, agentEnv, 7, log));
    }
    if (want('report')) {
      log('report cost…');
      const running = await world.docker.listContainers({ filters: { label: [`${LABELS.scope}=${c.scope}`] } });
      const containers = running.map((r) => ({ name: r.Labels[LABELS.service] ?? r.Id, containerId: r.Id }));
      figures.push(await measureReportCost({ bootstrap: world.fleet.bootstrap, claimToken: world.fleet.claimToken, containers, runs: 20 }, flags, agentEnv));
    }
    if (want('update')) {
      // Last: it replaces the device's idle services.
      log('update downtime…');
      figures.push(await measureUpdateDowntime(world, a, 3, log));
    }
  } finally {
    for (const d of devices) await d.stop();
    await world.close();
  }
}

const order = ['rss', 'floor', 'growth', 'idle-cpu', 'deploy', 'deploy-command', 'power-on', 'power-on-after-grant', 'update-downtime', 'report-cpu', 'verify', 'enroll-all', 'enroll-rate', 'enroll-p99', 'rollout-waves', 'rollout-cpu', 'rollout-messages', 'rollout-lost', 'bundle', 'cold-start'];
figures.sort((x, y) => order.indexOf(x.key) - order.indexOf(y.key));
const table = renderTable(figures);
console.log(`\n${table}\n`);
if (options.write) {
  const sections: Record<string, string> = { results: `${header()}\n\n${table}` };
  if (options.long) sections.long = `${header()}\n\n${renderTable(figures.filter((f) => ['rss', 'floor', 'growth', 'idle-cpu'].includes(f.key)))}`;
  updateBenchmarksDoc(DOC, sections);
  log(`wrote ${DOC}`);
}
