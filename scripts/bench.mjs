// `npm run bench`: builds the bundles (the figures measure exactly what
// ships), installs and starts what the figures run against — Mosquitto, a
// private dockerd and the local registry with the test images, as for the
// integration tests — then runs bench/main.ts and stops what it started.
//
// The bench uses a dockerd of its own (instance "bench" unless
// TSUNAGU_TEST_DOCKER_INSTANCE says otherwise): test runs clean up their
// engine's containers by label and would take the bench's services away, and
// a bench would load a test run's engine. The instance must be chosen before
// test-services.mjs is loaded, hence the dynamic imports.
import { spawn } from 'node:child_process';

process.env.TSUNAGU_TEST_DOCKER_INSTANCE ??= 'bench';
const { ensureBrokerPackages } = await import('./broker-packages.mjs');
const { bundleAll } = await import('./bundle.mjs');
const { startDockerServices } = await import('./test-services.mjs');

ensureBrokerPackages();
for (const { file, bytes } of await bundleAll()) console.log(`built ${file} (${(bytes / 1024).toFixed(1)} KiB)`);
const services = await startDockerServices();
const env = {
  ...process.env,
  DOCKER_HOST: services.dockerHost,
  TSUNAGU_TEST_REGISTRY: services.registry,
  TSUNAGU_TEST_IMAGES: JSON.stringify(services.images),
};
// Async spawn, not spawnSync: a Ctrl-C must still reach the cleanup below.
const child = spawn(process.execPath, ['--import', 'tsx', 'bench/main.ts', ...process.argv.slice(2)], { stdio: 'inherit', env });
const forward = (signal) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const status = await new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
await services.stop();
process.exit(status);
