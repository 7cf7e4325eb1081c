import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';

export type DeviceStatus = 'active' | 'pending' | 'revoked';

export interface DeviceRecord {
  deviceId: string;
  signPublicKey: string;
  boxPublicKey: string;
  serial: string;
  model: string;
  arch: string;
  macs: string[];
  hostname: string;
  status: DeviceStatus;
  approved: boolean;
  enrolledAt: number | null;
  updatedAt: number;
  lastSeen: number | null;
  online: boolean;
  labels: Record<string, string>;
}

export interface AuditEntry {
  at: number;
  event: string;
  code: string | null;
  requestId: string | null;
  deviceId: string | null;
  serial: string | null;
  message: string;
}

/** A device id is derived from its signing key, so any service instance computes the same one. */
export function deriveDeviceId(signPublicKeyB64: string): string {
  return `d-${createHash('sha256').update(`tsunagu-device-id:${signPublicKeyB64}`).digest('hex').slice(0, 20)}`;
}

interface DeviceRow {
  device_id: string; sign_pk: string; box_pk: string; serial: string; model: string; arch: string; macs: string;
  hostname: string; status: DeviceStatus; approved: number; enrolled_at: number | null; updated_at: number;
  last_seen: number | null; online: number; labels: string;
}

function toRecord(row: DeviceRow): DeviceRecord {
  return {
    deviceId: row.device_id, signPublicKey: row.sign_pk, boxPublicKey: row.box_pk, serial: row.serial, model: row.model,
    arch: row.arch, macs: JSON.parse(row.macs) as string[], hostname: row.hostname, status: row.status,
    approved: row.approved === 1, enrolledAt: row.enrolled_at, updatedAt: row.updated_at, lastSeen: row.last_seen,
    online: row.online === 1, labels: JSON.parse(row.labels) as Record<string, string>,
  };
}

/**
 * The device registry: one SQLite file, safe to share between service
 * instances on one host (WAL mode, short immediate transactions).
 */
export class Registry {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS devices (
        device_id TEXT PRIMARY KEY, sign_pk TEXT NOT NULL UNIQUE, box_pk TEXT NOT NULL, serial TEXT NOT NULL,
        model TEXT NOT NULL, arch TEXT NOT NULL, macs TEXT NOT NULL, hostname TEXT NOT NULL,
        status TEXT NOT NULL, approved INTEGER NOT NULL DEFAULT 0, enrolled_at INTEGER, updated_at INTEGER NOT NULL,
        last_seen INTEGER, online INTEGER NOT NULL DEFAULT 0, labels TEXT NOT NULL DEFAULT '{}',
        last_grant TEXT, last_grant_at INTEGER
      );
      CREATE INDEX IF NOT EXISTS devices_serial ON devices(serial);
      CREATE TABLE IF NOT EXISTS enroll_requests (
        request_id TEXT PRIMARY KEY, device_id TEXT, state TEXT NOT NULL, response BLOB, created_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, event TEXT NOT NULL, code TEXT,
        request_id TEXT, device_id TEXT, serial TEXT, message TEXT NOT NULL
      );
    `);
  }

  /**
   * Claim a request id for processing. Returns the stored response when the
   * request was already answered, 'busy' when another instance is on it,
   * or 'claimed' when this caller must process it. A claim older than
   * `staleMs` is taken over (its owner probably died).
   */
  claimRequest(requestId: string, now: number, staleMs = 30_000): { kind: 'claimed' } | { kind: 'busy' } | { kind: 'answered'; response: Buffer } {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT state, response, created_at FROM enroll_requests WHERE request_id = ?').get(requestId) as
        { state: string; response: Buffer | null; created_at: number } | undefined;
      if (row === undefined) {
        this.db.prepare("INSERT INTO enroll_requests (request_id, state, created_at) VALUES (?, 'processing', ?)").run(requestId, now);
        return { kind: 'claimed' as const };
      }
      if (row.state === 'done' && row.response !== null) return { kind: 'answered' as const, response: row.response };
      if (now - row.created_at > staleMs) {
        this.db.prepare('UPDATE enroll_requests SET created_at = ? WHERE request_id = ?').run(now, requestId);
        return { kind: 'claimed' as const };
      }
      return { kind: 'busy' as const };
    }).immediate();
  }

  finishRequest(requestId: string, deviceId: string | null, response: Uint8Array): void {
    this.db.prepare("UPDATE enroll_requests SET state = 'done', device_id = ?, response = ? WHERE request_id = ?")
      .run(deviceId, Buffer.from(response), requestId);
  }

  /** Forget a claim so that a retry of the same request is processed afresh (after a transient failure). */
  releaseRequest(requestId: string): void {
    this.db.prepare("DELETE FROM enroll_requests WHERE request_id = ? AND state = 'processing'").run(requestId);
  }

  byKey(signPublicKey: string): DeviceRecord | undefined {
    const row = this.db.prepare('SELECT * FROM devices WHERE sign_pk = ?').get(signPublicKey) as DeviceRow | undefined;
    return row && toRecord(row);
  }

  byId(deviceId: string): DeviceRecord | undefined {
    const row = this.db.prepare('SELECT * FROM devices WHERE device_id = ?').get(deviceId) as DeviceRow | undefined;
    return row && toRecord(row);
  }

  activeBySerial(serial: string): DeviceRecord | undefined {
    const row = this.db.prepare("SELECT * FROM devices WHERE serial = ? AND status = 'active' ORDER BY updated_at DESC LIMIT 1").get(serial) as DeviceRow | undefined;
    return row && toRecord(row);
  }

  list(): DeviceRecord[] {
    return (this.db.prepare('SELECT * FROM devices ORDER BY device_id').all() as DeviceRow[]).map(toRecord);
  }

  /** Insert or update a device. `rekey` replaces the keys of an existing id (a device that lost its keys). */
  upsertDevice(d: Omit<DeviceRecord, 'updatedAt' | 'lastSeen' | 'online' | 'labels' | 'approved'> & { now: number }): void {
    this.db.prepare(`
      INSERT INTO devices (device_id, sign_pk, box_pk, serial, model, arch, macs, hostname, status, enrolled_at, updated_at)
      VALUES (@deviceId, @signPublicKey, @boxPublicKey, @serial, @model, @arch, @macs, @hostname, @status, @enrolledAt, @now)
      ON CONFLICT(device_id) DO UPDATE SET sign_pk = excluded.sign_pk, box_pk = excluded.box_pk, serial = excluded.serial,
        model = excluded.model, arch = excluded.arch, macs = excluded.macs, hostname = excluded.hostname,
        status = excluded.status, enrolled_at = COALESCE(devices.enrolled_at, excluded.enrolled_at), updated_at = excluded.updated_at
    `).run({ ...d, macs: JSON.stringify(d.macs) });
  }

  /** Remember the sealed grant last sent, so a retry within a short window gets the same credential. */
  recordGrant(deviceId: string, sealedGrant: string, now: number): void {
    this.db.prepare('UPDATE devices SET last_grant = ?, last_grant_at = ? WHERE device_id = ?').run(sealedGrant, now, deviceId);
  }

  recentGrant(deviceId: string, now: number, windowMs: number): string | undefined {
    const row = this.db.prepare('SELECT last_grant, last_grant_at FROM devices WHERE device_id = ?').get(deviceId) as
      { last_grant: string | null; last_grant_at: number | null } | undefined;
    if (row?.last_grant == null || row.last_grant_at == null || now - row.last_grant_at > windowMs) return undefined;
    return row.last_grant;
  }

  /** Approve a pending device by id or serial; returns the ids approved. */
  approve(idOrSerial: string, now: number): string[] {
    const rows = this.db.prepare("SELECT device_id FROM devices WHERE (device_id = ? OR serial = ?) AND status = 'pending'").all(idOrSerial, idOrSerial) as { device_id: string }[];
    const stmt = this.db.prepare('UPDATE devices SET approved = 1, updated_at = ? WHERE device_id = ?');
    for (const r of rows) stmt.run(now, r.device_id);
    return rows.map((r) => r.device_id);
  }

  setPresence(deviceId: string, online: boolean, at: number): void {
    this.db.prepare('UPDATE devices SET online = ?, last_seen = ? WHERE device_id = ?').run(online ? 1 : 0, at, deviceId);
  }

  touch(deviceId: string, at: number): void {
    this.db.prepare('UPDATE devices SET last_seen = ? WHERE device_id = ?').run(at, deviceId);
  }

  setLabels(deviceId: string, labels: Record<string, string>): void {
    this.db.prepare('UPDATE devices SET labels = ? WHERE device_id = ?').run(JSON.stringify(labels), deviceId);
  }

  audit(entry: Omit<AuditEntry, 'at'> & { at?: number }): void {
    this.db.prepare('INSERT INTO audit (at, event, code, request_id, device_id, serial, message) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(entry.at ?? Date.now(), entry.event, entry.code, entry.requestId, entry.deviceId, entry.serial, entry.message);
  }

  auditLog(limit = 100): AuditEntry[] {
    return (this.db.prepare('SELECT at, event, code, request_id, device_id, serial, message FROM audit ORDER BY id DESC LIMIT ?').all(limit) as
      { at: number; event: string; code: string | null; request_id: string | null; device_id: string | null; serial: string | null; message: string }[])
      .map((r) => ({ at: r.at, event: r.event, code: r.code, requestId: r.request_id, deviceId: r.device_id, serial: r.serial, message: r.message }));
  }

  close(): void {
    this.db.close();
  }
}
