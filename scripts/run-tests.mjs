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
// Async spawn, not spawnSync: a Ctrl-C must still reach the cleanup below.
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=180000', ...files], { stdio: 'inherit', env });
const forward = (signal) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const status = await new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
await services?.stop();
process.exit(status);
