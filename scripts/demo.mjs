// `npm start`: a fleet in a box on this machine, with nothing installed but
// Node.js — the enrollment service with its embedded MQTT broker, one agent
// with a fresh state dir that enrolls by itself, its resources, and, when a
// Docker Engine is reachable, a sample service deployed to it and shown
// running. Ctrl-C stops everything and removes what the demo created.
//
//   --once       exit after the last step instead of running on (used by the test)
//   --no-bundle  use the bundles already in dist/
// Environment: TSUNAGU_DEMO_PORT (broker port, default 18830), TSUNAGU_DEMO_IMAGE
// (the sample service's image, default busybox:1.36), DOCKER_HOST (unix:// only).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bundleAll } from './bundle.mjs';

const once = process.argv.includes('--once');
const PORT = Number(process.env.TSUNAGU_DEMO_PORT ?? 18830);
const IMAGE = process.env.TSUNAGU_DEMO_IMAGE ?? 'busybox:1.36';
const SCOPE = `demo-${randomBytes(3).toString('hex')}`;
const bold = process.stdout.isTTY ? (t) => `\x1b[1m${t}\x1b[0m` : (t) => t;
const say = (text) => process.stdout.write(`${bold(`▸ ${text}`)}\n`);
const indent = (text) => text.replace(/^(?=.)/gm, '  ');

/** The engine's unix socket, when DOCKER_HOST or the default path names one that answers. */
async function reachableEngine() {
  const host = process.env.DOCKER_HOST;
  const socketPath = host === undefined ? '/var/run/docker.sock' : host.startsWith('unix://') ? host.slice('unix://'.length) : undefined;
  if (socketPath === undefined || !existsSync(socketPath)) return undefined;
  const ok = await engineRequest(socketPath, 'GET', '/_ping').then((r) => r.status === 200, () => false);
  return ok ? socketPath : undefined;
}

function engineRequest(socketPath, method, path) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function demoContainers(socketPath) {
  const filters = encodeURIComponent(JSON.stringify({ label: [`io.tsunagu.scope=${SCOPE}`] }));
  const r = await engineRequest(socketPath, 'GET', `/containers/json?all=1&filters=${filters}`);
  return r.status === 200 ? JSON.parse(r.body) : [];
}

const work = mkdtempSync(join(tmpdir(), 'tsunagu-demo-'));
const fleetDir = join(work, 'fleet');
const stateDir = join(work, 'device-state');
const children = [];
let engine;
let stopping = false;

async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  say('stopping: agent, enrollment service and broker');
  // The agent first, so that its last status reaches the broker; then the service.
  for (const c of [...children].reverse()) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  if (engine !== undefined) {
    // The agent leaves its containers running when it stops (it adopts them at its next start): the demo's are removed here.
    for (const c of await demoContainers(engine).catch(() => [])) {
      await engineRequest(engine, 'DELETE', `/containers/${c.Id}?force=1&v=1`).catch(() => undefined);
      console.log(`  removed container ${c.Names?.[0] ?? c.Id}`);
    }
  }
  rmSync(work, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

function fail(what, detail) {
  console.error(`demo failed: ${what}${detail ? `\n${indent(detail)}` : ''}`);
  void stopAll(1);
  return new Promise(() => undefined);
}

const fleet = (...args) => spawnSync(process.execPath, ['dist/tsunagu-fleet.js', ...args], { encoding: 'utf8' });
async function fleetStep(...args) {
  const r = fleet(...args);
  process.stdout.write(indent(r.stdout));
  if (r.status !== 0) await fail(`tsunagu-fleet ${args[0]} exited with ${r.status}`, r.stderr);
  return r;
}

/** Run a long fleet command with its output shown as it comes (deploy's progress). */
function fleetLive(...args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/tsunagu-fleet.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stdout.on('data', (d) => process.stdout.write(indent(d.toString())));
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (status) => {
      children.splice(children.indexOf(child), 1);
      resolve({ status, stderr });
    });
  });
}

if (!process.argv.includes('--no-bundle')) {
  say('bundling dist/tsunagu-agent.js and dist/tsunagu-fleet.js');
  for (const { file, bytes } of await bundleAll()) console.log(`  ${file}  ${(bytes / 1024).toFixed(0)} KiB`);
}

say('tsunagu-fleet init: a fleet with its keys; no --broker, so `serve` will run the embedded MQTT broker');
await fleetStep('init', '--dir', fleetDir, '--fleet-id', 'demo', '--listen', `127.0.0.1:${PORT}`, '--claim-token', 'demo-batch-token');
say('tsunagu-fleet bootstrap: the one file a device image needs');
await fleetStep('bootstrap', '--dir', fleetDir, '--out', join(work, 'bootstrap.json'), '--claim-token', 'demo-batch-token');

say(`tsunagu-fleet serve: the enrollment service and its broker on 127.0.0.1:${PORT} (MQTT 3.1.1)`);
const serve = spawn(process.execPath, ['dist/tsunagu-fleet.js', 'serve', '--dir', fleetDir], { stdio: ['ignore', 'pipe', 'pipe'] });
children.push(serve);
let serveErr = '';
serve.stderr.on('data', (d) => { serveErr += d; });
serve.on('exit', (code) => { if (!stopping) void fail(`tsunagu-fleet serve exited (${code})`, serveErr); });
await new Promise((resolve) => {
  createInterface({ input: serve.stdout }).on('line', (l) => {
    let j;
    try { j = JSON.parse(l); } catch { console.log(`  [fleet] ${l}`); return; }
    console.log(`  [fleet] ${j.msg}${j.deviceId ? ` ${j.deviceId}` : ''}`);
    if (j.msg === 'enrollment service listening') resolve();
  });
});

say(`tsunagu-agent: a new device with only the bootstrap file (state in ${stateDir})`);
const configPath = join(work, 'agent.yaml');
// No start-up jitter for a single device; a short probation so the sample is reported running soon.
writeFileSync(configPath, `enrollment: { startupJitterMs: 0 }\nruntime: { scope: ${SCOPE} }\nrollout: { probationMs: 5000 }\n`);
const agent = spawn(process.execPath, ['dist/tsunagu-agent.js', 'run', '--state-dir', stateDir, '--config', configPath, '--bootstrap', join(work, 'bootstrap.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
children.push(agent);
let agentErr = '';
agent.stderr.on('data', (d) => { agentErr += d; });
agent.on('exit', (code) => { if (!stopping) void fail(`the agent exited (${code})`, agentErr); });
const deviceId = await new Promise((resolve) => {
  let id;
  createInterface({ input: agent.stdout }).on('line', (l) => {
    let j;
    try { j = JSON.parse(l); } catch { console.log(`  [agent] ${l}`); return; }
    // The demo shows the agent's story, not its debug chatter.
    if (j.level === 'info' || j.level === 'warn' || j.level === 'error') console.log(`  [agent] ${j.msg}${j.deviceId ? ` ${j.deviceId}` : ''}`);
    if (typeof j.deviceId === 'string') id ??= j.deviceId;
    if (/→ online/.test(j.msg ?? '') && id !== undefined) resolve(id);
  });
});

say('tsunagu-fleet devices: the device enrolled by itself and is online');
await fleetStep('devices', '--dir', fleetDir);
// The first inventory and metrics follow the link by a moment.
await new Promise((r) => setTimeout(r, 1500));
say(`tsunagu-fleet status ${deviceId}: what the device reported about itself`);
await fleetStep('status', '--dir', fleetDir, deviceId);

engine = await reachableEngine();
let deployed = false;
if (engine === undefined) {
  say('no Docker Engine reachable (DOCKER_HOST or /var/run/docker.sock): the sample service is skipped');
} else {
  const compose = join(work, 'compose.yaml');
  writeFileSync(compose, `services:\n  hello:\n    image: ${IMAGE}\n    command: ["sleep", "86400"]\n    network_mode: none\n    restart: always\n`);
  say(`tsunagu-fleet deploy ${deviceId}: a sample service (${IMAGE}) as the device's signed desired state`);
  const r = await fleetLive('deploy', '--dir', fleetDir, deviceId, compose, '--timeout', '300');
  if (r.status !== 0) await fail(`tsunagu-fleet deploy exited with ${r.status}`, r.stderr);
  say(`running on the engine at ${engine}, started by the agent:`);
  for (const c of await demoContainers(engine)) console.log(`  ${c.Names?.[0]?.replace(/^\//, '')}  ${c.Image}  ${c.State} (${c.Status})`);
  deployed = true;
}

say('done: a fleet, an enrolled device, its resources' + (deployed ? ', and a service it runs.' : '.') + ' Try next, in another terminal:');
const cli = `node dist/tsunagu-fleet.js`;
console.log(`  ${cli} watch --dir ${fleetDir}                 # live reports and events`);
console.log(`  ${cli} send --dir ${fleetDir} ${deviceId} ping`);
if (deployed) console.log(`  ${cli} send --dir ${fleetDir} ${deviceId} logs --service hello`);
console.log(`  ${cli} --help                                   # every command, with examples (docs/cli.md)`);
console.log('  Ctrl-C here stops the agent, the service and its broker' + (deployed ? ', and removes the sample container.' : '.'));
if (once) await stopAll(0);
