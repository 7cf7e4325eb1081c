import type Database from 'better-sqlite3';
import type { DeviceSettings } from '../../protocol/device-settings.js';
import { TsunaguError } from '../../protocol/errors.js';
import type { FleetDatabase } from '../fleet-database.js';
import type { Deployment, DeploymentRevision, DeploymentState } from './deployment.js';
import type { LayerConflict, LayerSource } from './layering.js';

/** What `serve` last published to one device, to publish again only when the composed document changes. */
export interface PublishedDesired {
  deviceId: string;
  version: number;
  /** Hash of the composed document, its settings and where its secrets come from (deployment-reconciler.ts). */
  hash: string;
  sources: LayerSource[];
  conflicts: LayerConflict[];
  publishedAt: number;
}

/** The revision of each matching deployment a published state carried (also a layer that won no service). */
export type CarriedRevisions = readonly { deployment: string; revision: number }[];

interface DeploymentRow { name: string; selector: string; priority: number; strategy: string; state: DeploymentState; revision: number; created_at: number; updated_at: number }
interface RevisionRow { deployment: string; revision: number; compose: string; sealed_secrets: string | null; settings: string | null; created_at: number }
interface PublishedRow { device_id: string; version: number; hash: string; sources: string; conflicts: string; published_at: number }

function toDeployment(r: DeploymentRow): Deployment {
  return {
    name: r.name, selector: JSON.parse(r.selector) as Record<string, string>, priority: r.priority, strategy: JSON.parse(r.strategy) as unknown,
    state: r.state, revision: r.revision, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

function toRevision(r: RevisionRow): DeploymentRevision {
  return {
    deployment: r.deployment, revision: r.revision, compose: JSON.parse(r.compose) as Record<string, unknown>, sealedSecrets: r.sealed_secrets,
    settings: r.settings === null ? null : JSON.parse(r.settings) as DeviceSettings, createdAt: r.created_at,
  };
}

function toPublished(r: PublishedRow): PublishedDesired {
  return {
    deviceId: r.device_id, version: r.version, hash: r.hash, sources: JSON.parse(r.sources) as LayerSource[],
    conflicts: JSON.parse(r.conflicts) as LayerConflict[], publishedAt: r.published_at,
  };
}

export interface RevisionContent {
  compose: Record<string, unknown>;
  sealedSecrets: string | null;
  settings: DeviceSettings | null;
}

/**
 * Deployments, their revisions, what was published to each device, rollout
 * state and the reconciler's lease, in the fleet database beside its device
 * tables, on the FleetDatabase's own connection: every change writes its
 * audit entry in the same transaction, into that database's audit table.
 * Closing the FleetDatabase closes it.
 */
export class DeploymentStore {
  private readonly db: Database.Database;

  constructor(database: FleetDatabase) {
    this.db = database.connection;
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS deployments (
        name TEXT PRIMARY KEY, selector TEXT NOT NULL, priority INTEGER NOT NULL, strategy TEXT NOT NULL,
        state TEXT NOT NULL, revision INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS deployment_revisions (
        deployment TEXT NOT NULL, revision INTEGER NOT NULL, compose TEXT NOT NULL, sealed_secrets TEXT, settings TEXT,
        created_at INTEGER NOT NULL, PRIMARY KEY (deployment, revision)
      );
      CREATE TABLE IF NOT EXISTS device_desired (
        device_id TEXT PRIMARY KEY, version INTEGER NOT NULL, hash TEXT NOT NULL, sources TEXT NOT NULL, conflicts TEXT NOT NULL,
        published_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS rollouts (deployment TEXT PRIMARY KEY, state TEXT NOT NULL, seq INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS device_deployments (
        device_id TEXT NOT NULL, deployment TEXT NOT NULL, revision INTEGER NOT NULL, first_version INTEGER NOT NULL,
        PRIMARY KEY (device_id, deployment)
      );
      CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL, epoch INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS fleet_labels (device_id TEXT PRIMARY KEY, labels TEXT NOT NULL, updated_at INTEGER NOT NULL);
    `);
  }

  private audit(at: number, event: string, message: string, deviceId: string | null = null): void {
    this.db.prepare('INSERT INTO audit (at, event, code, request_id, device_id, serial, message) VALUES (?, ?, NULL, NULL, ?, NULL, ?)')
      .run(at, event, deviceId, message);
  }

  list(): Deployment[] {
    return (this.db.prepare('SELECT * FROM deployments ORDER BY name').all() as DeploymentRow[]).map(toDeployment);
  }

  get(name: string): Deployment | undefined {
    const row = this.db.prepare('SELECT * FROM deployments WHERE name = ?').get(name) as DeploymentRow | undefined;
    return row && toDeployment(row);
  }

  /** Like {@link get}, or CONFIG naming the deployments there are. */
  require(name: string): Deployment {
    const d = this.get(name);
    if (d === undefined) throw new TsunaguError('CONFIG', `no deployment "${name}" (see: tsunagu-fleet deployment list)`);
    return d;
  }

  revision(name: string, revision: number): DeploymentRevision | undefined {
    const row = this.db.prepare('SELECT * FROM deployment_revisions WHERE deployment = ? AND revision = ?').get(name, revision) as RevisionRow | undefined;
    return row && toRevision(row);
  }

  create(d: { name: string; selector: Record<string, string>; priority: number; strategy: unknown }, content: RevisionContent, now: number): Deployment {
    return this.db.transaction(() => {
      if (this.get(d.name) !== undefined) throw new TsunaguError('CONFIG', `deployment "${d.name}" exists already; change it with: tsunagu-fleet deployment update ${d.name} COMPOSE`);
      this.db.prepare("INSERT INTO deployments (name, selector, priority, strategy, state, revision, created_at, updated_at) VALUES (?, ?, ?, ?, 'active', 1, ?, ?)")
        .run(d.name, JSON.stringify(d.selector), d.priority, JSON.stringify(d.strategy), now, now);
      this.insertRevision(d.name, 1, content, now);
      this.audit(now, 'deployment-created', `deployment ${d.name} created: selector ${JSON.stringify(d.selector)}, priority ${d.priority}, revision 1`);
      return this.require(d.name);
    }).immediate();
  }

  /** A new revision; the deployment becomes active again if it was paused or aborted. */
  update(name: string, content: RevisionContent, now: number): Deployment {
    return this.db.transaction(() => {
      const d = this.require(name);
      const revision = d.revision + 1;
      this.insertRevision(name, revision, content, now);
      this.db.prepare("UPDATE deployments SET revision = ?, state = 'active', updated_at = ? WHERE name = ?").run(revision, now, name);
      this.audit(now, 'deployment-updated', `deployment ${name}: revision ${revision}`);
      return this.require(name);
    }).immediate();
  }

  setState(name: string, state: DeploymentState, now: number, why: string): Deployment {
    return this.db.transaction(() => {
      const d = this.require(name);
      this.db.prepare('UPDATE deployments SET state = ?, updated_at = ? WHERE name = ?').run(state, now, name);
      this.audit(now, `deployment-${state}`, `deployment ${name} (revision ${d.revision}): ${d.state} → ${state}: ${why}`);
      return this.require(name);
    }).immediate();
  }

  delete(name: string, now: number): void {
    this.db.transaction(() => {
      this.require(name);
      this.db.prepare('DELETE FROM deployments WHERE name = ?').run(name);
      this.db.prepare('DELETE FROM deployment_revisions WHERE deployment = ?').run(name);
      this.db.prepare('DELETE FROM rollouts WHERE deployment = ?').run(name);
      this.db.prepare('DELETE FROM device_deployments WHERE deployment = ?').run(name);
      this.audit(now, 'deployment-deleted', `deployment ${name} deleted: its devices lose its services`);
    }).immediate();
  }

  private insertRevision(name: string, revision: number, c: RevisionContent, now: number): void {
    this.db.prepare('INSERT INTO deployment_revisions (deployment, revision, compose, sealed_secrets, settings, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(name, revision, JSON.stringify(c.compose), c.sealedSecrets, c.settings === null ? null : JSON.stringify(c.settings), now);
  }

  published(deviceId: string): PublishedDesired | undefined {
    const r = this.db.prepare('SELECT * FROM device_desired WHERE device_id = ?').get(deviceId) as PublishedRow | undefined;
    return r && toPublished(r);
  }

  /** Every device's last publication, in one read (a reconciler pass looks at the whole fleet). */
  allPublished(): PublishedDesired[] {
    return (this.db.prepare('SELECT * FROM device_desired ORDER BY device_id').all() as PublishedRow[]).map(toPublished);
  }

  /**
   * Record a desired state published to a device, only while `lease` is
   * still held (fencing): an instance that lost its lease while publishing
   * records nothing, and the holder publishes again from its own view.
   */
  recordPublished(p: PublishedDesired, carried: CarriedRevisions, lease: { name: string; owner: string; epoch: number }): boolean {
    return this.db.transaction(() => {
      const held = this.db.prepare('SELECT 1 FROM leases WHERE name = ? AND owner = ? AND epoch = ? AND expires_at > ?').get(lease.name, lease.owner, lease.epoch, p.publishedAt);
      if (held === undefined) return false;
      // The first version that carried a revision is what a rollout judges the device by (appliedVersion at or above it).
      this.db.prepare('DELETE FROM device_deployments WHERE device_id = ? AND deployment NOT IN (SELECT value FROM json_each(?))')
        .run(p.deviceId, JSON.stringify(carried.map((c) => c.deployment)));
      for (const c of carried) {
        this.db.prepare(`INSERT INTO device_deployments (device_id, deployment, revision, first_version) VALUES (?, ?, ?, ?)
          ON CONFLICT(device_id, deployment) DO UPDATE SET first_version = CASE WHEN device_deployments.revision = excluded.revision THEN device_deployments.first_version ELSE excluded.first_version END,
            revision = excluded.revision`).run(p.deviceId, c.deployment, c.revision, p.version);
      }
      this.db.prepare(`INSERT INTO device_desired (device_id, version, hash, sources, conflicts, published_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(device_id) DO UPDATE SET version = excluded.version, hash = excluded.hash, sources = excluded.sources,
          conflicts = excluded.conflicts, published_at = excluded.published_at`)
        .run(p.deviceId, p.version, p.hash, JSON.stringify(p.sources), JSON.stringify(p.conflicts), p.publishedAt);
      const from = p.sources.map((s) => `${s.deployment}@${s.revision}`).join(', ');
      this.audit(p.publishedAt, 'desired-published', `version ${p.version} from ${from === '' ? 'no deployment (services removed)' : from}`, p.deviceId);
      return true;
    }).immediate();
  }

  /** Labels the operator gave devices (site, group…): a device cannot report these itself. */
  fleetLabels(): Map<string, Record<string, string>> {
    const rows = this.db.prepare('SELECT device_id, labels FROM fleet_labels').all() as { device_id: string; labels: string }[];
    return new Map(rows.map((r) => [r.device_id, JSON.parse(r.labels) as Record<string, string>]));
  }

  /** Set (a string) or remove (null) some of a device's fleet labels; returns them all. */
  setFleetLabels(deviceId: string, changes: Readonly<Record<string, string | null>>, now: number): Record<string, string> {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT labels FROM fleet_labels WHERE device_id = ?').get(deviceId) as { labels: string } | undefined;
      const labels: Record<string, string> = row === undefined ? {} : JSON.parse(row.labels) as Record<string, string>;
      for (const [k, v] of Object.entries(changes)) {
        if (v === null) delete labels[k];
        else labels[k] = v;
      }
      this.db.prepare('INSERT INTO fleet_labels (device_id, labels, updated_at) VALUES (?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET labels = excluded.labels, updated_at = excluded.updated_at')
        .run(deviceId, JSON.stringify(labels), now);
      this.audit(now, 'labels-set', `fleet labels: ${Object.entries(changes).map(([k, v]) => (v === null ? `${k}-` : `${k}=${v}`)).join(',')}`, deviceId);
      return labels;
    }).immediate();
  }

  /** Per deployment, the revision each device was last published and the first version that carried it. */
  publishedRevisions(deployment: string): Map<string, { revision: number; version: number }> {
    const rows = this.db.prepare('SELECT device_id, revision, first_version FROM device_deployments WHERE deployment = ?').all(deployment) as { device_id: string; revision: number; first_version: number }[];
    return new Map(rows.map((r) => [r.device_id, { revision: r.revision, version: r.first_version }]));
  }

  /** The stored rollout of a deployment (JSON, read by rollout-state.ts) and its sequence number for {@link saveRollout}. */
  rollout(deployment: string): { state: unknown; seq: number } | undefined {
    const r = this.db.prepare('SELECT state, seq FROM rollouts WHERE deployment = ?').get(deployment) as { state: string; seq: number } | undefined;
    return r === undefined ? undefined : { state: JSON.parse(r.state) as unknown, seq: r.seq };
  }

  /**
   * Write a rollout's state if nobody changed it since it was read at `seq`
   * (0: it did not exist): an operator's pause between the reconciler's read
   * and its write must not be overwritten. Returns false, writing nothing,
   * when it changed; the caller reads it again. `events` go to the audit log.
   */
  saveRollout(deployment: string, state: unknown, seq: number, now: number, events: readonly string[]): boolean {
    return this.db.transaction(() => {
      const current = (this.db.prepare('SELECT seq FROM rollouts WHERE deployment = ?').get(deployment) as { seq: number } | undefined)?.seq ?? 0;
      if (current !== seq || this.get(deployment) === undefined) return false;
      this.db.prepare('INSERT INTO rollouts (deployment, state, seq, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(deployment) DO UPDATE SET state = excluded.state, seq = excluded.seq, updated_at = excluded.updated_at')
        .run(deployment, JSON.stringify(state), seq + 1, now);
      for (const e of events) this.audit(now, 'rollout', `deployment ${deployment}: ${e}`);
      return true;
    }).immediate();
  }

  /**
   * Take or renew the lease `name` for `owner` until `now + ttlMs`. It is
   * free when absent, expired, or already ours. The epoch grows each time
   * the lease changes hands, so a record made under an older holding is
   * refused ({@link recordPublished}). Returns the holding, or undefined
   * when another owner holds it (with when it expires).
   */
  acquireLease(name: string, owner: string, now: number, ttlMs: number): { held: true; epoch: number; expiresAt: number } | { held: false; expiresAt: number; owner: string } {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT owner, expires_at, epoch FROM leases WHERE name = ?').get(name) as { owner: string; expires_at: number; epoch: number } | undefined;
      if (row !== undefined && row.owner !== owner && row.expires_at > now) return { held: false as const, expiresAt: row.expires_at, owner: row.owner };
      const epoch = row === undefined ? 1 : row.owner === owner && row.expires_at > now ? row.epoch : row.epoch + 1;
      this.db.prepare('INSERT INTO leases (name, owner, expires_at, epoch) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, epoch = excluded.epoch')
        .run(name, owner, now + ttlMs, epoch);
      if (row?.owner !== owner || row.epoch !== epoch) this.audit(now, 'lease-taken', `${owner} drives ${name} (epoch ${epoch})`);
      return { held: true as const, epoch, expiresAt: now + ttlMs };
    }).immediate();
  }

  /** Who holds the lease now, if anyone: a `serve` that drives deployments. */
  leaseHolder(name: string, now: number): { owner: string; expiresAt: number } | undefined {
    const row = this.db.prepare('SELECT owner, expires_at FROM leases WHERE name = ? AND expires_at > ?').get(name, now) as { owner: string; expires_at: number } | undefined;
    return row === undefined ? undefined : { owner: row.owner, expiresAt: row.expires_at };
  }

  /** Give the lease up at once (a clean stop), so another instance need not wait for it to expire. */
  releaseLease(name: string, owner: string): void {
    this.db.prepare('UPDATE leases SET expires_at = 0 WHERE name = ? AND owner = ?').run(name, owner);
  }

}
