import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { fromBase64, toBase64, utf8 } from '../protocol/bytes.js';
import { CommandSchema, isCommandName, type Command, type ReplyData } from '../protocol/commands.js';
import { defaultEd25519 } from '../protocol/ed25519.js';
import { isTsunaguError, TsunaguError } from '../protocol/errors.js';
import { checkSchema } from '../protocol/json.js';
import { MAX_PACKET_BYTES } from '../protocol/packet-size.js';
import type { InventoryReport, MetricsReport } from '../protocol/reports.js';
import { seal } from '../protocol/seal.js';
import { connectFleetClient } from './broker-setup.js';
import { pullProgressOf } from './deploy/pull-progress.js';
import { textDeployOutput } from './deploy/deploy-output.js';
import { parseEvent } from './deploy/rollout.js';
import { printable, printTable } from './terminal-text.js';
import { DynsecClient } from './dynsec-client.js';
import { loadFleetDir, type FleetDir } from './fleet-dir.js';
import { FleetLink } from './fleet-link.js';
import { FleetSigner } from './fleet-signer.js';
import { FleetDatabase, type DeviceRecord } from './fleet-database.js';
import { judgeRetainedReports, RETAINED_REPORT_KINDS, type RetainedReportKind } from './retained-reports.js';

/** Exit codes of `send`: the device's answer, not only our own success. */
export const SEND_EXIT = { ok: 0, refused: 2, timeout: 3 } as const;

export interface OperatorContext {
  fleet: FleetDir;
  database: FleetDatabase;
  client: MqttClient;
  link: FleetLink;
  /** The one signer of this process: a second instance would read a stale counter. */
  signer: FleetSigner;
  close(): Promise<void>;
}

export async function operatorContext(dir: string, purpose: string): Promise<OperatorContext> {
  const fleet = loadFleetDir(dir);
  const database = new FleetDatabase(fleet.databasePath);
  const client = await connectFleetClient(fleet.config, purpose);
  const ed = defaultEd25519();
  const signer = new FleetSigner(fleet, ed);
  const link = new FleetLink({
    client, ed, signer,
    deviceKey: (id) => database.byId(id)?.signPublicKey,
  });
  return {
    fleet, database, client, link, signer,
    close: async () => {
      await client.endAsync();
      database.close();
    },
  };
}

function knownDevice(database: FleetDatabase, deviceId: string): DeviceRecord {
  const device = database.byId(deviceId);
  if (device === undefined || device.status !== 'active') {
    throw new TsunaguError('CONFIG', `no enrolled device "${deviceId}" (see: tsunagu-fleet devices)`);
  }
  return device;
}

export function buildCommand(name: string, o: { service?: string; lines?: string }): Command {
  // Sent alone it would wipe the device and leave its account behind: retire revokes it too.
  if (name === 'retire') throw new TsunaguError('CONFIG', 'retire a device with `tsunagu-fleet retire DEVICE`: it also revokes the device once it answers');
  const args: Record<string, unknown> = {};
  if (o.service !== undefined) args.service = o.service;
  if (o.lines !== undefined) args.lines = Number(o.lines);
  try {
    return checkSchema(CommandSchema, { name, args }, 'command');
  } catch (err) {
    if (isTsunaguError(err) && !isCommandName(name)) {
      // Sent anyway: the device's own refusal (UNKNOWN_COMMAND) is the answer an operator wants to see.
      return { name, args } as unknown as Command;
    }
    throw new TsunaguError('CONFIG', `${(err as Error).message} (see: tsunagu-fleet send --help)`);
  }
}

export async function runSend(deviceId: string, name: string, o: { dir: string; service?: string; lines?: string; timeout: string; traceparent?: string; json?: boolean }): Promise<number> {
  const ctx = await operatorContext(o.dir, 'send');
  try {
    const device = knownDevice(ctx.database, deviceId);
    let command: Command;
    let newPassword: string | undefined;
    if (name === 'rotate-credentials') {
      // Sealed to the device: the broker carries it but cannot read it.
      newPassword = randomBytes(24).toString('base64url');
      command = { name: 'rotate-credentials', args: { sealed: toBase64(seal(utf8(newPassword), fromBase64(device.boxPublicKey, 'device box key', 32))) } };
    } else {
      command = buildCommand(name, o);
    }
    let reply: { id: string; data: ReplyData };
    try {
      reply = await ctx.link.send(deviceId, command, { timeoutMs: Number(o.timeout), ...(o.traceparent === undefined ? {} : { traceparent: o.traceparent }) });
    } catch (err) {
      if (isTsunaguError(err, 'TIMEOUT')) {
        process.stderr.write(`tsunagu-fleet: TIMEOUT: ${err.message}\n`);
        return SEND_EXIT.timeout;
      }
      throw err;
    }
    if (reply.data.ok && newPassword !== undefined) {
      // The device holds the new password (and still the old one): switch the broker now.
      const dynsec = new DynsecClient(ctx.client);
      try {
        await dynsec.runChecked([{ command: 'setClientPassword', username: deviceId, password: newPassword }]);
      } finally {
        dynsec.close();
      }
    }
    if (o.json) process.stdout.write(`${JSON.stringify({ command: command.name, id: reply.id, ...reply.data })}\n`);
    // A reply's text comes from the device: shown, never obeyed as escapes.
    else if (reply.data.ok) process.stdout.write(`${deviceId}: ${command.name} ok${reply.data.result === undefined ? '' : `\n${printable(formatResult(reply.data.result))}`}\n`);
    else process.stdout.write(printable(`${deviceId}: ${command.name} failed: ${reply.data.code}: ${reply.data.message}`) + '\n');
    return reply.data.ok ? SEND_EXIT.ok : SEND_EXIT.refused;
  } finally {
    await ctx.close();
  }
}

function formatResult(result: unknown): string {
  if (typeof result === 'object' && result !== null && 'text' in result && typeof (result).text === 'string') {
    return (result as { text: string }).text;
  }
  return JSON.stringify(result, null, 2);
}

/** Collect the retained reports of one device: status, inventory, last metrics, state, as received. */
async function retainedReports(ctx: OperatorContext, deviceId: string, waitMs: number): Promise<Partial<Record<RetainedReportKind, Buffer>>> {
  const received: Partial<Record<RetainedReportKind, Buffer>> = {};
  const stop = await ctx.link.watch(deviceId, [...RETAINED_REPORT_KINDS], (r) => {
    received[r.kind as RetainedReportKind] = r.payload;
  });
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  await stop();
  return received;
}

/** The refusal counts of a metrics report, when it is one. */
function metricsRefusals(payload: Buffer): Record<string, number> | undefined {
  return (judgeRetainedReports({ metrics: payload }, undefined).reports.metrics as MetricsReport | undefined)?.refused;
}

/** `TOO_LARGE 2, BAD_SIGNATURE 1`: a device's refusal counts, from its metrics. */
export function refusedText(refused: Record<string, number> | undefined): string | undefined {
  if (refused === undefined || Object.keys(refused).length === 0) return undefined;
  return Object.entries(refused).map(([code, n]) => `${code} ${n}`).join(', ');
}

export async function runStatus(deviceId: string, o: { dir: string; json?: boolean }): Promise<void> {
  const ctx = await operatorContext(o.dir, 'status');
  try {
    const device = knownDevice(ctx.database, deviceId);
    const packetLimit = ctx.fleet.config.broker.protocolVersion === 5 ? MAX_PACKET_BYTES : undefined;
    const { reports, unavailable } = judgeRetainedReports(await retainedReports(ctx, deviceId, 700), packetLimit);
    const { signPublicKey: _s, boxPublicKey: _b, ...record } = device;
    if (o.json) {
      process.stdout.write(`${JSON.stringify({ device: record, ...reports, unavailable }, null, 2)}\n`);
      return;
    }
    const status = reports.status as { state?: string; at?: number; reason?: string } | undefined;
    const inv = reports.inventory as InventoryReport | undefined;
    const x = reports.metrics as MetricsReport | undefined;
    const mib = (n: number): string => `${Math.round(n / 1048576)} MiB`;
    const rows: string[][] = [
      ['device', device.deviceId],
      ['link', `${status?.state ?? (device.online ? 'online' : 'offline')}${status?.reason ? ` (${status.reason})` : ''}`],
      ['last seen', device.lastSeen === null ? '-' : new Date(device.lastSeen).toISOString()],
      ['serial / model', `${device.serial} / ${device.model}`],
    ];
    if (inv !== undefined) {
      rows.push(['os', `${inv.os.distro} ${inv.os.release} (kernel ${inv.os.kernel}), ${inv.arch}`]);
      rows.push(['cpu', `${inv.cpu.model} × ${inv.cpu.cores}`]);
      rows.push(['memory', mib(inv.memory.totalBytes)]);
      rows.push(['devices', inv.devices.map((d) => d.path).join(' ') || '-']);
      rows.push(['runtime', inv.containerRuntime ?? '-']);
      rows.push(['labels', Object.entries(inv.labels).map(([k, v]) => `${k}=${v}`).join(',')]);
    }
    if (x !== undefined) {
      rows.push(['metrics at', new Date(x.at).toISOString()]);
      rows.push(['cpu load', `${Math.round(x.cpu.load * 100)} % (loadavg ${x.cpu.loadAvg.join(' ')})`]);
      rows.push(['memory used', `${mib(x.memory.usedBytes)} of ${mib(x.memory.totalBytes)}`]);
      for (const f of x.filesystems) rows.push([`disk ${f.mount}`, `${mib(f.usedBytes)} of ${mib(f.sizeBytes)}`]);
      if (x.temperatureC !== undefined) rows.push(['temperature', `${x.temperatureC} °C`]);
      rows.push(['uptime', `${Math.round(x.uptimeSec / 60)} min`]);
      rows.push(['refused', refusedText(x.refused) ?? 'none']);
    }
    for (const [kind, why] of Object.entries(unavailable)) rows.push([kind, `unavailable: ${why}`]);
    printTable(['FIELD', 'VALUE'], rows);
  } finally {
    await ctx.close();
  }
}

export async function runWatch(deviceId: string | undefined, o: { dir: string; json?: boolean }): Promise<void> {
  const ctx = await operatorContext(o.dir, 'watch');
  // Pull progress as deploy shows it: a bar on a terminal, a line per 10 % otherwise.
  const progress = textDeployOutput((t) => process.stdout.write(t), { tty: process.stdout.isTTY, multi: true });
  await ctx.link.watch(deviceId, ['status', 'inventory', 'metrics', 'state', 'events'], (r) => {
    const text = r.payload.toString('utf8');
    const event = !o.json && r.kind === 'events' ? parseEvent(r.payload) : undefined;
    if (event !== undefined && pullProgressOf(event) !== undefined) {
      progress.event(r.deviceId, event);
    } else if (o.json) {
      let payload: unknown = text;
      try { payload = JSON.parse(text) as unknown; } catch { /* shown as text */ }
      process.stdout.write(`${JSON.stringify({ deviceId: r.deviceId, kind: r.kind, retained: r.retained, payload })}\n`);
    } else {
      // On a terminal, first clear a progress bar the line would otherwise continue.
      // The line shows the start of a report; a device's refusal counts come first, or they would be cut off.
      const refused = r.kind === 'metrics' ? refusedText(metricsRefusals(r.payload)) : undefined;
      process.stdout.write(`${process.stdout.isTTY ? '\r\x1b[K' : ''}${new Date().toISOString()} ${r.deviceId} ${r.kind}${r.retained ? ' (retained)' : ''} ${refused === undefined ? '' : printable(`[refused: ${refused}] `)}${printable(text.slice(0, 300))}\n`);
    }
  });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await ctx.close();
}
