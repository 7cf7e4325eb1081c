import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { freePort } from '../support/mosquitto.js';
import { dockerTestEnv } from '../support/supervisor-harness.js';
import { testDocker } from '../support/test-docker.js';

// `npm start`'s flow, headless: no Mosquitto (the embedded broker), one
// agent that enrolls, its resources, and a sample service on the test
// dockerd, then the demo's own clean stop.
test('the demo enrolls a device, shows its resources, runs a sample service, and leaves nothing behind', async () => {
  const env = dockerTestEnv();
  const child = spawn(process.execPath, ['scripts/demo.mjs', '--once', '--no-bundle'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TSUNAGU_DEMO_PORT: String(await freePort()), TSUNAGU_DEMO_IMAGE: env.images.busybox1, DOCKER_HOST: env.dockerHost },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const status = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(status, 0, `${out}\n${err}`);

  const deviceId = /\[agent\] enrolled (d-[0-9a-f]{20})/.exec(out)?.[1];
  assert.ok(deviceId, out);
  assert.match(out, new RegExp(`${deviceId}\\s+active\\s+online`));
  // The resources, from the device's own inventory report.
  assert.match(out, /\n\s+cpu\s+\S.* × \d+\n/);
  assert.match(out, /\n\s+memory\s+\d+ MiB\n/);
  assert.match(out, new RegExp(`${deviceId}: version \\d+ applied \\(synced\\)`));
  const container = new RegExp(`\\n  (demo-[0-9a-f]{6}-hello-\\S+)  ${env.images.busybox1.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  running`).exec(out)?.[1];
  assert.ok(container, out);
  assert.match(out, /Try next/);
  assert.ok(out.includes(`removed container /${container}`), out);

  // Nothing of the demo's is left on the engine.
  const docker = testDocker();
  const left = (await docker.listContainers({ all: true, filters: { label: ['io.tsunagu.managed=true'] } }))
    .filter((c) => (c.Labels['io.tsunagu.scope'] ?? '').startsWith('demo-'));
  assert.deepEqual(left.map((c) => c.Names), []);
});
