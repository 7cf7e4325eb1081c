import Database from 'better-sqlite3';
import { join } from 'node:path';
import { DeploymentWorld, type WorldDevice } from './deployment-world.js';
import { dockerTestEnv, type TestImages } from './test-docker.js';
import { waitFor } from './wait-for.js';

/** The parts of `deployment status NAME --json` the rollout scenarios read. */
export interface RolloutStatus {
  rollout: {
    phase: string;
    fromRevision: number | null;
    toRevision: number;
    wave: number;
    counts: Record<string, number>;
    failures: { failed: number; tried: number; allowed: number };
    failing: {
      deviceId: string;
      wave: number;
      revision: number;
      timedOut: boolean;
      reason: { service?: string; code?: string; message?: string; state?: string; health?: string } | null;
    }[];
  } | null;
  devices: { deviceId: string; revision: number | null; version: number | null }[];
}

/** `deployment status NAME --json`, parsed. */
export async function rolloutStatus(world: DeploymentWorld, name: string): Promise<RolloutStatus> {
  return JSON.parse(await world.ok('deployment', 'status', name, '--json')) as RolloutStatus;
}

/**
 * Poll `deployment status NAME --json` until `until` holds. Nothing on the
 * operator's side announces a rollout's progress but this command (and its
 * `--watch`), so this is what an operator's script would do too.
 */
export async function untilStatus(world: DeploymentWorld, name: string, what: string, until: (s: RolloutStatus) => boolean, timeoutMs = 60_000): Promise<RolloutStatus> {
  let last: RolloutStatus | undefined;
  return waitFor(`${name}: ${what}`, async () => {
    last = await rolloutStatus(world, name);
    return until(last) ? last : undefined;
  }, timeoutMs, { intervalMs: 500, detail: () => last?.rollout ?? last });
}

/** One `desired-published` entry of the fleet's audit log: the device, the version, the `deployment@revision` layers. */
export interface Publication { deviceId: string; version: number; carried: string[] }

/**
 * What the engine runs for one device: service name → the image reference it was created from,
 * and its state. The reference comes from the container's own config, not the listing's `Image`:
 * the shared registry's test tags are pushed again by every test run on the machine, so a pull
 * by a neighbour device can move a tag and the listing would then show a bare image id.
 */
export async function engineServices(world: DeploymentWorld, device: WorldDevice): Promise<Record<string, { image: string; state: string }>> {
  const list = await world.docker.listContainers({ all: true, filters: { label: [`io.tsunagu.scope=${device.scope}`] } });
  const pairs = await Promise.all(list.map(async (c): Promise<[string, { image: string; state: string }] | undefined> => {
    try {
      const info = await world.docker.getContainer(c.Id).inspect();
      return [c.Labels['io.tsunagu.service'] ?? '?', { image: info.Config.Image, state: info.State.Status }];
    } catch (err) {
      // Removed between the listing and the inspect (the agent replacing it): not there any more.
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }));
  return Object.fromEntries(pairs.filter((p) => p !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Wait until every given device runs exactly these services (name → image reference), and nothing else, as the engine has them. */
export async function untilRunning(world: DeploymentWorld, targets: readonly WorldDevice[], services: Record<string, string>, timeoutMs = 90_000): Promise<void> {
  const want = JSON.stringify(Object.fromEntries(Object.entries(services).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, image]) => [k, { image, state: 'running' }])));
  for (const d of targets) {
    let seen: Record<string, { image: string; state: string }> = {};
    await waitFor(`${d.name} running ${JSON.stringify(services)}`, async () => {
      seen = await engineServices(world, d);
      return JSON.stringify(seen) === want;
    }, timeoutMs, { intervalMs: 300, detail: () => ({ engine: seen, agent: d.agent.lines.slice(-5) }) });
  }
}

/** One member of the stored rollout: its wave (from 0) and the verdict `serve` last judged it. */
export interface StoredMember { wave: number; revision: number; verdict: string; outcome: string | null }

/**
 * The rollout of `name` as `serve` last stored it in the fleet database, read directly: cheap
 * enough to poll often, for catching a short-lived standing (a device baking for a few seconds).
 */
export function storedRollout(world: DeploymentWorld, name: string): { phase: string; wave: number; members: Record<string, StoredMember> } | undefined {
  return withDatabase(world, (db) => {
    const row = db.prepare('SELECT state FROM rollouts WHERE deployment = ?').get(name) as { state: string } | undefined;
    return row === undefined ? undefined : JSON.parse(row.state) as { phase: string; wave: number; members: Record<string, StoredMember> };
  });
}

function withDatabase<T>(world: DeploymentWorld, read: (db: Database.Database) => T): T {
  const db = new Database(join(world.fleetDir, 'registry.db'), { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** Every desired state the reconciler recorded as published, oldest first, read from the fleet database's audit log. */
export function publications(world: DeploymentWorld): Publication[] {
  return withDatabase(world, (db) => {
    const rows = db.prepare("SELECT device_id, message FROM audit WHERE event = 'desired-published' ORDER BY id").all() as { device_id: string; message: string }[];
    return rows.map((r) => {
      const m = /^version (\d+) from (.*)$/.exec(r.message);
      if (m === null) throw new Error(`unexpected desired-published entry: ${r.message}`);
      return { deviceId: r.device_id, version: Number(m[1]), carried: m[2]!.split(', ').filter((s) => s.includes('@')) };
    });
  });
}

/**
 * The rollout scenarios' start: deployment `web` (busybox:1 on every device
 * labelled os=linux) created with `strategy`, then three devices a, b, c
 * enrolled from the bootstrap file alone and running it.
 */
export async function startRolloutWorld(prefix: string, strategy: string[]): Promise<{ world: DeploymentWorld; images: TestImages; devices: WorldDevice[] }> {
  const images = dockerTestEnv().images;
  const world = await DeploymentWorld.start(prefix);
  await world.ok('deployment', 'create', 'web', '--selector', 'os=linux', ...strategy,
    world.composeFile({ services: { web: world.service(images.busybox1) } }));
  const devices = await Promise.all(['a', 'b', 'c'].map((n) => world.addDevice(n)));
  await untilRunning(world, devices, { web: images.busybox1 });
  return { world, images, devices };
}
