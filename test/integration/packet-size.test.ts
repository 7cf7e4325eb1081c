import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { enrollTopics, deviceTopic } from '../../protocol/topics.js';
import { MAX_PACKET_BYTES } from '../../protocol/packet-size.js';
import { AgentProcess, FLEET_BUNDLE, type LogLine } from '../support/agent-process.js';
import { freePort, startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { waitFor } from '../support/wait-for.js';
import { REPORT_NOW_REPLY_MS } from '../support/fleet-session.js';
import { fleetCli as runFleetCli, type CliResult } from '../support/deploy-cli.js';

// A 100 MB PUBLISH against the shipped bundles (agent and `serve`) on both
// brokers: to the device's command topic and to topics the fleet side
// reads, with a credential allowed to publish there. The broker refuses it
// before buffering it (Mosquitto through max_packet_size, the embedded
// broker through its header guard), the agent's, serve's and the broker's
// peak memory stay flat, the device keeps answering, and `status` still
// shows its inventory. Then a broker configured without a limit (MQTT 5):
// it takes the packet, but never delivers it to clients that announced a
// smaller maximum, and `status` says what it cannot show.

const HUGE_BYTES = 100 * 1024 * 1024;
/** Growth of peak resident memory allowed during the attacks: far below the 100 MB an attack would add. */
const MEMORY_BOUND_BYTES = 50 * 1024 * 1024;

/** Resident memory now and at its peak since the last reset (/proc/PID/status). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Writing 5 to clear_refs resets the peak resident memory (VmHWM) to the current one. */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** The fleet CLI from the bundle; asynchronous, so that the worlds running beside keep being served. */
const fleetCli = (...args: string[]): Promise<CliResult> => runFleetCli(args);

/** `tsunagu-fleet serve` from the bundle, its JSON log lines collected. */
class ServeProcess {
  readonly lines: LogLine[] = [];
  readonly child: ChildProcess;
  private readonly waiters: { match: (l: LogLine) => boolean; resolve: () => void }[] = [];

  constructor(fleetDir: string) {
    this.child = spawn(process.execPath, [FLEET_BUNDLE, 'serve', '--dir', fleetDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try { line = JSON.parse(text) as LogLine; } catch { line = { msg: text }; }
      if (process.env.TSUNAGU_TEST_VERBOSE) process.stderr.write(`[serve] ${text}\n`);
      this.lines.push(line);
      for (const w of [...this.waiters]) if (w.match(line)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(); }
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  waitFor(match: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<void> {
    if (this.lines.some(match)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching serve log line within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

interface World {
  work: string;
  fleetDir: string;
  bootstrapPath: string;
  serve: ServeProcess;
  agent: AgentProcess;
  deviceId: string;
  url: string;
  protocolVersion: 4 | 5;
  fleetAccount: { username: string; password: string };
  bootstrapAccount: { username: string; password: string };
  close(): Promise<void>;
}

/** A fleet made by the shipped CLI, `serve` running, one enrolled agent online with its inventory sent. */
async function makeWorld(broker: TestBroker | 'embedded'): Promise<World> {
  const work = mkdtempSync(join(tmpdir(), 'tsunagu-packets-'));
  const fleetDir = join(work, 'fleet');
  const bootstrapPath = join(work, 'bootstrap.json');
  const init = broker === 'embedded'
    ? await fleetCli('init', '--dir', fleetDir, '--listen', `127.0.0.1:${await freePort()}`, '--claim-token', 'packets-token')
    : await fleetCli('init', '--dir', fleetDir, '--broker', broker.url, '--admin-user', broker.adminUser, '--admin-password', broker.adminPassword, '--claim-token', 'packets-token');
  assert.equal(init.status, 0, init.stderr);
  const boot = await fleetCli('bootstrap', '--dir', fleetDir, '--out', bootstrapPath, '--claim-token', 'packets-token');
  assert.equal(boot.status, 0, boot.stderr);
  const config = JSON.parse(readFileSync(join(fleetDir, 'fleet.json'), 'utf8')) as { broker: { url: string; protocolVersion: 4 | 5; username: string; password: string }; bootstrap: { username: string; password: string } };
  const serve = new ServeProcess(fleetDir);
  await serve.waitFor((l) => l.msg === 'enrollment service listening');
  const agent = new AgentProcess({ stateDir: join(work, 'device'), bootstrapPath });
  const deviceId = await agent.enrolledAndOnline();
  await waitFor('the inventory in the fleet status', async () => ((await statusJson(fleetDir, deviceId)).inventory === undefined ? undefined : true), 15_000, { intervalMs: 200 });
  const world: World = {
    work, fleetDir, bootstrapPath, serve, agent, deviceId,
    url: config.broker.url, protocolVersion: config.broker.protocolVersion,
    fleetAccount: { username: config.broker.username, password: config.broker.password },
    bootstrapAccount: config.bootstrap,
    close: async () => {
      await world.agent.stop();
      await serve.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
  return world;
}

interface StatusJson { inventory?: { v: number; arch: string }; metrics?: { refused?: Record<string, number> }; unavailable: Record<string, string> }
async function statusJson(fleetDir: string, deviceId: string): Promise<StatusJson> {
  const r = await fleetCli('status', '--dir', fleetDir, deviceId, '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusJson;
}

const huge = Buffer.alloc(HUGE_BYTES, 0x20);


/**
 * Publish `payload` (QoS 1) as `account` and wait until the broker either
 * acknowledges it or closes the connection. MQTT.js itself sends any size.
 */
async function publishAs(w: World, account: { username: string; password: string }, topic: string, payload: Buffer, options: { retain?: boolean; clientId?: string } = {}): Promise<'acknowledged' | 'connection closed'> {
  const client = await mqtt.connectAsync(w.url, {
    ...account, protocolVersion: w.protocolVersion, clientId: options.clientId ?? `packets-${randomBytes(4).toString('hex')}`,
    clean: true, reconnectPeriod: 0, connectTimeout: 15_000,
  });
  client.on('error', () => undefined);
  try {
    return await new Promise((resolve) => {
      client.once('close', () => resolve('connection closed'));
      client.publish(topic, payload, { qos: 1, retain: options.retain ?? false }, (err) => { if (!err) resolve('acknowledged'); });
    });
  } finally {
    client.end(true);
  }
}

/** The processes whose memory an attack must not grow. */
function watched(w: World, broker: TestBroker | 'embedded'): Record<string, number> {
  return { agent: w.agent.pid!, serve: w.serve.pid, ...(broker === 'embedded' ? {} : { mosquitto: broker.pid! }) };
}

async function attackAndCheck(w: World, broker: TestBroker | 'embedded'): Promise<void> {
  const pids = watched(w, broker);
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => { resetPeak(pid); return [name, memoryOf(pid)]; }));

  // The fleet's own credential may publish to the device's command topic and to its reports (which serve reads).
  assert.equal(await publishAs(w, w.fleetAccount, deviceTopic(w.deviceId, 'cmd'), huge), 'connection closed');
  assert.equal(await publishAs(w, w.fleetAccount, deviceTopic(w.deviceId, 'inventory'), huge, { retain: true }), 'connection closed');
  // The bootstrap credential, which every bootstrap file carries, may publish enrollment requests (serve reads them).
  assert.equal(await publishAs(w, w.bootstrapAccount, enrollTopics.request, huge, { clientId: `enroll-${randomBytes(8).toString('hex')}` }), 'connection closed');

  // The device keeps working: a command is answered.
  const ping = await fleetCli('send', '--dir', w.fleetDir, w.deviceId, 'ping', '--json', '--timeout', '10000');
  assert.equal(ping.status, 0, ping.stderr);
  assert.equal((JSON.parse(ping.stdout) as { ok: boolean }).ok, true);
  // And its retained inventory is still the real one.
  const status = await statusJson(w.fleetDir, w.deviceId);
  assert.equal(status.inventory?.v, 1, JSON.stringify(status.unavailable));
  assert.equal(status.unavailable.inventory, undefined);

  for (const [name, pid] of Object.entries(pids)) {
    const now = memoryOf(pid);
    const grewBy = now.peak - before[name]!.rss;
    assert.ok(grewBy < MEMORY_BOUND_BYTES, `${name}: peak resident memory grew by ${Math.round(grewBy / 1048576)} MB during the attacks (${JSON.stringify({ before: before[name], now })})`);
  }
}

/**
 * A message within the packet limit but over the command limit: delivered, refused by the agent,
 * counted, and shown. The agent counts the same way under either MQTT version: run on one broker.
 */
async function refusalIsCounted(w: World): Promise<void> {
  const overCommandLimit = Buffer.alloc(200 * 1024, 0x20);
  assert.equal(await publishAs(w, w.fleetAccount, deviceTopic(w.deviceId, 'cmd'), overCommandLimit), 'acknowledged');
  await w.agent.waitForLog((l) => l.code === 'TOO_LARGE' && /refused a message on the command topic/.test(String(l.msg)));
  const now = await fleetCli('send', '--dir', w.fleetDir, w.deviceId, 'report-now', '--timeout', String(REPORT_NOW_REPLY_MS));
  assert.equal(now.status, 0, now.stderr);
  const status = await waitFor('the TOO_LARGE refusal in the fleet status', async () => { const s = await statusJson(w.fleetDir, w.deviceId); return s.metrics?.refused?.TOO_LARGE === undefined ? undefined : s; }, 15_000, { intervalMs: 200 });
  assert.equal(status.metrics?.refused?.TOO_LARGE, 1);
  const human = await fleetCli('status', '--dir', w.fleetDir, w.deviceId);
  assert.match(human.stdout, /refused\s+TOO_LARGE 1/);
  // watch shows the counts at the head of the (retained) metrics line.
  const watch = spawn(process.execPath, [FLEET_BUNDLE, 'watch', '--dir', w.fleetDir, w.deviceId], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      watch.once('exit', (code) => reject(new Error(`watch exited (${code})`)));
      createInterface({ input: watch.stdout }).on('line', (text) => { if (text.includes(' metrics ')) resolve(text); });
    });
    assert.match(line, / metrics \(retained\) \[refused: TOO_LARGE 1\] \{/);
  } finally {
    watch.kill('SIGTERM');
  }
}

describe('Mosquitto with max_packet_size (as docs/provisioning.md sets it)', () => {
  let broker: TestBroker;
  let w: World | undefined;
  after(async () => {
    await w?.close();
    await broker?.close();
  });

  test('100 MB publishes are refused by the broker; agent, serve and Mosquitto stay flat; the device answers; status shows its inventory', async () => {
    broker = await startMosquitto();
    w = await makeWorld(broker);
    await attackAndCheck(w, broker);
  });
});

describe('the embedded broker of serve', () => {
  let w: World | undefined;
  after(async () => { await w?.close(); });

  test('100 MB publishes are refused at the header; serve (the broker) and the agent stay flat; the refusals are logged and counted', async () => {
    w = await makeWorld('embedded');
    await attackAndCheck(w, 'embedded');
    // Read from serve's output as it comes (the CLI runs above held this process's event loop).
    await w.serve.waitFor((l) => l.refusedPackets === 3);
    const refusals = w.serve.lines.filter((l) => l.msg === 'embedded broker: refused a packet over the size limit; connection closed');
    assert.equal(refusals.length, 3);
    assert.deepEqual(refusals.map((l) => l.refusedPackets), [1, 2, 3]);
    assert.ok(refusals.every((l) => l.maxPacketBytes === MAX_PACKET_BYTES && typeof l.packetBytes === 'number' && l.packetBytes > HUGE_BYTES), "refusals.every((l) => l.maxPacketBytes === MAX_PACKET_BYTES && typeof l.packetBytes === 'number' ...");
    assert.deepEqual(refusals.map((l) => l.username), [w.fleetAccount.username, w.fleetAccount.username, w.bootstrapAccount.username]);
    await refusalIsCounted(w);
  });
});

describe('Mosquitto configured without a packet limit, MQTT 5 clients', () => {
  let broker: TestBroker;
  let w: World | undefined;
  after(async () => {
    await w?.close();
    await broker?.close();
  });

  test('the broker takes a 100 MB packet but does not deliver it past the maximum the agent and serve announced; status names the inventory it cannot show', async () => {
    broker = await startMosquitto({ maxPacketBytes: null });
    w = await makeWorld(broker);
    const init = await fleetCli('init', '--dir', join(w.work, 'second-fleet'), '--fleet-id', 'second', '--broker', broker.url, '--admin-user', broker.adminUser, '--admin-password', broker.adminPassword);
    assert.equal(init.status, 0, init.stderr);
    assert.match(init.stderr, /warning: the broker sets no packet size limit.*max_packet_size 1048576/);

    const pids = { agent: w.agent.pid!, serve: w.serve.pid };
    const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => { resetPeak(pid); return [name, memoryOf(pid)]; }));
    assert.equal(await publishAs(w, w.fleetAccount, deviceTopic(w.deviceId, 'cmd'), huge), 'acknowledged');
    const ping = await fleetCli('send', '--dir', w.fleetDir, w.deviceId, 'ping', '--json', '--timeout', '10000');
    assert.equal(ping.status, 0, ping.stderr);
    const agentGrew = memoryOf(pids.agent).peak - before.agent!.rss;
    assert.ok(agentGrew < MEMORY_BOUND_BYTES, `agent: peak resident memory grew by ${Math.round(agentGrew / 1048576)} MB`);

    // With the device stopped (it sends its inventory again at every connection), a retained inventory of
    // 100 MB replaces its own: serve and status (MQTT 5, 1 MiB announced) are never sent it.
    await w.agent.stop();
    assert.equal(await publishAs(w, w.fleetAccount, deviceTopic(w.deviceId, 'inventory'), huge, { retain: true }), 'acknowledged');
    const status = await statusJson(w.fleetDir, w.deviceId);
    assert.equal(status.inventory, undefined);
    assert.match(status.unavailable.inventory ?? '', /none received.*larger than the 1048576-byte packet limit/);
    const human = await fleetCli('status', '--dir', w.fleetDir, w.deviceId);
    assert.match(human.stdout, /inventory\s+unavailable: none received/);
    const serveGrew = memoryOf(pids.serve).peak - before.serve!.rss;
    assert.ok(serveGrew < MEMORY_BOUND_BYTES, `serve: peak resident memory grew by ${Math.round(serveGrew / 1048576)} MB`);

    // The device back: its inventory replaces the oversized one, and status shows it again.
    w.agent = new AgentProcess({ stateDir: join(w.work, 'device'), bootstrapPath: w.bootstrapPath });
    await w.agent.waitForMsg(/→ online/);
    await waitFor('the inventory v1 in the fleet status', async () => ((await statusJson(w!.fleetDir, w!.deviceId)).inventory?.v === 1 ? true : undefined), 15_000, { intervalMs: 200 });
  });
});
