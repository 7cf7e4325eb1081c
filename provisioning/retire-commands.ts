import { isTsunaguError, TsunaguError } from '../protocol/errors.js';
import { loadFleetDir } from './fleet-dir.js';
import { operatorContext, SEND_EXIT } from './operator-commands.js';
import { FleetDatabase } from './fleet-database.js';
import { revokeDevice, type Revocation } from './revocation.js';
import { printable } from './terminal-text.js';

/** `tsunagu-fleet revoke`: cut a device off now, with an audit record. */
export async function runRevoke(deviceId: string, o: { dir: string; reason?: string }): Promise<void> {
  const fleet = loadFleetDir(o.dir);
  const database = new FleetDatabase(fleet.databasePath);
  try {
    const revocation = await revokeDevice({ fleet, database, deviceId, now: Date.now() });
    auditRevocation(database, revocation, `revoked by operator${o.reason === undefined ? '' : `: ${o.reason}`}`);
    process.stdout.write(`${revocationText(revocation)}\n`);
  } finally {
    database.close();
  }
}

/**
 * `tsunagu-fleet retire`: the signed `retire` command, then the revocation
 * once the device has answered. A device that does not answer is left as it
 * is (exit 3), unless `--force`: then it is revoked without having wiped itself.
 */
export async function runRetire(deviceId: string, o: { dir: string; timeout: string; force?: boolean }): Promise<number> {
  const ctx = await operatorContext(o.dir, 'retire');
  let answered: 'ok' | 'refused' | 'timeout';
  try {
    const device = ctx.database.byId(deviceId);
    if (device === undefined || device.status !== 'active') throw new TsunaguError('CONFIG', `no enrolled device "${deviceId}" (see: tsunagu-fleet devices)`);
    try {
      // It expires when we stop waiting: a device that comes back later refuses it (EXPIRED)
      // rather than wiping itself with nobody left to revoke it.
      const reply = await ctx.link.send(deviceId, { name: 'retire', args: {} }, { timeoutMs: Number(o.timeout), lifetimeMs: Number(o.timeout) });
      answered = reply.data.ok ? 'ok' : 'refused';
      if (!reply.data.ok) process.stderr.write(printable(`${deviceId}: retire failed: ${reply.data.code}: ${reply.data.message}`) + '\n');
    } catch (err) {
      if (!isTsunaguError(err, 'TIMEOUT')) throw err;
      answered = 'timeout';
    }
    if (answered !== 'ok' && o.force !== true) {
      if (answered === 'timeout') process.stderr.write(`tsunagu-fleet: TIMEOUT: ${deviceId} did not answer within ${o.timeout} ms; it is not revoked. Run retire again when it is online, or add --force to revoke it now without its wipe\n`);
      return answered === 'timeout' ? SEND_EXIT.timeout : SEND_EXIT.refused;
    }
    const revocation = await revokeDevice({ fleet: ctx.fleet, database: ctx.database, deviceId, now: Date.now() });
    auditRevocation(ctx.database, revocation, answered === 'ok'
      ? 'retired: the device removed its services and wiped its identity; revoked'
      : `retire --force: the device did not confirm (${answered}); revoked without its wipe`);
    process.stdout.write(answered === 'ok'
      ? `${deviceId}: retired (services removed, identity wiped on the device)\n${revocationText(revocation)}\n`
      : `${deviceId}: did not confirm the retire command (${answered}); revoked anyway (--force): its containers and files stay on it\n${revocationText(revocation)}\n`);
    return SEND_EXIT.ok;
  } finally {
    await ctx.close();
  }
}

function auditRevocation(database: FleetDatabase, r: Revocation, message: string): void {
  database.audit({
    event: 'revoked', code: null, requestId: null, deviceId: r.device.deviceId, serial: r.device.serial,
    message: `${message} (was ${r.device.status}; ${r.cutOff === 'broker' ? `broker account deleted, ${r.clearedTopics.length} retained topics cleared` : 'removed from the embedded broker account file, serve not running'})`,
  });
}

function revocationText(r: Revocation): string {
  const was = r.device.status === 'revoked' ? ' (it was already revoked: broker clean-up done again)' : '';
  const cut = r.cutOff === 'broker'
    ? `its broker account is deleted and its connections closed, its retained messages cleared (${r.clearedTopics.length} topics)`
    : 'its account is removed from the embedded broker\'s account file (serve is not running: no connection or retained message to clear)';
  return `revoked ${r.device.deviceId}${was}: ${cut}; its key is refused from now on`;
}
