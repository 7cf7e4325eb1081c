import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { TsunaguError } from '../protocol/errors.js';

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
  /**
   * On a pending row only: the id of the active device this row asks to
   * replace (a re-key request: a new key presenting that device's serial).
   */
  replaces: string | null;
  /**
   * On an approved re-key request only: the operator admitted the new key as
   * a device of its own (`approve --as-new`), leaving `replaces` untouched.
   */
  asNew: boolean;
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
  last_seen: number | null; online: number; labels: string; replaces: string | null; as_new: number;
}

function toRecord(row: DeviceRow): DeviceRecord {
  return {
    deviceId: row.device_id, signPublicKey: row.sign_pk, boxPublicKey: row.box_pk, serial: row.serial, model: row.model,
    arch: row.arch, macs: JSON.parse(row.macs) as string[], hostname: row.hostname, status: row.status,
    approved: row.approved === 1, enrolledAt: row.enrolled_at, updatedAt: row.updated_at, lastSeen: row.last_seen,
    online: row.online === 1, labels: JSON.parse(row.labels) as Record<string, string>, replaces: row.replaces,
    asNew: row.as_new === 1,
  };
}

function describePending(row: DeviceRow): string {
  return row.replaces === null ? row.device_id : `${row.device_id} (re-key of ${row.replaces})`;
}

/**
 * The fleet database: the devices, their enrollment requests and the audit
 * log, in one SQLite file (`registry.db` in the fleet directory), safe to
 * share between service instances on one host (WAL mode, short immediate
 * transactions).
 */
export class FleetDatabase {
  private readonly db: Database.Database;

  constructor(path: string) {
    // SQLite gives its -wal and -shm files the mode of the database file, so
    // creating that one 0600 keeps the fleet database (serials, keys, audit) private.
    if (path !== ':memory:') closeSync(openSync(path, 'a', 0o600));
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
        last_grant TEXT, last_grant_at INTEGER, replaces TEXT
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
    // Databases made before re-key requests existed lack the column.
    const columns = this.db.prepare('PRAGMA table_info(devices)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'replaces')) this.db.exec('ALTER TABLE devices ADD COLUMN replaces TEXT');
    if (!columns.some((c) => c.name === 'as_new')) this.db.exec('ALTER TABLE devices ADD COLUMN as_new INTEGER NOT NULL DEFAULT 0');
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

  /**
   * Insert or update a device under its own id. An operator's approval is
   * kept only while the row asks for the same thing: when `replaces` changes
   * (a plain request becomes a re-key request, or the other way round), the
   * approval is dropped, since it was given for something else. A revoked row
   * stays revoked: a grant decided just before `revoke` must not undo it.
   */
  upsertDevice(d: Omit<DeviceRecord, 'updatedAt' | 'lastSeen' | 'online' | 'labels' | 'approved' | 'replaces' | 'asNew'> & { now: number; replaces?: string | null }): void {
    this.db.prepare(`
      INSERT INTO devices (device_id, sign_pk, box_pk, serial, model, arch, macs, hostname, status, enrolled_at, updated_at, replaces)
      VALUES (@deviceId, @signPublicKey, @boxPublicKey, @serial, @model, @arch, @macs, @hostname, @status, @enrolledAt, @now, @replaces)
      ON CONFLICT(device_id) DO UPDATE SET sign_pk = excluded.sign_pk, box_pk = excluded.box_pk, serial = excluded.serial,
        model = excluded.model, arch = excluded.arch, macs = excluded.macs, hostname = excluded.hostname,
        status = CASE WHEN devices.status = 'revoked' THEN 'revoked' ELSE excluded.status END, enrolled_at = COALESCE(devices.enrolled_at, excluded.enrolled_at), updated_at = excluded.updated_at,
        approved = CASE WHEN devices.replaces IS excluded.replaces THEN devices.approved ELSE 0 END,
        as_new = CASE WHEN devices.replaces IS excluded.replaces THEN devices.as_new ELSE 0 END, replaces = excluded.replaces
    `).run({ ...d, macs: JSON.stringify(d.macs), replaces: d.replaces ?? null });
  }

  /**
   * Complete an approved re-key request in one transaction: the active device
   * `deviceId` takes the request's keys and facts, and the request's own row
   * (`requestDeviceId`) is removed. Returns false, changing nothing, unless
   * the request row is still pending, approved and names `deviceId`, and
   * `deviceId` is still active.
   */
  completeRekey(r: {
    requestDeviceId: string; deviceId: string; signPublicKey: string; boxPublicKey: string; serial: string; model: string;
    arch: string; macs: string[]; hostname: string; sealedGrant: string; now: number;
  }): boolean {
    return this.db.transaction(() => {
      const request = this.db.prepare("SELECT 1 FROM devices WHERE device_id = ? AND sign_pk = ? AND status = 'pending' AND approved = 1 AND replaces = ?")
        .get(r.requestDeviceId, r.signPublicKey, r.deviceId);
      const target = this.db.prepare("SELECT 1 FROM devices WHERE device_id = ? AND status = 'active'").get(r.deviceId);
      if (request === undefined || target === undefined) return false;
      // First, so that the new key (UNIQUE) is free for the old id.
      this.db.prepare('DELETE FROM devices WHERE device_id = ?').run(r.requestDeviceId);
      this.db.prepare(`
        UPDATE devices SET sign_pk = @signPublicKey, box_pk = @boxPublicKey, serial = @serial, model = @model, arch = @arch,
          macs = @macs, hostname = @hostname, updated_at = @now, last_grant = @sealedGrant, last_grant_at = @now
        WHERE device_id = @deviceId
      `).run({ ...r, macs: JSON.stringify(r.macs) });
      return true;
    }).immediate();
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

  /**
   * Approve one pending device, by device id or by serial; returns the
   * record approved, or undefined when nothing pending matches. By serial it
   * refuses (`CONFIG`) when several pending rows match, and when the match is
   * a re-key request: the serial is only what a device claims, so a re-key
   * is approved by the id of the request, after looking at it.
   *
   * `asNew` admits a re-key request as a device of its own (by id only): the
   * device it names is left as it is. A plain approval of a re-key request
   * whose device was revoked is refused (`DEVICE_REVOKED`): re-keying would
   * bring the revoked device back.
   */
  approve(idOrSerial: string, now: number, options: { asNew?: boolean } = {}): DeviceRecord | undefined {
    const asNew = options.asNew === true;
    return this.db.transaction(() => {
      const byId = this.db.prepare("SELECT * FROM devices WHERE device_id = ? AND status = 'pending'").get(idOrSerial) as DeviceRow | undefined;
      let row = byId;
      if (row === undefined) {
        const bySerial = this.db.prepare("SELECT * FROM devices WHERE serial = ? AND status = 'pending' ORDER BY device_id").all(idOrSerial) as DeviceRow[];
        if (bySerial.length > 1) {
          throw new TsunaguError('CONFIG', `serial "${idOrSerial}" matches ${bySerial.length} pending devices: ${bySerial.map(describePending).join(', ')}; approve one by its device id`);
        }
        row = bySerial[0];
        if (row?.replaces != null) {
          throw new TsunaguError('CONFIG', `serial "${idOrSerial}" matches a re-key request, ${describePending(row)}; check it with 'tsunagu-fleet devices' and approve it by its device id`);
        }
      }
      if (row === undefined) return undefined;
      if (asNew && (byId === undefined || row.replaces === null)) {
        throw new TsunaguError('CONFIG', `--as-new applies to a re-key request, named by its device id; ${describePending(row)} is not one (approve it without --as-new)`);
      }
      if (!asNew && row.replaces !== null && this.byId(row.replaces)?.status === 'revoked') {
        throw new TsunaguError('DEVICE_REVOKED', `${describePending(row)} asks to replace a revoked device; approve it as a device of its own: tsunagu-fleet approve --as-new ${row.device_id}`);
      }
      this.db.prepare('UPDATE devices SET approved = 1, as_new = ?, updated_at = ? WHERE device_id = ?').run(asNew ? 1 : 0, now, row.device_id);
      return toRecord({ ...row, approved: 1, as_new: asNew ? 1 : 0, updated_at: now });
    }).immediate();
  }

  /**
   * Mark a device revoked: its key is refused from now on, whatever its
   * status was. Returns the record as it was, or undefined for an unknown id.
   * The last grant is forgotten so that no retry is answered with it.
   */
  revoke(deviceId: string, now: number): DeviceRecord | undefined {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT * FROM devices WHERE device_id = ?').get(deviceId) as DeviceRow | undefined;
      if (row === undefined) return undefined;
      this.db.prepare("UPDATE devices SET status = 'revoked', approved = 0, as_new = 0, online = 0, last_grant = NULL, last_grant_at = NULL, updated_at = ? WHERE device_id = ?")
        .run(now, deviceId);
      return toRecord(row);
    }).immediate();
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

  /**
   * The open connection, for the fleet's other tables in this file (the
   * deployment store): one connection, so their changes and the audit log
   * share a transaction.
   */
  get connection(): Database.Database {
    return this.db;
  }

  close(): void {
    this.db.close();
  }
}
