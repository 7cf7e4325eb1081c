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
// long for `npm test`, which are named *.long.test.ts (see docs/reliability.md).
const faultsOnly = process.argv.includes('--faults');
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
const named = process.argv.slice(2).filter((a) => a.endsWith('.test.ts'));
const deviceOnly = process.argv.includes('--device');
const files = named.length > 0 ? named
  : unitOnly ? findTests('test/unit')
    : faultsOnly ? findTests('test/faults')
      : deviceOnly ? findTests('test/device')
        : ['test/unit', 'test/integration', 'test/faults'].flatMap((dir) => findTests(dir)).filter((f) => !f.endsWith(LONG));
const env = { ...process.env };
let services;
if (!unitOnly) {
  ensureBrokerPackages();
  // The bundles serve the end-to-end tests of the binaries; a tree without
  // their entry points yet (early branches) has nothing to bundle.
  if (existsSync('agent/main.ts') && existsSync('provisioning/main.ts')) await bundleAll();
  services = await startDockerServices();
  env.DOCKER_HOST = services.dockerHost;
  env.TSUNAGU_TEST_REGISTRY = services.registry;
  env.TSUNAGU_TEST_IMAGES = JSON.stringify(services.images);
}
// The pure unit tests need no services and little but CPU, while the
// service-backed files mostly wait on brokers and the engine: in a full run
// they go side by side (two cores halve the wall time), each runner serial
// inside. The unit runner's report is held and printed after the other's, so
// the two TAP streams never interleave.
const fullRun = named.length === 0 && !unitOnly && !faultsOnly && !deviceOnly;
const unitFiles = fullRun ? files.filter((f) => f.startsWith('test/unit/')) : [];
const serialFiles = fullRun ? files.filter((f) => !f.startsWith('test/unit/')) : files;
const testArgs = ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=180000'];
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
const held = [];
let unitExit = Promise.resolve(0);
if (unitFiles.length > 0) {
  const unit = run(unitFiles, ['ignore', 'pipe', 'pipe']);
  unit.stdout.on('data', (chunk) => held.push(chunk));
  unit.stderr.on('data', (chunk) => held.push(chunk));
  unitExit = exitOf(unit);
}
const serialStatus = await exitOf(run(serialFiles, 'inherit'));
const unitStatus = await unitExit;
if (held.length > 0) {
  process.stdout.write('\n# unit tests (run beside the files above)\n');
  process.stdout.write(Buffer.concat(held));
}
await services?.stop();
process.exit(serialStatus !== 0 ? serialStatus : unitStatus);
