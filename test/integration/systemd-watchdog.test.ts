import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AgentProcess } from '../support/agent-process.js';
import type { TestFleet } from '../support/fleet.js';
import { fleetSession } from '../support/fleet-session.js';
import type { TestBroker } from '../support/mosquitto.js';
import { closeFleetWorld, startFleetWorld, type FleetWorld } from '../support/fleet-world.js';
import { NotifySocket } from '../support/notify-socket.js';

// The agent under systemd, as far as a process can tell: a NOTIFY_SOCKET
// (a real AF_UNIX datagram socket this test creates) and WATCHDOG_USEC in
// its environment. The shipped agent bundle sends through the real
// systemd-notify binary; the test reads what a service manager would read.
const WATCHDOG_MS = 4000;
const MAX_STALL_MS = 3000;
let world: FleetWorld | undefined;
let broker: TestBroker;
let tf: TestFleet;
let work: string;
let stateDir: string;
let bootstrapPath: string;
let notify: NotifySocket;
let agent: AgentProcess;
let deviceId: string;
let fleet: Awaited<ReturnType<typeof fleetSession>>;
const events: Record<string, unknown>[] = [];

const CONFIG = `
enrollment: { startupJitterMs: 0, backoffBaseMs: 200, backoffCapMs: 1000 }
link: { keepaliveSeconds: 5, backoffBaseMs: 100, backoffCapMs: 1000 }
clock: { trust: always }
reports: { metricsIntervalMs: 60000, sampleIntervalMs: 30000 }
watchdog: { maxStallMs: ${MAX_STALL_MS} }
`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  if (spawnSync('sh', ['-c', 'command -v systemd-notify'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('systemd-notify is missing: it comes with Debian\'s systemd package, which the agent relies on under systemd');
  }
  // No enrollment service yet: the first test starts it once the agent waits for its fleet.
  world = await startFleetWorld('tsunagu-watchdog-', { enrollmentService: false });
  ({ broker, tf, work, stateDir, bootstrapPath } = world);
  notify = await NotifySocket.open(join(work, 'notify.sock'));
});

after(async () => {
  await agent?.stop('SIGKILL');
  await fleet?.close();
  await notify?.close();
  await closeFleetWorld(world ?? {});
});

test('READY once the agent runs, before its fleet answers; WATCHDOG=1 every half timeout, credited to the agent\'s own PID', async () => {
  // No enrollment service yet: a device waiting for its fleet is running, not starting.
  agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: CONFIG, env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: String(WATCHDOG_MS * 1000) } });
  const ready = await notify.waitFor('READY=1', (m) => m.fields.READY === '1');
  assert.match(ready.fields.STATUS ?? '', /^enrolling; no desired state$/);
  assert.equal(agent.lines.some((l) => l.msg === 'enrolled'), false, 'ready before enrollment');
  if (process.getuid?.() === 0) {
    assert.equal(ready.pid, agent.pid, 'as root, systemd-notify --no-block sends with the agent\'s PID: NotifyAccess=main suffices');
    assert.equal(ready.fds, 0, 'no barrier with --no-block');
  } else {
    assert.ok(notify.messages.some((m) => m.fields.BARRIER === '1' && m.fds === 1), 'without root, systemd-notify waits on a barrier');
  }

  await tf.startServer();
  deviceId = await agent.enrolledAndOnline(30_000);
  await notify.waitFor('status online', (m) => m.fields.WATCHDOG === '1' && /^link online/.test(m.fields.STATUS ?? ''), 3 * WATCHDOG_MS);
  await notify.waitFor('a sixth ping', () => notify.with('WATCHDOG').length >= 6, 4 * WATCHDOG_MS);
  const pings = notify.with('WATCHDOG');
  if (process.getuid?.() === 0) for (const p of pings) assert.equal(p.pid, agent.pid);
  const gaps = pings.slice(1).map((p, i) => p.at - (pings[i]?.at ?? 0));
  assert.ok(gaps.every((g) => g > WATCHDOG_MS / 4 && g < WATCHDOG_MS), `pings about every ${WATCHDOG_MS / 2} ms, never a gap systemd would kill for: ${JSON.stringify(gaps)}`);
});

test('a main loop blocked on a read that never returns: the pings stop; running again, the agent knows it was stuck and does not resume them', async () => {
  fleet = await fleetSession(tf, broker.url);
  await fleet.link.watch(deviceId, ['events'], (r) => events.push(JSON.parse(r.payload.toString()) as Record<string, unknown>));
  // desired.msg becomes a FIFO nobody writes: `reread-desired` reads it synchronously
  // (as it reads a stalled SD card), and the whole event loop waits on that read.
  const fifo = join(stateDir, 'desired.msg');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const reply = fleet.link.send(deviceId, { name: 'reread-desired', args: {} }, { timeoutMs: 60_000 }).catch((err: unknown) => err);
  // A non-blocking open for writing succeeds only once a reader waits on the FIFO: proof the agent is in that read.
  let writer: number | undefined;
  const deadline = Date.now() + 15_000;
  while (writer === undefined) {
    try {
      writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
  const blockedAt = Date.now();
  // A systemd-notify started just before the block may still be delivering.
  await sleep(300);
  const before = notify.with('WATCHDOG').length;
  await sleep(2 * WATCHDOG_MS);
  assert.equal(notify.with('WATCHDOG').length, before, 'no ping while the loop is blocked');
  const lastPing = notify.with('WATCHDOG').at(-1)?.at ?? 0;
  assert.ok(Date.now() - lastPing > WATCHDOG_MS, 'systemd would have ended the agent by now');

  // The read returns (end of file): the loop runs again.
  closeSync(writer);
  rmSync(fifo);
  const stuck = await agent.waitForMsg(/the agent is stuck/, 10_000);
  const stalled = Number(/main loop stalled for (\d+) ms/.exec(String(stuck.reason))?.[1]);
  // The probe last ran up to one probe interval (1 s) before the block began.
  assert.ok(stalled >= 2 * WATCHDOG_MS - 1000 && stalled <= Date.now() - blockedAt + 1000, `stall measured as ${stalled} ms`);
  const status = await notify.waitFor('stuck status', (m) => /^stuck: main loop stalled for \d+ ms \(limit 3000 ms\); watchdog pings stopped$/.test(m.fields.STATUS ?? ''));
  assert.equal(status.fields.WATCHDOG, undefined);
  const event = await (async () => {
    for (let i = 0; i < 100; i++) {
      const e = events.find((x) => x.type === 'watchdog-stuck');
      if (e !== undefined) return e;
      await sleep(100);
    }
    return undefined;
  })();
  assert.match(String(event?.reason), /^main loop stalled for \d+ ms \(limit 3000 ms\)$/, 'the fleet is told too');
  await reply;
  const pingsAfter = notify.with('WATCHDOG').length;
  await sleep(2 * WATCHDOG_MS);
  assert.equal(notify.with('WATCHDOG').length, pingsAfter, 'stuck is final');
  assert.equal(pingsAfter, before);
});

test('STOPPING=1 when the agent shuts down', async () => {
  const code = await agent.stop('SIGTERM');
  assert.equal(code, 0);
  const stopping = await notify.waitFor('STOPPING=1', (m) => m.fields.STOPPING === '1', 5000);
  assert.equal(stopping.fields.STATUS, 'stopping');
  if (process.getuid?.() === 0) assert.equal(stopping.pid, agent.pid);
});

test('watchdog mode off: the agent tells systemd nothing', async () => {
  const quiet = await NotifySocket.open(join(work, 'quiet.sock'));
  try {
    agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: `${CONFIG.replace(/watchdog: .*/, '')}watchdog: { mode: off }\n`, env: { NOTIFY_SOCKET: quiet.path, WATCHDOG_USEC: '1000000' } });
    await agent.waitForMsg(/→ online/, 30_000);
    await sleep(2000);
    assert.deepEqual(quiet.messages, []);
    assert.equal(agent.lines.some((l) => l.msg === 'notifying systemd'), false);
  } finally {
    await quiet.close();
  }
});
