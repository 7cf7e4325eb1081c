import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { isSecretClientId } from '../../protocol/client-id.js';
import { deviceTopic, TOPIC_ROOT } from '../../protocol/topics.js';
import { FleetDatabase } from '../../provisioning/fleet-database.js';
import { AgentProcess, FLEET_BUNDLE } from '../support/agent-process.js';
import { freePort, startMosquitto, type TestBroker } from '../support/mosquitto.js';
import { connectAs } from '../support/mqtt-probe.js';

// Finding 13.1: MQTT hands a session to whoever connects under its client id,
// closing the holder's connection and, with clean start, discarding the
// commands queued for it. Every credential that is not the device's own (the
// bootstrap credential every device image carries, another device's, the
// fleet service's) attacks an enrolled agent of the shipped bundle, on both
// brokers, under the device's public id and, where that credential could
// learn it, its real client id: the agent stays online and a queued command
// still gets its signed reply.

interface Credential { name: string; username: string; password: string }
interface Grant { deviceId: string; username: string; password: string; clientId: string }

const ROUNDS = 3;

function fleetCli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [FLEET_BUNDLE, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function grantOf(stateDir: string): Grant {
  return (JSON.parse(readFileSync(join(stateDir, 'identity.json'), 'utf8')) as { grant: Grant }).grant;
}

/** `tsunagu-fleet send <id> ping` as its own process: resolves with its exit code and the reply. */
function sendPing(fleetDir: string, deviceId: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [FLEET_BUNDLE, 'send', '--dir', fleetDir, deviceId, 'ping', '--json', '--timeout', '60000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.once('exit', (status) => resolve({ status, stdout, stderr })));
}

function assertPong(result: { status: number | null; stdout: string; stderr: string }): void {
  assert.equal(result.status, 0, `ping: ${result.stderr}`);
  const reply = JSON.parse(result.stdout) as { ok: boolean; result?: { pong?: boolean } };
  assert.equal(reply.ok, true);
}

/**
 * Connect as `credential` under `clientId` with clean start (MQTT 5: and no
 * session expiry), the connection that discards a session, and leave at once.
 */
async function connectWithCleanStart(url: string, protocolVersion: 4 | 5, credential: Credential, clientId: string): Promise<'accepted' | { refused: number | undefined }> {
  let client: MqttClient;
  try {
    client = await connectAs(url, credential.username, credential.password, clientId, protocolVersion);
  } catch (err) {
    return { refused: (err as { code?: number }).code };
  }
  await client.endAsync(true);
  return 'accepted';
}

async function startServe(fleetDir: string, log: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [FLEET_BUNDLE, 'serve', '--dir', fleetDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.on('data', (d: Buffer) => log.push(d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${log.join('')}`)));
    child.stdout.on('data', (d: Buffer) => {
      log.push(d.toString());
      if (d.toString().includes('enrollment service listening')) resolve();
    });
  });
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Enroll an agent of the shipped bundle and wait until it is online. */
async function enrolledAgent(stateDir: string, bootstrapPath: string, serial: string): Promise<{ agent: AgentProcess; grant: Grant }> {
  const agent = new AgentProcess({ stateDir, bootstrapPath, serial });
  await agent.waitForMsg('enrolled');
  await agent.waitForMsg(/link connecting → online/);
  return { agent, grant: grantOf(stateDir) };
}

interface FleetConfigFile {
  broker: { url: string; protocolVersion: 4 | 5; username: string; password: string };
  bootstrap: { username: string; password: string };
}

/** A fleet made and served by the shipped fleet bundle, on a Mosquitto of its own or on the embedded broker. */
interface ServedFleet {
  work: string;
  fleetDir: string;
  bootstrapPath: string;
  broker: TestBroker | undefined;
  config: FleetConfigFile;
  serveLog: string[];
  agents: AgentProcess[];
  close(): Promise<void>;
}

async function servedFleet(brokerKind: 'mosquitto' | 'embedded'): Promise<ServedFleet> {
  const work = mkdtempSync(join(tmpdir(), `tsunagu-takeover-${brokerKind}-`));
  const fleetDir = join(work, 'fleet');
  const bootstrapPath = join(work, 'bootstrap.json');
  const broker = brokerKind === 'mosquitto' ? await startMosquitto() : undefined;
  const init = broker !== undefined
    ? fleetCli('init', '--dir', fleetDir, '--fleet-id', 'takeover', '--broker', broker.url, '--admin-user', broker.adminUser,
      '--admin-password', broker.adminPassword, '--claim-token', 'takeover-token')
    : fleetCli('init', '--dir', fleetDir, '--fleet-id', 'takeover', '--listen', `127.0.0.1:${await freePort()}`, '--claim-token', 'takeover-token');
  assert.equal(init.status, 0, init.stderr);
  const boot = fleetCli('bootstrap', '--dir', fleetDir, '--out', bootstrapPath, '--claim-token', 'takeover-token');
  assert.equal(boot.status, 0, boot.stderr);
  const serveLog: string[] = [];
  const serve = await startServe(fleetDir, serveLog);
  const agents: AgentProcess[] = [];
  return {
    work, fleetDir, bootstrapPath, broker, serveLog, agents,
    config: JSON.parse(readFileSync(join(fleetDir, 'fleet.json'), 'utf8')) as FleetConfigFile,
    close: async () => {
      for (const a of agents) await a.stop();
      await stopProcess(serve);
      await broker?.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

for (const brokerKind of ['mosquitto', 'embedded'] as const) {
  test(`${brokerKind}: no credential but the device's own ends its session or discards its queued commands`, async () => {
    const f = await servedFleet(brokerKind);
    const { work, fleetDir, bootstrapPath, config, serveLog, agents } = f;
    let observer: MqttClient | undefined;
    try {
      const { url, protocolVersion } = config.broker;
      // Everything the fleet's topics carry, for the check that no client id travels there.
      observer = await connectAs(url, config.broker.username, config.broker.password, undefined, protocolVersion);
      const seen: { topic: string; payload: string }[] = [];
      const seenWaiters: { match: (topic: string) => boolean; resolve: () => void }[] = [];
      observer.on('message', (topic, payload) => {
        seen.push({ topic, payload: payload.toString('utf8') });
        for (const w of [...seenWaiters]) if (w.match(topic)) { seenWaiters.splice(seenWaiters.indexOf(w), 1); w.resolve(); }
      });
      await observer.subscribeAsync(`${TOPIC_ROOT}/#`, { qos: 1 });
      const published = (topic: string): Promise<void> => new Promise((resolve) => seenWaiters.push({ match: (t) => t === topic, resolve }));

      const target = await enrolledAgent(join(work, 'dev-target'), bootstrapPath, 'takeover-target');
      agents.push(target.agent);
      const other = await enrolledAgent(join(work, 'dev-other'), bootstrapPath, 'takeover-other');
      agents.push(other.agent);
      const victim = target.grant;
      assert.ok(isSecretClientId(victim.clientId), `a secret client id, not ${victim.clientId}`);
      assert.notEqual(victim.clientId, other.grant.clientId);
      assert.notEqual(victim.clientId, victim.deviceId);

      const bootstrap: Credential = { name: 'bootstrap', ...config.bootstrap };
      const anotherDevice: Credential = { name: 'another device', username: other.grant.username, password: other.grant.password };
      const fleetService: Credential = { name: 'fleet service', username: config.broker.username, password: config.broker.password };
      // What each credential can name. The device id is public (every topic shows it), and is
      // the client id of devices enrolled before secret client ids. The secret one travels only
      // in the grant sealed to the device; each attacker that could still come by it is given it
      // here. Another device's account is bound to its own client id on both brokers. The
      // embedded broker refuses every other account under a device's ids. Mosquitto lets an
      // unbound account (the bootstrap's, the fleet's) take any client id, so there only the
      // secrecy protects: the bootstrap credential never sees the secret, and the fleet service
      // administers the dynamic-security plugin (it can read, reset or delete any device's
      // account, and so end its session in any case; SECURITY.md says so).
      const attempts: { credential: Credential; clientId: string; mustBeRefused: boolean }[] = brokerKind === 'embedded'
        ? [bootstrap, anotherDevice, fleetService].flatMap((credential) => [victim.deviceId, victim.clientId].map((clientId) => ({ credential, clientId, mustBeRefused: true })))
        : [
          { credential: bootstrap, clientId: victim.deviceId, mustBeRefused: false },
          { credential: anotherDevice, clientId: victim.deviceId, mustBeRefused: true },
          { credential: anotherDevice, clientId: victim.clientId, mustBeRefused: true },
          { credential: fleetService, clientId: victim.deviceId, mustBeRefused: false },
        ];
      const attack = async (): Promise<void> => {
        for (let round = 0; round < ROUNDS; round++) {
          for (const a of attempts) {
            const outcome = await connectWithCleanStart(url, protocolVersion, a.credential, a.clientId);
            if (!a.mustBeRefused) continue;
            const what = `${a.credential.name} under ${a.clientId === victim.clientId ? 'the real client id' : 'the device id'}`;
            assert.notEqual(outcome, 'accepted', what);
            // The embedded broker answers CONNACK 5 (not authorized), before it looks for the session.
            if (brokerKind === 'embedded') assert.deepEqual(outcome, { refused: 5 }, what);
          }
        }
      };

      // The device offline, a command queued in its persistent session: the attacks must not discard it.
      await target.agent.stop();
      const cmdTopic = deviceTopic(victim.deviceId, 'cmd');
      const queued = published(cmdTopic);
      const whileOffline = sendPing(fleetDir, victim.deviceId);
      await queued;
      await attack();
      const back = new AgentProcess({ stateDir: join(work, 'dev-target'), bootstrapPath, serial: 'takeover-target' });
      agents.push(back);
      await back.waitForMsg('identity found; skipping enrollment');
      await back.waitForMsg(/link connecting → online/);
      assertPong(await whileOffline);

      // The device online: the attacks must not close its connection, and it keeps answering.
      await attack();
      assertPong(await sendPing(fleetDir, victim.deviceId));
      // A closed connection would have shown before the reply, which needs the link to be up again.
      const transitions = back.lines.filter((l) => /^link \w+ → \w+$/.test(String(l.msg))).map((l) => String(l.msg));
      assert.deepEqual(transitions, ['link offline → connecting', 'link connecting → online'], 'the agent stayed online throughout');
      assert.equal(back.lines.some((l) => l.msg === 'enrolled'), false);

      // The secret is nowhere another party reads: not on any topic, not in the service's log.
      for (const grant of [victim, other.grant]) {
        assert.equal(seen.find((m) => m.payload.includes(grant.clientId)), undefined, 'no topic carries a client id');
        assert.ok(!serveLog.join('').includes(grant.clientId), 'the service does not log a client id');
        assert.ok(!agents.some((a) => a.lines.some((l) => JSON.stringify(l).includes(grant.clientId))), 'no agent logs a client id');
        assert.ok(!readFileSync(join(fleetDir, 'registry.db')).includes(grant.clientId), 'the registry keeps only the sealed grant');
      }
    } finally {
      await observer?.endAsync(true);
      await f.close();
    }
  });
}

test('mosquitto: a device enrolled before secret client ids gets one when its account is deleted, and keeps its device id', async () => {
  const f = await servedFleet('mosquitto');
  const broker = f.broker!;
  try {
    const stateDir = join(f.work, 'dev-older');
    const first = await enrolledAgent(stateDir, f.bootstrapPath, 'takeover-older');
    f.agents.push(first.agent);
    await first.agent.stop();
    // What an earlier version left: the grant's client id is the device id, and the account is bound to it.
    const identityPath = join(stateDir, 'identity.json');
    const identity = JSON.parse(readFileSync(identityPath, 'utf8')) as { grant: Grant };
    writeFileSync(identityPath, JSON.stringify({ ...identity, grant: { ...identity.grant, clientId: identity.grant.deviceId } }), { mode: 0o600 });
    const ctrl = (...args: string[]): void => {
      const r = spawnSync('mosquitto_ctrl', ['-h', '127.0.0.1', '-p', String(broker.port), '-u', broker.adminUser, '-P', broker.adminPassword, 'dynsec', ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    ctrl('setClientId', first.grant.deviceId, first.grant.deviceId);
    // ... and a grant made long ago (a re-enrollment within 60 s of a grant would get that same grant again).
    const database = new FleetDatabase(join(f.fleetDir, 'registry.db'));
    try {
      const sealed = database.recentGrant(first.grant.deviceId, Date.now(), Number.POSITIVE_INFINITY);
      assert.ok(sealed !== undefined, 'sealed !== undefined');
      database.recordGrant(first.grant.deviceId, sealed, Date.now() - 3_600_000);
    } finally {
      database.close();
    }
    const older = new AgentProcess({ stateDir, bootstrapPath: f.bootstrapPath, serial: 'takeover-older' });
    f.agents.push(older);
    await older.waitForMsg(/link connecting → online/);

    // The move of docs/provisioning.md: delete the account; the agent re-enrolls by itself.
    ctrl('deleteClient', first.grant.deviceId);
    const reenrolled = await older.waitForMsg('enrolled', 30_000);
    assert.equal(reenrolled.deviceId, first.grant.deviceId);
    await older.waitForLog((l) => l.msg === 'link connecting → online' && older.lines.indexOf(l) > older.lines.indexOf(reenrolled));
    const moved = grantOf(stateDir);
    assert.equal(moved.deviceId, first.grant.deviceId);
    assert.ok(isSecretClientId(moved.clientId), moved.clientId);
    assert.notEqual(moved.clientId, first.grant.clientId);
    // Under its device id the bootstrap credential now takes nothing: the agent answers, still online.
    const online = older.lines.length;
    for (let round = 0; round < ROUNDS; round++) {
      await connectWithCleanStart(broker.url, 5, { name: 'bootstrap', ...f.config.bootstrap }, moved.deviceId);
    }
    assertPong(await sendPing(f.fleetDir, moved.deviceId));
    assert.equal(older.lines.slice(online).some((l) => /^link online →/.test(String(l.msg))), false);
  } finally {
    await f.close();
  }
});
