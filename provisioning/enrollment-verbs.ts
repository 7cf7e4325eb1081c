import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createLogger } from '../common/logger.js';
import { writeFileAtomic } from '../common/atomic-file.js';
import { bootstrapFileFor } from './bootstrap-file.js';
import { TsunaguError } from '../protocol/errors.js';
import { MQTT_PORT } from '../protocol/mqtt-ports.js';
import { MIN_PACKET_LIMIT_BYTES } from '../protocol/packet-size.js';
import { connectFleetClient, createFleetAccount, packetLimitAdvice, prepareBroker, type BrokerPacketLimit } from './broker-setup.js';
import { hashClaimToken, type ClaimPolicy } from './claim-policy.js';
import { DynsecClient } from './dynsec-client.js';
import { startEnrollmentServer } from './enrollment-server.js';
import { AccountStore, accountFilePath } from './embedded/account-store.js';
import { prepareEmbeddedAccounts } from './embedded/embedded-accounts.js';
import { deviceListing } from './device-listing.js';
import { createFleetDir, fleetPaths, loadFleetDir, type FleetConfig } from './fleet-dir.js';
import { FleetDatabase, type DeviceRecord } from './fleet-database.js';
import { printTable } from './terminal-text.js';

// The verbs that set a fleet up and bring devices into it: init, bootstrap,
// serve (the enrollment service), approve, devices. The verbs that talk to
// enrolled devices live in operator-commands.ts, deploy-command.ts and
// retire-commands.ts.

export interface InitOptions {
  dir: string; fleetId: string; broker?: string; listen?: string; deviceBroker?: string; ca?: string; adminUser?: string; adminPassword?: string;
  claim: 'token' | 'allowlist' | 'approve'; claimToken?: string; serials: string; mqttVersion: string; generatedToken: string;
}

/** The broker settings of a new fleet; on Mosquitto, also its account there, and what the broker said of its packet size limit. */
async function brokerForNewFleet(o: InitOptions, ca: string | undefined): Promise<{ broker: FleetConfig['broker']; packetLimit?: BrokerPacketLimit }> {
  const username = `tsunagu-fleet-${o.fleetId}`;
  const password = randomBytes(24).toString('base64url');
  if (o.broker === undefined) {
    if (o.ca !== undefined || o.adminUser !== undefined) throw new TsunaguError('CONFIG', '--ca and --admin-user apply to an external broker: pass --broker too, or drop them to use the embedded broker');
    const listen = new URL(`mqtt://${o.listen ?? `127.0.0.1:${MQTT_PORT}`}`);
    const port = listen.port === '' ? String(MQTT_PORT) : listen.port;
    const host = listen.hostname === '0.0.0.0' ? '127.0.0.1' : listen.hostname;
    return {
      broker: {
        url: `mqtt://${host}:${port}`,
        ...(host === listen.hostname ? {} : { listen: `${listen.hostname}:${port}` }),
        ...(o.deviceBroker === undefined ? {} : { deviceUrl: o.deviceBroker }),
        // Aedes 1.x speaks MQTT 3.1.1 only.
        protocolVersion: 4, username, password, kind: 'embedded',
      },
    };
  }
  if (o.adminUser === undefined || o.adminPassword === undefined) {
    throw new TsunaguError('CONFIG', 'an external broker needs its dynamic-security admin: pass --admin-user and --admin-password (or $TSUNAGU_BROKER_ADMIN_PASSWORD)');
  }
  const protocolVersion = o.mqttVersion === '4' ? 4 : 5;
  const packetLimit = await createFleetAccount({ url: o.broker, ...(ca === undefined ? {} : { ca }), protocolVersion, adminUser: o.adminUser, adminPassword: o.adminPassword, fleetUser: username, fleetPassword: password });
  return {
    broker: {
      url: o.broker,
      ...(o.deviceBroker === undefined ? {} : { deviceUrl: o.deviceBroker }),
      ...(ca === undefined ? {} : { ca }),
      protocolVersion, username, password, kind: 'mosquitto',
    },
    packetLimit,
  };
}

/** Where a command prints its result (stdout; a test captures it). */
export interface Output {
  write(text: string): unknown;
}

export async function runInit(o: InitOptions, out: Output = process.stdout): Promise<void> {
  // Checked before touching the broker: creating the fleet account resets the
  // password of an existing one, which would lock out the fleet already there.
  if (existsSync(fleetPaths(o.dir).keys)) throw new TsunaguError('CONFIG', `${o.dir} already holds a fleet; refusing to overwrite it`);
  let claim: ClaimPolicy;
  let token: string | undefined;
  if (o.claim === 'token') {
    token = o.claimToken ?? o.generatedToken;
    claim = { mode: 'token', tokenSha256: hashClaimToken(token) };
  } else if (o.claim === 'allowlist') {
    claim = { mode: 'allowlist', serials: o.serials.split(',').map((s) => s.trim()).filter((s) => s !== '') };
  } else {
    claim = { mode: 'approve' };
  }
  const ca = o.ca === undefined ? undefined : readFileSync(o.ca, 'utf8');
  const { broker, packetLimit } = await brokerForNewFleet(o, ca);
  const fleet = createFleetDir(o.dir, { fleetId: o.fleetId, broker, claim });
  if (broker.kind === 'embedded') await prepareEmbeddedAccounts(AccountStore.open(accountFilePath(o.dir)), fleet.config);
  out.write(`created fleet "${fleet.config.fleetId}" in ${o.dir} (signing key id ${fleet.keyId})\n`);
  if (packetLimit !== undefined) {
    const advice = packetLimitAdvice(packetLimit, MIN_PACKET_LIMIT_BYTES);
    if (advice.warning) process.stderr.write(`warning: ${advice.text}\n`);
    else out.write(`${advice.text}\n`);
  }
  if (token !== undefined && o.claimToken === undefined) {
    out.write(`claim token (shown once, keep it for 'tsunagu-fleet bootstrap --claim-token'): ${token}\n`);
  }
  out.write(`next: tsunagu-fleet bootstrap --dir ${o.dir} --out tsunagu.json${token !== undefined ? ' --claim-token TOKEN' : ''}\n`);
}

export async function runBootstrap(o: { dir: string; out: string; claimToken?: string }): Promise<void> {
  const fleet = loadFleetDir(o.dir);
  const { config } = fleet;
  if (config.claim.mode === 'token' && o.claimToken === undefined) {
    throw new TsunaguError('CONFIG', 'this fleet claims devices by token: pass --claim-token');
  }
  if (o.claimToken !== undefined && config.claim.mode === 'token' && hashClaimToken(o.claimToken) !== config.claim.tokenSha256) {
    throw new TsunaguError('CONFIG', 'the claim token does not match this fleet\'s token');
  }
  if (config.broker.kind === 'embedded') {
    await prepareEmbeddedAccounts(AccountStore.open(accountFilePath(o.dir)), config);
  } else {
    const client = await connectFleetClient(config, 'bootstrap');
    const dynsec = new DynsecClient(client);
    try {
      await prepareBroker(dynsec, config);
    } finally {
      dynsec.close();
      await client.endAsync();
    }
  }
  const file = bootstrapFileFor(fleet, o.claimToken);
  writeFileAtomic(o.out, `${JSON.stringify(file, null, 2)}\n`, 0o600);
  process.stdout.write(`wrote ${o.out}: put it on the device's boot partition as tsunagu.json or in /etc/tsunagu/bootstrap.json\n`);
}

export async function runServe(o: { dir: string }): Promise<void> {
  const fleet = loadFleetDir(o.dir);
  const logger = createLogger({ name: 'tsunagu-fleet' });
  const server = await startEnrollmentServer(fleet, logger);
  const stop = async (): Promise<void> => {
    logger.info('stopping');
    await server.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

export function runApprove(device: string, o: { dir: string; asNew?: boolean }): void {
  const fleet = loadFleetDir(o.dir);
  const database = new FleetDatabase(fleet.databasePath);
  try {
    const approved = database.approve(device, Date.now(), { asNew: o.asNew === true });
    if (approved === undefined) throw new TsunaguError('CONFIG', `no pending device with id or serial "${device}" (see: tsunagu-fleet devices)`);
    const { deviceId, replaces, serial } = approved;
    database.audit({
      event: 'approved', code: null, requestId: null, deviceId, serial,
      message: replaces === null ? 'approved by operator' : approved.asNew
        ? `approved by operator as a new device (it presents the serial of ${replaces}, which is left as it is)`
        : `re-key of ${replaces} approved by operator`,
    });
    process.stdout.write(replaces === null
      ? `approved ${deviceId}: the device joins at its next attempt\n`
      : approved.asNew
        ? `approved ${deviceId} as a new device: it joins under its own id at its next attempt; ${replaces} is left as it is\n`
        : `approved ${deviceId}: re-key of ${replaces}; at its next attempt the device gets the id ${replaces} with its new keys\n`);
  } finally {
    database.close();
  }
}

export function runDevices(o: { dir: string; json?: boolean; labels?: boolean; keys?: boolean }): void {
  if (o.keys && !o.json) throw new TsunaguError('CONFIG', '--keys goes with --json: the keys are for programs, not for the table');
  const fleet = loadFleetDir(o.dir);
  const database = new FleetDatabase(fleet.databasePath);
  try {
    const devices = database.list();
    if (o.json) {
      process.stdout.write(`${JSON.stringify(deviceListing(devices, o.keys === true), null, 2)}\n`);
      return;
    }
    if (devices.length === 0) {
      process.stdout.write('no devices yet\n');
      return;
    }
    const rows = devices.map((d) => [d.deviceId, statusText(d), d.online ? 'online' : 'offline',
      d.lastSeen === null ? '-' : new Date(d.lastSeen).toISOString(), d.serial, d.arch, d.model,
      ...(o.labels ? [Object.entries(d.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-'] : [])]);
    printTable(['DEVICE', 'STATUS', 'LINK', 'LAST SEEN', 'SERIAL', 'ARCH', 'MODEL', ...(o.labels ? ['LABELS'] : [])], rows);
  } finally {
    database.close();
  }
}

/** `pending`, `pending (approved)`, `pending (re-key of d-…)`, `pending (re-key of d-…, approved)`, `active`, … */
function statusText(d: DeviceRecord): string {
  if (d.status !== 'pending') return d.status;
  const notes = [...(d.replaces === null ? [] : [`re-key of ${d.replaces}`]), ...(d.approved ? [d.asNew ? 'approved as new' : 'approved'] : [])];
  return notes.length === 0 ? d.status : `${d.status} (${notes.join(', ')})`;
}
