import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import { MAX_PACKET_BYTES } from '../../protocol/packet-size.js';
import type { RoleSpec } from '../broker-roles.js';
import { aclAllows, isPlainName, unshareFilter } from './acl-check.js';
import { rolesOf, type AccountStore } from './account-store.js';
import { answerControlRequest, CONTROL_RESPONSE_TOPIC, CONTROL_TOPIC } from './control-topic.js';
import { SizeGuardedSocket } from './size-guarded-socket.js';

export interface EmbeddedBroker {
  /** URL a client on this machine connects to. */
  url: string;
  port: number;
  /** Connections closed since the start for a packet over the size limit (or a malformed header). */
  refusedPackets(): number;
  close(): Promise<void>;
}

interface Principal {
  username: string;
  fleet: boolean;
  /** Emptied when the account is deleted: whatever the client still sends, its will too, is refused. */
  roles: RoleSpec[];
}

// CONNACK return codes of MQTT 3.1.1.
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

function refusal(returnCode: number, message: string): AuthenticateError {
  const err: AuthenticateError = Object.assign(new Error(message), { returnCode });
  return err;
}

/**
 * An MQTT 3.1.1 broker inside `tsunagu-fleet serve`, for a fleet with no
 * broker of its own. Aedes keeps messages and sessions in memory; the
 * confinement is the one Mosquitto enforces, decided by `aclAllows` over the
 * same roles (`broker-roles.ts`), on the accounts of `AccountStore`.
 *
 * What differs from Mosquitto, by Aedes' design: a forbidden PUBLISH closes
 * the client's connection (MQTT 3.1.1 has no negative PUBACK); a forbidden
 * SUBSCRIBE is answered with return code 0x80 and the connection stays.
 *
 * Aedes has no packet size limit: `maxPacketBytes` (default MAX_PACKET_BYTES)
 * is enforced on each socket before Aedes reads it (size-guarded-socket.ts).
 */
export async function startEmbeddedBroker(options: { store: AccountStore; host: string; port: number; logger: Logger; maxPacketBytes?: number | undefined }): Promise<EmbeddedBroker> {
  const { store, logger } = options;
  const maxPacketBytes = options.maxPacketBytes ?? MAX_PACKET_BYTES;
  let refusedPackets = 0;
  const principals = new WeakMap<Client, Principal>();
  const connected = new Set<Client>();

  const broker = await Aedes.createBroker({
    // Device ids reach 64 characters; MQTT 3.1.1 itself sets no limit.
    maxClientsIdLength: 128,
    authenticate: (client, username, password, done) => {
      if (username === undefined || password === undefined || !isPlainName(username) || !isPlainName(client.id)) {
        done(refusal(NOT_AUTHORIZED, 'not authorized'), false);
        return;
      }
      // Decided before Aedes looks for an existing session under this client id:
      // a refused CONNECT never closes or discards the holder's session.
      store.authenticate(username, password.toString('utf8'), client.id).then((result) => {
        if ('refused' in result) {
          // Not the client id: a device's own failed login would write its secret to the log.
          logger.warn({ username, reason: result.refused }, 'embedded broker: credential refused');
          done(result.refused === 'client-id-not-allowed' ? refusal(NOT_AUTHORIZED, 'not authorized') : refusal(BAD_USERNAME_OR_PASSWORD, 'bad user name or password'), false);
          return;
        }
        const { account } = result;
        principals.set(client, { username, fleet: account.role === 'fleet', roles: rolesOf(username, account) });
        done(null, true);
      }, (err: unknown) => {
        logger.error({ err }, 'embedded broker: authentication failed');
        done(refusal(NOT_AUTHORIZED, 'not authorized'), false);
      });
    },
    authorizePublish: (client, packet, callback) => {
      // A will left by a client of an earlier broker life has no principal to judge it by.
      const principal = client === null ? undefined : principals.get(client);
      if (principal === undefined || !aclAllows(principal.roles, 'publishClientSend', packet.topic)) {
        callback(new Error(`not authorized to publish to ${packet.topic}`));
        return;
      }
      if (packet.topic === CONTROL_TOPIC && principal.fleet) {
        answerControlRequest(packet.payload as Buffer, store, disconnectAccount).then((answer) => {
          if (answer !== undefined) {
            broker.publish({ cmd: 'publish', topic: CONTROL_RESPONSE_TOPIC, payload: Buffer.from(JSON.stringify(answer)), qos: 1, retain: false, dup: false }, () => undefined);
          }
        }, (err: unknown) => logger.error({ err }, 'embedded broker: control request failed'));
      }
      callback(null);
    },
    authorizeSubscribe: (client, subscription, callback) => {
      const principal = principals.get(client);
      if (principal === undefined || !aclAllows(principal.roles, 'subscribe', subscription.topic)) {
        callback(null, null);
        return;
      }
      callback(null, { ...subscription, topic: unshareFilter(subscription.topic) });
    },
    // Deny-by-default on receiving too: what a role may not receive is never forwarded, retained or live.
    authorizeForward: (client, packet) => {
      const principal = principals.get(client);
      return principal !== undefined && aclAllows(principal.roles, 'publishClientReceive', packet.topic) ? packet : null;
    },
  });
  /**
   * Cut off every connection of a deleted account at once: its roles go
   * first, so that its will (a retained offline status) is refused and
   * nothing of it is published after the deletion is answered.
   */
  const disconnectAccount = async (username: string): Promise<void> => {
    const closing: Promise<void>[] = [];
    for (const client of connected) {
      const principal = principals.get(client);
      if (principal?.username !== username) continue;
      principal.roles = [];
      closing.push(new Promise<void>((resolve) => client.close(() => resolve())));
    }
    await Promise.all(closing);
    if (closing.length > 0) logger.info({ username, connections: closing.length }, 'embedded broker: deleted account disconnected');
  };
  broker.on('client', (client) => connected.add(client));
  broker.on('clientDisconnect', (client) => connected.delete(client));
  // By username: a device's client id is a secret of its grant.
  broker.on('clientError', (client, err) => logger.debug({ username: principals.get(client)?.username, err: err.message }, 'embedded broker: client error'));

  const sockets = new Set<Socket>();
  // No Nagle: MQTT exchanges are small request/answer packets, and a delayed
  // ACK would hold each one back by tens of ms (the same reason the Mosquitto
  // configs set set_tcp_nodelay).
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const connection: SizeGuardedSocket & { client?: Client } = new SizeGuardedSocket(socket, maxPacketBytes, (refusal) => {
      refusedPackets++;
      // Aedes hangs its client on the stream it was handed; the client has no id before CONNECT.
      const client = connection.client;
      logger.warn({
        clientId: client?.id, username: client === undefined ? undefined : principals.get(client)?.username, remoteAddress: socket.remoteAddress,
        refusal: refusal.kind, ...(refusal.kind === 'too-large' ? { packetBytes: refusal.packetBytes, packetType: refusal.packetType } : {}),
        maxPacketBytes, refusedPackets,
      }, refusal.kind === 'too-large' ? 'embedded broker: refused a packet over the size limit; connection closed' : 'embedded broker: refused a malformed packet header; connection closed');
    });
    broker.handle(connection);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const connectHost = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  logger.info({ host: options.host, port, maxPacketBytes }, 'embedded MQTT 3.1.1 broker listening');
  return {
    url: `mqtt://${connectHost}:${port}`,
    port,
    refusedPackets: () => refusedPackets,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
