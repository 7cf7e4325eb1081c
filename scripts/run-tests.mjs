// `npm test`: installs the real services the tests need when missing, runs
// every test file on Node's test runner, and leaves nothing running after.
// Each integration test file starts its own Mosquitto (see test/support);
// the full run also starts one private dockerd and a local registry for all
// files (scripts/test-services.mjs) and passes them on through the environment.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBrokerPackages } from './broker-packages.mjs';
import { bundleAll } from './bundle.mjs';
import { startDockerServices } from './test-services.mjs';

const unitOnly = process.argv.includes('--unit');
// `--faults`: the fault suite alone (test/faults), including the scenarios too
// long for `npm test`, which are named *.long.test.ts (see docs/reliability.md);
// `--soak`: the hour-long soak (test/soak/), never in CI.
const faultsOnly = process.argv.includes('--faults');
const soak = process.argv.includes('--soak');
const LONG = '.long.test.ts';

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

// Named test files run alone (with the services), e.g. `npm test -- test/integration/deploy-e2e.test.ts`.
// test/device/ (Debian roots made by debootstrap: the install test, arm64) is
// too slow for every run: `npm run test:device` runs it (docs/install.md).
// Its roots are built, when not cached, before its files run (below).
const named = process.argv.slice(2).filter((a) => a.endsWith('.test.ts'));
const deviceOnly = process.argv.includes('--device');
const files = named.length > 0 ? named
  : unitOnly ? findTests('test/unit')
    : faultsOnly ? findTests('test/faults')
      : deviceOnly ? findTests('test/device')
        : soak ? findTests('test/soak')
          : ['test/unit', 'test/integration', 'test/faults'].flatMap((dir) => findTests(dir)).filter((f) => !f.endsWith(LONG));
const env = { ...process.env };
// Scenarios with a CI-sized and a full size (test/faults/) run the full one under --faults.
if (faultsOnly) env.TSUNAGU_FAULTS_FULL = '1';
const DEVICE_DIR = 'test/device/';
const deviceFiles = files.filter((f) => f.startsWith(DEVICE_DIR));
// The device files run the agent inside chroots with a clean environment and
// start no container: they need neither the test dockerd nor the registry.
const needsEngine = !unitOnly && files.some((f) => !f.startsWith(DEVICE_DIR));
let services;
if (!unitOnly) {
  ensureBrokerPackages();
  // The bundles serve the end-to-end tests of the binaries; a tree without
  // their entry points yet (early branches) has nothing to bundle.
  if (existsSync('agent/main.ts') && existsSync('provisioning/main.ts')) await bundleAll();
}
if (needsEngine) {
  services = await startDockerServices();
  env.DOCKER_HOST = services.dockerHost;
  env.TSUNAGU_TEST_REGISTRY = services.registry;
  env.TSUNAGU_TEST_IMAGES = JSON.stringify(services.images);
}
// Two lanes in a full run, side by side (two cores roughly halve the wall
// time), each serial inside: the files that start containers share the one
// test dockerd and stay in one lane; the unit tests and the files that start no
// container (brokers, agents without a workload) go in the other. The second
// lane's report is held and printed after the first's, so the two TAP streams
// never interleave. A file listed here by mistake still passes, the engine is
// up for both lanes: what the list buys is time.
const ENGINE_FREE = new Set([
  'test/integration/agent-bundle-jitless.test.ts',
  'test/integration/broker-confinement.test.ts',
  'test/integration/command-channel.test.ts',
  'test/integration/deploy.test.ts',
  'test/integration/device-link-status.test.ts',
  'test/integration/embedded-packet-limit.test.ts',
  'test/integration/enrollment-clock.test.ts',
  'test/integration/enrollment-e2e-embedded.test.ts',
  'test/integration/enrollment-e2e.test.ts',
  'test/integration/enrollment-service.test.ts',
  'test/integration/enrollment-slow-service.test.ts',
  'test/integration/fleet-time-bound.test.ts',
  'test/integration/node18-bundle.test.ts',
  'test/integration/offline-outbox.test.ts',
  'test/integration/revoke.test.ts',
  'test/integration/outbox-crash.test.ts',
  'test/integration/session-takeover.test.ts',
  'test/integration/state-dir-lock.test.ts',
  'test/integration/packet-size.test.ts',
  'test/integration/systemd-watchdog.test.ts',
  'test/integration/third-party-fleet.test.ts',
  'test/faults/link-blackhole.test.ts',
  'test/faults/state-write-kill.test.ts',
]);
const fullRun = named.length === 0 && !unitOnly && !faultsOnly && !deviceOnly && !soak;
const besideFiles = fullRun ? files.filter((f) => f.startsWith('test/unit/') || ENGINE_FREE.has(f)) : [];
const serialFiles = fullRun ? files.filter((f) => !besideFiles.includes(f)) : files;
// A device file once its root is cached — the roots are built before, outside
// any file's limit: 89 s for the arm64 file (the agent starting under qemu),
// 65 s for the install file, measured with the machine's two cores nine times
// oversubscribed (docs/install.md, "How this is tested").
const DEVICE_FILE_TIMEOUT = 180_000;
const fileTimeout = soak || faultsOnly ? 7_200_000 : deviceFiles.length > 0 ? DEVICE_FILE_TIMEOUT : 180_000;
const testArgs = ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${fileTimeout}`];
const children = [];
// Async spawn, not spawnSync: a Ctrl-C must still reach the cleanup below.
function run(testFiles, stdio) {
  const child = spawn(process.execPath, [...testArgs, ...testFiles], { stdio, env });
  children.push(child);
  return child;
}
const forward = (signal) => { for (const c of children) c.kill(signal); };
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const exitOf = (child) => new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
// The Debian roots of the device files, built (with progress) when not cached,
// before any file runs: a first build takes minutes (scripts/debian-roots.ts).
if (deviceFiles.length > 0) {
  const prepare = spawn(process.execPath, ['--import', 'tsx', 'scripts/debian-roots.ts'], { stdio: 'inherit', env });
  children.push(prepare);
  const prepared = await exitOf(prepare);
  children.pop();
  if (prepared !== 0) {
    console.error('the Debian roots of the device tests could not be prepared (see above); no test file ran');
    await services?.stop();
    process.exit(prepared);
  }
}
const held = [];
let besideExit = Promise.resolve(0);
if (besideFiles.length > 0) {
  const beside = run(besideFiles, ['ignore', 'pipe', 'pipe']);
  beside.stdout.on('data', (chunk) => held.push(chunk));
  beside.stderr.on('data', (chunk) => held.push(chunk));
  besideExit = exitOf(beside);
}
const serialStatus = await exitOf(run(serialFiles, 'inherit'));
const besideStatus = await besideExit;
if (held.length > 0) {
  process.stdout.write('\n# unit tests and engine-free files (run beside the files above)\n');
  process.stdout.write(Buffer.concat(held));
}
await services?.stop();
process.exit(serialStatus !== 0 ? serialStatus : besideStatus);
