// `npm test`: installs the real services the tests need when missing, runs
// every test file on Node's test runner, and leaves nothing running after.
// Each integration test file starts its own Mosquitto (see test/support);
// the full run also starts one private dockerd and a local registry for all
// files (scripts/test-services.mjs) and passes them on through the environment.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bundleAll } from './bundle.mjs';
import { startDockerServices } from './test-services.mjs';

const unitOnly = process.argv.includes('--unit');
// --faults: the fault scenarios (test/faults/), some of them too long for `npm test`;
// --soak: the hour-long soak (test/soak/), never in CI.
const faultsOnly = process.argv.includes('--faults');
const soak = process.argv.includes('--soak');

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function ensureDebianPackages() {
  const wanted = [
    ['mosquitto', 'mosquitto'],
    ['mosquitto_ctrl', 'mosquitto-clients'],
  ];
  const missing = wanted.filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing Debian packages: ${missing.join(' ')} (run as root or install them)`);
  console.log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error('apt-get install failed');
}

/** Fault scenarios that do not fit the CI time budget: `npm run test:faults` only. */
const LONG_FAULTS = new Set(['test/faults/registry-faults.test.ts']);

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
const named = process.argv.slice(2).filter((a) => a.endsWith('.test.ts'));
const files = named.length > 0 ? named
  : unitOnly ? findTests('test/unit')
    : faultsOnly ? findTests('test/faults')
      : soak ? findTests('test/soak')
        : ['test/unit', 'test/integration', 'test/faults'].flatMap((dir) => (existsSync(dir) ? findTests(dir) : [])).filter((f) => !LONG_FAULTS.has(f));
const env = { ...process.env };
// Scenarios with a CI-sized and a full size (test/faults/) run the full one under --faults.
if (faultsOnly) env.TSUNAGU_FAULTS_FULL = '1';
let services;
if (!unitOnly) {
  ensureDebianPackages();
  // The bundles serve the end-to-end tests of the binaries; a tree without
  // their entry points yet (early branches) has nothing to bundle.
  if (existsSync('agent/main.ts') && existsSync('provisioning/main.ts')) await bundleAll();
  services = await startDockerServices();
  env.DOCKER_HOST = services.dockerHost;
  env.TSUNAGU_TEST_REGISTRY = services.registry;
  env.TSUNAGU_TEST_IMAGES = JSON.stringify(services.images);
}
// Async spawn, not spawnSync: a Ctrl-C must still reach the cleanup below.
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${soak || faultsOnly ? 7_200_000 : 180_000}`, ...files], { stdio: 'inherit', env });
const forward = (signal) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const status = await new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
await services?.stop();
process.exit(status);
