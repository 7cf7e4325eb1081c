import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_PACKET_BYTES } from '../../protocol/packet-size.js';

/** A real Mosquitto 2 broker with the dynamic-security plugin, on loopback, owned by one test file. */
export interface TestBroker {
  url: string;
  port: number;
  adminUser: string;
  adminPassword: string;
  dir: string;
  /** The broker's process id while it runs (to read its memory). */
  readonly pid: number | undefined;
  /** Stop gracefully and start again on the same port with the same persisted state. */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
  /** SIGKILL: no clean shutdown, no last save of its persistence file (a power cut of the broker's host). */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Stop and delete everything. */
  close(): Promise<void>;
}

const PLUGIN_PATHS = [
  '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/mosquitto_dynamic_security.so',
];

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * `maxPacketBytes`: the broker's `max_packet_size`, as docs/provisioning.md §1 sets it
 * (MAX_PACKET_BYTES); `null` for a broker configured without one.
 */
export async function startMosquitto(options: { port?: number; maxPacketBytes?: number | null } = {}): Promise<TestBroker> {
  const plugin = PLUGIN_PATHS.find((p) => spawnSync('test', ['-f', p]).status === 0);
  if (plugin === undefined) throw new Error('mosquitto dynamic-security plugin not found: run the tests through `npm test`');
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-mosq-'));
  const port = options.port ?? (await freePort());
  const adminUser = 'admin';
  const adminPassword = `pw-${Math.random().toString(36).slice(2)}`;
  const dynsec = join(dir, 'dynsec.json');
  const init = spawnSync('mosquitto_ctrl', ['dynsec', 'init', dynsec, adminUser, adminPassword], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`mosquitto_ctrl dynsec init failed: ${init.stderr}`);
  // Started as root, Mosquitto drops to the `mosquitto` user and must still write its dynsec and persistence files.
  spawnSync('chown', ['-R', 'mosquitto', dir]);
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous false',
    'persistence true',
    `persistence_location ${dir}/`,
    'autosave_interval 1',
    `plugin ${plugin}`,
    `plugin_opt_config_file ${dynsec}`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'max_keepalive 3600',
    'set_tcp_nodelay true',
    ...(options.maxPacketBytes === null ? [] : [`max_packet_size ${options.maxPacketBytes ?? MAX_PACKET_BYTES}`]),
    '',
  ].join('\n'));

  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => { if (process.env.TSUNAGU_TEST_VERBOSE) process.stderr.write(`[mosquitto] ${d.toString()}`); });
    await waitForPort(port, 5000);
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };
  await start();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    adminUser,
    adminPassword,
    dir,
    get pid() { return child?.pid; },
    start,
    stop: () => stop(),
    kill: () => stop('SIGKILL'),
    restart: async (downMs = 0) => {
      await stop();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
