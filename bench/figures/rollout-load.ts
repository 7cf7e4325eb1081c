import { spawn, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mqtt from 'mqtt';
import { silentLogger } from '../../common/logger.js';
import { AgentConfigSchema } from '../../agent/config.js';
import { enroll } from '../../agent/enrollment/enroller.js';
import { defaultEd25519 } from '../../protocol/ed25519.js';
import { generateKeyPairs, type KeyPairs } from '../../protocol/keys.js';
import { parseDeviceTopic, TOPIC_ROOT } from '../../protocol/topics.js';
import { DeploymentStore } from '../../provisioning/deployments/deployment-store.js';
import { parseStrategy } from '../../provisioning/deployments/rollout-strategy.js';
import { FleetDatabase } from '../../provisioning/fleet-database.js';
import { fleetPaths } from '../../provisioning/fleet-dir.js';
import { callServe } from '../../provisioning/serve-channel/serve-channel-client.js';
import { SERVE_CHANNEL_VERSION } from '../../provisioning/serve-channel/serve-channel-wire.js';
import { FLEET_BUNDLE } from '../../test/support/agent-process.js';
import { createTestFleet } from '../../test/support/fleet.js';
import type { FigureResult } from '../figure.js';
import { whenInterrupted } from '../interrupts.js';
import { processCpu } from '../proc-usage.js';
import { SimulatedDevice } from '../simulated-device.js';
import { summarize } from '../stats.js';

const WAVES = '1%,10%,50%,100%';
const NAME = 'bench-rollout';
/** Each phase of the run is bounded: a stuck rollout reports what it reached instead of hanging the bench. */
const PHASE_LIMIT_MS = 5 * 60_000;

interface RolloutEvent { type: string; wave?: number; at: number }

/** `tsunagu-fleet serve` (the shipped bundle, embedded broker inside), its rollout events read from its log. */
function startServe(fleetDir: string, onRollout: (e: RolloutEvent) => void): Promise<ChildProcess> {
  const child = spawn(process.execPath, [FLEET_BUNDLE, 'serve', '--dir', fleetDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 30_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.includes('enrollment service listening')) { clearTimeout(timer); resolve(child); }
      if (!line.includes('"rollout: ')) return;
      const entry = JSON.parse(line) as { deployment?: string; event?: RolloutEvent };
      if (entry.deployment === NAME && entry.event !== undefined) onRollout(entry.event);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
}

function until(check: () => boolean, what: string, wake: (notify: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    if (check()) { resolve(); return; }
    const timer = setTimeout(() => reject(new Error(`${what}: not within ${PHASE_LIMIT_MS / 1000} s`)), PHASE_LIMIT_MS);
    wake(() => { if (check()) { clearTimeout(timer); resolve(); } });
  });
}

function compose(image: string): Record<string, unknown> {
  return { services: { app: { image, network_mode: 'none' } } };
}

/**
 * A deployment's second revision rolled out through four waves (`--waves
 * ${WAVES} --bake 0s`) to `count` simulated devices enrolled through the
 * enrollment protocol and connected to the embedded broker `serve` runs. Each
 * device is the agent's own desired-state code in this process
 * (simulated-device.ts) with its own connection; no containers. Measured:
 * each wave from its start to its pass (serve's own event times), serve's
 * CPU (broker included: it is embedded) per device over the rollout, and
 * every message the broker carried on the device topics during it, per
 * device (seen by one observer on the fleet account). Checked: each device
 * got each desired version once, and ends on the revision's version.
 */
export async function measureRollout(count: number, log: (line: string) => void): Promise<FigureResult[]> {
  const fleet = await createTestFleet('embedded', { fleetId: 'rollout-bench' });
  const shm = join('/dev/shm', `tsunagu-rollout-${process.pid}`);
  const events: RolloutEvent[] = [];
  let notifyEvents = (): void => undefined;
  let serve: ChildProcess | undefined;
  const devices: SimulatedDevice[] = [];
  const abort = new AbortController();
  const enrolling = new AbortController();
  setMaxListeners(count + 10, abort.signal, enrolling.signal);
  const cleanup = async (): Promise<void> => {
    abort.abort();
    enrolling.abort();
    await Promise.all(devices.map((d) => d.close().catch(() => undefined)));
    if (serve !== undefined && serve.exitCode === null) {
      const gone = new Promise((r) => serve!.once('exit', r));
      serve.kill('SIGTERM');
      await gone;
    }
    await fleet.close();
    rmSync(shm, { recursive: true, force: true });
  };
  const forget = whenInterrupted(cleanup);
  try {
    serve = await startServe(fleet.fleet.dir, (e) => { events.push(e); notifyEvents(); });
    const ed = defaultEd25519();
    const defaults = AgentConfigSchema.parse({}).enrollment;
    const keys: KeyPairs[] = Array.from({ length: count }, () => generateKeyPairs());
    const t0 = performance.now();
    // Bounded: on a loaded machine the rollout runs with the devices enrolled by then (said in the note).
    const enrollLimit = setTimeout(() => enrolling.abort(), 2 * PHASE_LIMIT_MS);
    const settled = await Promise.allSettled(keys.map((k, i) => enroll({
      bootstrap: fleet.bootstrap, keys: k, ed, logger: silentLogger(), signal: enrolling.signal,
      startupJitterMs: defaults.startupJitterMs, backoff: { baseMs: defaults.backoffBaseMs, capMs: defaults.backoffCapMs },
      claim: { serial: `roll-${String(i).padStart(5, '0')}`, model: 'bench board', arch: 'arm64', macs: [], hostname: `roll-${i}`, claimToken: fleet.claimToken },
    }).then((grant) => ({ grant, keys: k }))));
    clearTimeout(enrollLimit);
    const enrolled = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (enrolled.length === 0) throw new Error('no simulated device enrolled');
    log(`  ${enrolled.length} of ${count} devices enrolled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const e of enrolled) devices.push(new SimulatedDevice(e.grant, e.keys, fleet.bootstrap, ed, join(shm, e.grant.deviceId)));
    const n = devices.length;
    // In batches: a thousand CONNECTs at once would measure the broker's accept queue, not the rollout.
    for (let i = 0; i < devices.length; i += 100) await Promise.all(devices.slice(i, i + 100).map((d) => d.connect()));
    log(`  ${n} devices connected`);

    const database = new FleetDatabase(fleet.fleet.databasePath);
    const store = new DeploymentStore(database);
    const observer = await mqtt.connectAsync(fleet.fleet.config.broker.url, {
      username: fleet.fleet.config.broker.username, password: fleet.fleet.config.broker.password, protocolVersion: fleet.fleet.config.broker.protocolVersion, reconnectPeriod: 0,
    });
    try {
      await until(() => database.list().filter((d) => d.online).length === n, 'every device online in the fleet database', (n) => {
        const t = setInterval(n, 200); abort.signal.addEventListener('abort', () => clearInterval(t));
      });
      const tell = async (): Promise<void> => {
        const call = callServe(fleetPaths(fleet.fleet.dir).serveSocket, { v: SERVE_CHANNEL_VERSION, verb: 'deployments-changed' }, () => undefined);
        if (await call.finished !== 'answered') throw new Error('serve does not answer on its socket');
      };
      for (const d of devices) store.setFleetLabels(d.deviceId, { rollout: 'bench' }, Date.now());
      const strategy = parseStrategy({ waves: WAVES, bake: '0s', maxFailures: '5%', onHalt: 'revert' });
      store.create({ name: NAME, selector: { rollout: 'bench' }, priority: 0, strategy }, { compose: compose('registry.invalid/app:1'), sealedSecrets: null, settings: null }, Date.now());
      await tell();
      // A first revision is not staged (no rollout events): every device holding a version is the end.
      await until(() => devices.every((d) => d.acceptedVersion !== null), 'revision 1 everywhere', (n) => {
        const t = setInterval(n, 200); abort.signal.addEventListener('abort', () => clearInterval(t));
      });
      log('  revision 1 on every device; rolling out revision 2');
      events.length = 0;

      // What the broker carries from here on, on the device topics, once per message.
      const perKind = new Map<string, number>();
      observer.on('message', (topic, _payload, packet) => {
        if (packet.retain) return;
        const kind = parseDeviceTopic(topic)?.kind ?? 'other';
        perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
      });
      await observer.subscribeAsync(`${TOPIC_ROOT}/devices/#`, { qos: 0 });
      const delivered = new Map(devices.map((d) => [d.deviceId, new Map(d.deliveries)]));
      const cpu0 = processCpu(serve.pid!).selfMs;
      const started = Date.now();
      store.update(NAME, { compose: compose('registry.invalid/app:2'), sealedSecrets: null, settings: null }, Date.now());
      await tell();
      // Events from here on are revision 2's; a halt ends the wait too, and its devices count as lost.
      await until(() => events.some((e) => e.type === 'done' || e.type === 'halted'), 'revision 2 rolled out', (n) => { notifyEvents = n; });
      const finished = Date.now();
      const serveCpuMs = processCpu(serve.pid!).selfMs - cpu0;
      // The last states may still be on their way to the observer: a quiet moment before counting.
      await new Promise((r) => setTimeout(r, 1000));

      const waveMs: number[] = [];
      for (let w = 1; w <= 4; w++) {
        const s = events.find((e) => e.type === 'wave-started' && e.wave === w);
        const p = events.find((e) => e.type === 'wave-passed' && e.wave === w) ?? events.find((e) => e.type === 'done');
        if (s !== undefined && p !== undefined) waveMs.push(p.at - s.at);
      }
      let lost = 0;
      let duplicated = 0;
      for (const d of devices) {
        const before = delivered.get(d.deviceId)!;
        const fresh = [...d.deliveries].filter(([v]) => !before.has(v));
        if (fresh.length === 0 || d.acceptedVersion !== store.published(d.deviceId)?.version) lost++;
        if ([...d.deliveries.values()].some((n) => n > 1)) duplicated++;
      }
      const messages = [...perKind.values()].reduce((a, b) => a + b, 0);
      log(`  waves ${waveMs.map((m) => `${(m / 1000).toFixed(1)} s`).join(', ')}; total ${((finished - started) / 1000).toFixed(1)} s; serve CPU ${(serveCpuMs / n).toFixed(2)} ms/device; ${(messages / n).toFixed(1)} messages/device (${[...perKind].map(([k, c]) => `${k} ${c}`).join(', ')}); lost ${lost}, duplicated ${duplicated}`);
      const note = `${n} simulated devices${n < count ? ` (of ${count} started: the others were not enrolled within ${2 * PHASE_LIMIT_MS / 60_000} min on this machine)` : ''}, each the agent's own desired-state code (FleetVerifier, DesiredChannel, DesiredStore on tmpfs) in the bench process with its own MQTT connection to the broker embedded in one \`tsunagu-fleet serve\` process (the shipped bundle); enrolled through the enrollment protocol; a stand-in supervisor reports \`synced\` at once: no containers, no probation, no pulls. A deployment's revision 2 rolls out with \`--waves ${WAVES} --bake 0s\` after revision 1 reached every device. Per wave: serve's own wave-started → wave-passed times (waves of ${WAVES}). Total ${((finished - started) / 1000).toFixed(1)} s from the update to done. CPU: serve's process (broker included) over the rollout, per device. Messages: every non-retained message on the device topics during the rollout, seen once by an observer (${[...perKind].map(([k, c]) => `${k} ${c}`).join(', ')}); the agent's events are not sent by the simulated devices. Lost: a device that did not get a new version or ends on another version than the fleet database recorded for it; duplicated: a device that verified one version twice.`;
      return [
        { key: 'rollout-waves', title: `rollout to ${n} simulated devices, four waves: time per wave`, value: { summary: summarize(waveMs), unit: 'ms', digits: 0 }, note },
        { key: 'rollout-cpu', title: '… `serve`\'s CPU per device (broker included)', value: { summary: summarize([serveCpuMs / n]), unit: 'ms', digits: 2 } },
        { key: 'rollout-messages', title: '… broker messages per device', value: { summary: summarize([messages / n]), unit: '', digits: 1 } },
        { key: 'rollout-lost', title: '… desired states lost or duplicated', value: { summary: summarize([lost + duplicated]), unit: '', digits: 0 }, target: { op: '<=', limit: 0 } },
      ];
    } finally {
      await observer.endAsync(true);
      database.close();
    }
  } finally {
    forget();
    await cleanup();
  }
}
