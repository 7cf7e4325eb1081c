import { TsunaguError } from '../protocol/errors.js';
import { connectFleetClient } from './broker-setup.js';
import { printable, printTable } from './terminal-text.js';
import { prepareDeploymentFiles } from './deploy/deployment-files.js';
import { formatSelector, matchesSelector, parseSelector } from './deploy/selector.js';
import { checkDeploymentName, parseSettings, PRIORITY_RANGE, type Deployment } from './deployments/deployment.js';
import { DEPLOYMENTS_CHANGED_TOPIC, ROLLOUTS_CHANGED_TOPIC } from './deployments/deployment-reconciler.js';
import { abortRollout, pauseRollout, resumeRollout } from './deployments/rollout-commands.js';
import { describeRolloutEvent } from './deployments/rollout-driver.js';
import { rolloutStateFromJson, type RolloutState } from './deployments/rollout-state.js';
import { parseStrategy } from './deployments/rollout-strategy.js';
import { renderRolloutText, rolloutView } from './deployments/rollout-view.js';
import { DeploymentStore, type RevisionContent } from './deployments/deployment-store.js';
import { effectiveLabels } from './deployments/desired-plan.js';
import { sealRevisionSecrets } from './deployments/revision-secrets.js';
import { fleetPaths, loadFleetDir, type FleetDir } from './fleet-dir.js';
import { callServe } from './serve-channel/serve-channel-client.js';
import { SERVE_CHANNEL_VERSION } from './serve-channel/serve-channel-wire.js';
import { FleetDatabase } from './fleet-database.js';

export interface RevisionOptions {
  dir: string;
  envFile?: string;
  registryAuth?: string[];
  /** `key=value`, repeatable: device settings (protocol/device-settings.ts). */
  setting?: string[];
}

export interface CreateOptions extends RevisionOptions {
  selector: string;
  priority: string;
  waves?: string;
  bake?: string;
  maxFailures?: string;
  onHalt?: string;
  waveDeadline?: string;
}


/** `--setting metricsIntervalMs=60000`; numbers are read as numbers. */
export function parseSettingOptions(entries: readonly string[]): ReturnType<typeof parseSettings> {
  if (entries.length === 0) return null;
  const raw: Record<string, unknown> = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new TsunaguError('CONFIG', `--setting "${entry}" is not name=value`);
    const value = entry.slice(eq + 1);
    raw[entry.slice(0, eq)] = /^\d+$/.test(value) ? Number(value) : value;
  }
  try {
    return parseSettings(raw);
  } catch (err) {
    throw new TsunaguError('CONFIG', `--setting: ${(err as Error).message} (settings: metricsIntervalMs; see docs/deployments.md)`);
  }
}

/** Read, validate and seal one revision: nothing is stored unless the whole document validates. */
function revisionContent(fleet: FleetDir, composePath: string, o: RevisionOptions, inherited: RevisionContent['settings']): RevisionContent {
  const prepared = prepareDeploymentFiles(composePath, o);
  const settings = o.setting !== undefined && o.setting.length > 0 ? parseSettingOptions(o.setting) : inherited;
  return { compose: prepared.compose, sealedSecrets: sealRevisionSecrets(prepared, fleet.keys.boxPublicKey), settings };
}

function parsePriority(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < PRIORITY_RANGE.min || n > PRIORITY_RANGE.max) {
    throw new TsunaguError('CONFIG', `--priority must be a whole number from ${PRIORITY_RANGE.min} to ${PRIORITY_RANGE.max}, not "${text}"`);
  }
  return n;
}

async function withStore<T>(dir: string, fn: (store: DeploymentStore, database: FleetDatabase, fleet: FleetDir) => T | Promise<T>): Promise<T> {
  const fleet = loadFleetDir(dir);
  const database = new FleetDatabase(fleet.databasePath);
  const store = new DeploymentStore(database);
  try {
    return await fn(store, database, fleet);
  } finally {
    database.close();
  }
}

/**
 * Tell a running `serve` that deployments changed, so it reconciles now.
 * The database is already written: a `serve` that is not running picks the
 * change up when it starts, so failing to tell it is only a note.
 */
export async function notifyServe(fleet: FleetDir, write: (text: string) => void = (t) => process.stderr.write(t)): Promise<void> {
  // A `serve` on this host, already connected, tells every instance of the fleet at once.
  try {
    let told = false;
    const call = callServe(fleetPaths(fleet.dir).serveSocket, { v: SERVE_CHANNEL_VERSION, verb: 'deployments-changed' }, (r) => { told ||= r.kind === 'done'; });
    if (await call.finished === 'answered' && told) return;
  } catch {
    // The broker path below says so if it cannot tell either.
  }
  try {
    const client = await connectFleetClient(fleet.config, 'deployment');
    try {
      await client.publishAsync(DEPLOYMENTS_CHANGED_TOPIC, Buffer.from('{}'), { qos: 1 });
    } finally {
      await client.endAsync();
    }
  } catch (err) {
    write(`note: could not reach the broker (${(err as Error).message}); \`tsunagu-fleet serve\` applies the change when it runs\n`);
  }
}

export async function runDeploymentCreate(name: string, composePath: string, o: CreateOptions): Promise<void> {
  checkDeploymentName(name);
  const selector = parseSelector(o.selector);
  const priority = parsePriority(o.priority);
  const strategy = parseStrategy({
    ...(o.waves === undefined ? {} : { waves: o.waves }), ...(o.bake === undefined ? {} : { bake: o.bake }),
    ...(o.maxFailures === undefined ? {} : { maxFailures: o.maxFailures }), ...(o.onHalt === undefined ? {} : { onHalt: o.onHalt }),
    ...(o.waveDeadline === undefined ? {} : { deadline: o.waveDeadline }),
  });
  await withStore(o.dir, async (store, _database, fleet) => {
    const d = store.create({ name, selector, priority, strategy }, revisionContent(fleet, composePath, o, null), Date.now());
    process.stdout.write(`created deployment ${d.name} (revision ${d.revision}) for devices with ${formatSelector(d.selector)}\n`);
    await notifyServe(fleet);
  });
}

export async function runDeploymentUpdate(name: string, composePath: string, o: RevisionOptions): Promise<void> {
  await withStore(o.dir, async (store, _database, fleet) => {
    const current = store.require(name);
    const d = store.update(name, revisionContent(fleet, composePath, o, store.revision(name, current.revision)?.settings ?? null), Date.now());
    process.stdout.write(`deployment ${d.name}: revision ${d.revision}\n`);
    await notifyServe(fleet);
  });
}

const TRANSITIONS = { pause: pauseRollout, resume: resumeRollout, abort: abortRollout } as const;
const STATE_AFTER = { pause: 'paused', resume: 'active', abort: 'aborted' } as const;

/**
 * pause, resume, abort: a pure transition of the stored rollout, written
 * only if `serve` did not change it meanwhile (else read again and retry).
 */
export async function runDeploymentState(verb: 'pause' | 'resume' | 'abort', name: string, o: { dir: string }): Promise<void> {
  await withStore(o.dir, async (store, _database, fleet) => {
    for (let attempt = 0; ; attempt += 1) {
      const d = store.require(name);
      const row = store.rollout(name);
      if (row === undefined) throw new TsunaguError('CONFIG', `deployment ${name} has no rollout yet: \`tsunagu-fleet serve\` starts it`);
      const now = Date.now();
      const { state, events } = TRANSITIONS[verb](rolloutStateFromJson(row.state), now);
      if (store.saveRollout(name, state, row.seq, now, events.map(describeRolloutEvent))) {
        if (events.length > 0) store.setState(name, STATE_AFTER[verb], now, `by operator (${verb})`);
        process.stdout.write(`deployment ${d.name}: rollout to revision ${state.toRevision} ${state.phase}${events.length === 0 ? ' (already)' : ''}\n`);
        break;
      }
      if (attempt >= 10) throw new TsunaguError('CONFIG', `the rollout of ${name} keeps changing under this command; try again`);
    }
    await notifyServe(fleet);
  });
}

export async function runDeploymentDelete(name: string, o: { dir: string }): Promise<void> {
  await withStore(o.dir, async (store, _database, fleet) => {
    store.delete(name, Date.now());
    process.stdout.write(`deleted deployment ${name}: its devices lose its services\n`);
    await notifyServe(fleet);
  });
}

/** The active devices a deployment's selector matches now, with their effective labels. */
function matchingDevices(d: Deployment, database: FleetDatabase, store: DeploymentStore): string[] {
  const fleetLabels = store.fleetLabels();
  return database.list()
    .filter((dev) => dev.status === 'active' && matchesSelector(d.selector, effectiveLabels(dev.deviceId, dev.labels, fleetLabels.get(dev.deviceId))))
    .map((dev) => dev.deviceId);
}

/** The rollout's phase, with the wave while it runs: `running 2/4`, `done`, `halted 1/4`. */
function rolloutPhase(store: DeploymentStore, name: string): string {
  const row = store.rollout(name);
  if (row === undefined) return 'not started';
  try {
    const r = rolloutStateFromJson(row.state);
    return r.phase === 'done' || r.phase === 'aborted' ? r.phase : `${r.phase} ${r.wave + 1}/${r.strategy.waves.length}`;
  } catch {
    return 'unreadable';
  }
}

export async function runDeploymentList(o: { dir: string; json?: boolean }): Promise<void> {
  await withStore(o.dir, (store, database) => {
    const rows = store.list().map((d) => ({ ...d, rollout: rolloutPhase(store, d.name), devices: matchingDevices(d, database, store).length }));
    if (o.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    if (rows.length === 0) {
      process.stdout.write('no deployments yet (see: tsunagu-fleet deployment create --help)\n');
      return;
    }
    printTable(['NAME', 'REVISION', 'ROLLOUT', 'PRIORITY', 'SELECTOR', 'DEVICES'],
      rows.map((d) => [d.name, String(d.revision), d.rollout, String(d.priority), formatSelector(d.selector), String(d.devices)]));
  });
}

interface StatusDevice {
  deviceId: string;
  revision: number | null;
  version: number | null;
  services: string[];
  conflicts: { kind: string; name: string; winner: { deployment: string; priority: number }; losers: { deployment: string; priority: number }[] }[];
}

function deploymentStatus(name: string, store: DeploymentStore, database: FleetDatabase): { deployment: Deployment; rollout: ReturnType<typeof rolloutView> | null; devices: StatusDevice[] } {
  const d = store.require(name);
  const targets = matchingDevices(d, database, store);
  const devices = targets.map((deviceId): StatusDevice => {
    const published = store.published(deviceId);
    const source = published?.sources.find((s) => s.deployment === name);
    const conflicts = (published?.conflicts ?? []).filter((c) => c.winner.deployment === name || c.losers.some((l) => l.deployment === name));
    return { deviceId, revision: store.publishedRevisions(name).get(deviceId)?.revision ?? null, version: published?.version ?? null, services: source?.services ?? [], conflicts };
  });
  const row = store.rollout(name);
  let rollout: RolloutState | undefined;
  try {
    rollout = row === undefined ? undefined : rolloutStateFromJson(row.state);
  } catch {
    rollout = undefined;
  }
  return { deployment: d, rollout: rollout === undefined ? null : rolloutView(rollout, targets), devices };
}

function statusText(s: ReturnType<typeof deploymentStatus>): string {
  const d = s.deployment;
  const lines = [`deployment ${d.name}: revision ${d.revision}, ${d.state}, priority ${d.priority}, selector ${formatSelector(d.selector)}, ${s.devices.length} device(s)`];
  const text = lines.join('\n') + '\n' + (s.rollout === null ? 'rollout: not started yet (`tsunagu-fleet serve` starts it)\n' : renderRolloutText(s.rollout));
  const conflicts = s.devices.flatMap((v) => v.conflicts.map((c) => `  ${v.deviceId}  ${c.kind} ${c.name}: ${c.winner.deployment} (priority ${c.winner.priority}) over ${c.losers.map((l) => `${l.deployment} (${l.priority})`).join(', ')}`));
  return conflicts.length === 0 ? text : `${text}  conflicts\n${[...new Set(conflicts)].join('\n')}\n`;
}

/** `deployment status NAME [--json] [--watch]`: `--watch` redraws each time `serve` says a rollout changed. */
export async function runDeploymentStatus(name: string, o: { dir: string; json?: boolean; watch?: boolean }): Promise<void> {
  await withStore(o.dir, async (store, database, fleet) => {
    const show = (): void => {
      const s = deploymentStatus(name, store, database);
      if (o.json) process.stdout.write(`${JSON.stringify(s, null, o.watch ? 0 : 2)}\n`);
      else process.stdout.write(`${o.watch && process.stdout.isTTY ? '\x1b[H\x1b[2J' : ''}${printable(statusText(s))}`);
    };
    show();
    if (!o.watch) return;
    const client = await connectFleetClient(fleet.config, 'deployment-status');
    try {
      client.on('message', show);
      await client.subscribeAsync([ROLLOUTS_CHANGED_TOPIC, DEPLOYMENTS_CHANGED_TOPIC], { qos: 0 });
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        client.once('close', resolve);
      });
    } finally {
      await client.endAsync();
    }
  });
}

/** `label DEVICE site=berlin group-`: set or (trailing `-`) remove the operator's labels of one device. */
export async function runLabel(deviceId: string, changes: string[], o: { dir: string }): Promise<void> {
  if (changes.length === 0) throw new TsunaguError('CONFIG', 'give at least one key=value (set) or key- (remove)');
  const parsed: Record<string, string | null> = {};
  for (const change of changes) {
    if (change.endsWith('-') && !change.includes('=')) {
      parsed[change.slice(0, -1)] = null;
      continue;
    }
    Object.assign(parsed, parseSelector(change));
  }
  await withStore(o.dir, async (store, database, fleet) => {
    if (database.byId(deviceId)?.status !== 'active') throw new TsunaguError('CONFIG', `no enrolled device "${deviceId}" (see: tsunagu-fleet devices)`);
    const labels = store.setFleetLabels(deviceId, parsed, Date.now());
    process.stdout.write(`${deviceId}: fleet labels ${formatSelector(labels) || '(none)'}\n`);
    await notifyServe(fleet);
  });
}
