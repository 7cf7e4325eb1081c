// `npm start`: a fleet in a box on this machine — a Mosquitto broker with
// dynamic security, the enrollment service, and one agent with a fresh state
// dir that enrolls by itself. Ctrl-C stops everything.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bundleAll } from './bundle.mjs';

const PORT = Number(process.env.TSUNAGU_DEMO_PORT ?? 18830);
const findPlugin = () => ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib/arm-linux-gnueabihf']
  .map((d) => `${d}/mosquitto_dynamic_security.so`).find((p) => existsSync(p));
const say = (text) => process.stdout.write(`\x1b[1m▸ ${text}\x1b[0m\n`);

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

if (!have('mosquitto') || !have('mosquitto_ctrl') || findPlugin() === undefined) {
  if (process.getuid?.() !== 0) {
    console.error('Mosquitto 2 is needed: sudo apt-get install mosquitto mosquitto-clients');
    process.exit(1);
  }
  say('installing Mosquitto (Debian packages mosquitto, mosquitto-clients)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  spawnSync('apt-get', ['install', '-y', '-qq', 'mosquitto', 'mosquitto-clients'], { stdio: 'inherit', env });
}
const plugin = findPlugin();

say('bundling dist/tsunagu-agent.js and dist/tsunagu-fleet.js');
for (const { file, bytes } of await bundleAll()) console.log(`  ${file}  ${(bytes / 1024).toFixed(0)} KiB`);

const work = mkdtempSync(join(tmpdir(), 'tsunagu-demo-'));
const children = [];
let stopping = false;
function stopAll(code = 0) {
  if (stopping) return;
  stopping = true;
  say('stopping');
  for (const c of children.reverse()) if (c.exitCode === null) c.kill('SIGTERM');
  setTimeout(() => {
    rmSync(work, { recursive: true, force: true });
    process.exit(code);
  }, 800);
}
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

say(`starting Mosquitto 2 with dynamic security on 127.0.0.1:${PORT}`);
const adminPassword = Math.random().toString(36).slice(2);
spawnSync('mosquitto_ctrl', ['dynsec', 'init', join(work, 'dynsec.json'), 'admin', adminPassword], { stdio: 'ignore' });
writeFileSync(join(work, 'mosquitto.conf'), `listener ${PORT} 127.0.0.1\nallow_anonymous false\nplugin ${plugin}\nplugin_opt_config_file ${join(work, 'dynsec.json')}\nlog_type error\nlog_type warning\nset_tcp_nodelay true\n`);
if (process.getuid?.() === 0) spawnSync('chown', ['-R', 'mosquitto', work]);
const broker = spawn('mosquitto', ['-c', join(work, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
children.push(broker);
broker.on('exit', (code) => { if (!stopping) { console.error(`mosquitto exited (${code})`); stopAll(1); } });
await new Promise((r) => setTimeout(r, 400));

const fleetDir = join(work, 'fleet');
const fleet = (...args) => spawnSync(process.execPath, ['dist/tsunagu-fleet.js', ...args], { encoding: 'utf8' });
say('tsunagu-fleet init: a fleet with its keys, and its own broker account');
let r = fleet('init', '--dir', fleetDir, '--fleet-id', 'demo', '--broker', `mqtt://127.0.0.1:${PORT}`, '--admin-user', 'admin', '--admin-password', adminPassword, '--claim-token', 'demo-batch-token');
process.stdout.write(r.stdout.replace(/^/gm, '  ')); if (r.status !== 0) { console.error(r.stderr); stopAll(1); }
say('tsunagu-fleet bootstrap: the one file a device image needs');
r = fleet('bootstrap', '--dir', fleetDir, '--out', join(work, 'bootstrap.json'), '--claim-token', 'demo-batch-token');
process.stdout.write(r.stdout.replace(/^/gm, '  ')); if (r.status !== 0) { console.error(r.stderr); stopAll(1); }

say('tsunagu-fleet serve: the enrollment service');
const serve = spawn(process.execPath, ['dist/tsunagu-fleet.js', 'serve', '--dir', fleetDir], { stdio: ['ignore', 'pipe', 'inherit'] });
children.push(serve);
createInterface({ input: serve.stdout }).on('line', (l) => {
  try { const j = JSON.parse(l); console.log(`  [fleet] ${j.msg}${j.deviceId ? ` ${j.deviceId}` : ''}`); } catch { console.log(`  [fleet] ${l}`); }
});
await new Promise((res) => setTimeout(res, 600));

const stateDir = join(work, 'device-state');
say(`tsunagu-agent: a new device with only the bootstrap file (state in ${stateDir})`);
const agent = spawn(process.execPath, ['dist/tsunagu-agent.js', 'run', '--state-dir', stateDir, '--bootstrap', join(work, 'bootstrap.json'), '--startup-jitter', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
children.push(agent);
let shown = false;
createInterface({ input: agent.stdout }).on('line', (l) => {
  let j;
  try { j = JSON.parse(l); } catch { console.log(`  [agent] ${l}`); return; }
  console.log(`  [agent] ${j.msg}${j.deviceId ? ` ${j.deviceId}` : ''}`);
  if (!shown && /→ online/.test(j.msg)) {
    shown = true;
    setTimeout(() => {
      say('tsunagu-fleet devices');
      process.stdout.write(fleet('devices', '--dir', fleetDir).stdout.replace(/^/gm, '  '));
      say('the device enrolled by itself and is online. Try next, in another terminal:');
      console.log(`  node dist/tsunagu-fleet.js devices --dir ${fleetDir} --json`);
      console.log(`  ls -l ${stateDir}            # keys.json, identity.json: owner-only`);
      console.log('  Ctrl-C here stops the broker, the service and the agent.');
    }, 500);
  }
});
agent.on('exit', (code) => { if (!stopping) { console.error(`agent exited (${code})`); stopAll(1); } });
