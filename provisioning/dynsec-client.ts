import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { TsunaguError } from '../protocol/errors.js';
import { DEFAULT_ACL_ACCESS, type AclEntry, type RoleSpec } from './broker-roles.js';

const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
const RESPONSE_TOPIC = `${CONTROL_TOPIC}/response`;

interface DynsecResponse {
  command: string;
  error?: string;
  correlationData?: string;
  data?: unknown;
}

/**
 * Administers Mosquitto's dynamic-security plugin over its MQTT control
 * topic. One request at a time per correlation id; the plugin answers every
 * command list on the shared response topic.
 */
export class DynsecClient {
  private readonly pending = new Map<string, { resolve: (r: DynsecResponse[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private subscribed: Promise<void> | undefined;

  constructor(private readonly client: MqttClient, private readonly timeoutMs = 10_000) {
    // A lost connection loses the answers too: fail the waiters now, not at their timeout.
    client.on('close', () => {
      this.subscribed = undefined;
      this.failPending('the broker connection closed');
    });
    client.on('message', (topic, payload) => {
      if (topic !== RESPONSE_TOPIC) return;
      let parsed: { responses?: DynsecResponse[] };
      try {
        parsed = JSON.parse(payload.toString('utf8')) as { responses?: DynsecResponse[] };
      } catch {
        return;
      }
      const responses = parsed.responses ?? [];
      const correlation = responses[0]?.correlationData;
      if (correlation === undefined) return;
      const waiter = this.pending.get(correlation);
      if (waiter === undefined) return;
      this.pending.delete(correlation);
      clearTimeout(waiter.timer);
      waiter.resolve(responses);
    });
  }

  private ensureSubscribed(): Promise<void> {
    this.subscribed ??= this.client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 }).then(() => undefined);
    return this.subscribed;
  }

  /** Send commands; resolves with one response per command, in order. Does not throw on per-command errors. */
  async run(commands: Record<string, unknown>[]): Promise<DynsecResponse[]> {
    await this.ensureSubscribed();
    const correlationData = randomBytes(8).toString('hex');
    const tagged = commands.map((c) => ({ ...c, correlationData }));
    const done = new Promise<DynsecResponse[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationData);
        reject(new TsunaguError('BROKER_ADMIN_FAILED', `no answer from the dynamic-security plugin within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(correlationData, { resolve, reject, timer });
    });
    try {
      await this.client.publishAsync(CONTROL_TOPIC, JSON.stringify({ commands: tagged }), { qos: 1 });
    } catch (err) {
      const waiter = this.pending.get(correlationData);
      this.pending.delete(correlationData);
      if (waiter !== undefined) clearTimeout(waiter.timer);
      done.catch(() => undefined);
      throw new TsunaguError('BROKER_ADMIN_FAILED', `could not reach the dynamic-security plugin: ${(err as Error).message}`);
    }
    return done;
  }

  /** Run commands and throw on any error not listed as acceptable. */
  async runChecked(commands: Record<string, unknown>[], tolerated: RegExp[] = []): Promise<DynsecResponse[]> {
    const responses = await this.run(commands);
    for (const r of responses) {
      if (r.error !== undefined && !tolerated.some((t) => t.test(r.error!))) {
        throw new TsunaguError('BROKER_ADMIN_FAILED', `${r.command}: ${r.error}`, { command: r.command });
      }
    }
    return responses;
  }

  /**
   * Make a role hold exactly `spec.acls`. An unchanged role is left alone:
   * the plugin disconnects every client of a role it modifies, and a service
   * restart must not kick the whole fleet.
   */
  async putRole(spec: RoleSpec): Promise<void> {
    const [current] = await this.run([{ command: 'getRole', rolename: spec.rolename }]);
    const acls = (current?.data as { role?: { acls?: AclEntry[] } } | undefined)?.role?.acls;
    if (current?.error !== undefined || acls === undefined) {
      await this.runChecked([{ command: 'createRole', rolename: spec.rolename, acls: spec.acls }], [/exists/i]);
      return;
    }
    // Edit in place rather than delete and recreate: Mosquitto 2.0.11 has
    // crashed here when a role still held by clients was deleted.
    const wanted = new Set(spec.acls.map(aclKey));
    const present = new Set(acls.map(aclKey));
    const edits = [
      ...acls.filter((a) => !wanted.has(aclKey(a))).map((a) => ({ command: 'removeRoleACL', rolename: spec.rolename, acltype: a.acltype, topic: a.topic })),
      ...spec.acls.filter((a) => !present.has(aclKey(a))).map((a) => ({ command: 'addRoleACL', rolename: spec.rolename, ...a })),
    ];
    if (edits.length > 0) await this.runChecked(edits);
  }

  async setDefaultAccess(): Promise<void> {
    await this.runChecked([{ command: 'setDefaultACLAccess', acls: DEFAULT_ACL_ACCESS }]);
  }

  /**
   * Create a client, or reset the password and roles of an existing one.
   * Idempotent, so a redelivered enrollment or a second service instance
   * converges on the same broker state.
   */
  async putClient(args: { username: string; password: string; clientId?: string; roles: string[]; keepPassword?: boolean }): Promise<void> {
    const [current] = await this.run([{ command: 'getClient', username: args.username }]);
    const client = (current?.data as { client?: { roles?: { rolename: string }[]; clientid?: string } } | undefined)?.client;
    if (current?.error === undefined && client !== undefined) {
      const held = new Set((client.roles ?? []).map((r) => r.rolename));
      const missing = args.roles.filter((r) => !held.has(r));
      // Changing a client disconnects its sessions: a shared account that is
      // already right (the bootstrap credential) is left alone.
      if (args.keepPassword === true && missing.length === 0) return;
      await this.runChecked([
        ...(args.keepPassword === true ? [] : [{ command: 'setClientPassword', username: args.username, password: args.password }]),
        ...(args.clientId === undefined || client.clientid === args.clientId ? [] : [{ command: 'setClientId', username: args.username, clientid: args.clientId }]),
        ...missing.map((rolename) => ({ command: 'addClientRole', username: args.username, rolename })),
        { command: 'enableClient', username: args.username },
      ]);
      return;
    }
    const created = await this.run([{
      command: 'createClient',
      username: args.username,
      password: args.password,
      ...(args.clientId === undefined ? {} : { clientid: args.clientId }),
      roles: args.roles.map((rolename) => ({ rolename })),
    }]);
    const error = created[0]?.error;
    if (error === undefined) return;
    if (!/exists/i.test(error)) throw new TsunaguError('BROKER_ADMIN_FAILED', `createClient: ${error}`);
    await this.runChecked([
      { command: 'setClientPassword', username: args.username, password: args.password },
      ...(args.clientId === undefined ? [] : [{ command: 'setClientId', username: args.username, clientid: args.clientId }]),
      ...args.roles.map((rolename) => ({ command: 'addClientRole', username: args.username, rolename })),
    ], [/already/i]);
    await this.run([{ command: 'enableClient', username: args.username }]);
  }

  /** Remove a client; existing connections of it are dropped by the plugin. */
  async deleteClient(username: string): Promise<void> {
    await this.runChecked([{ command: 'deleteClient', username }], [/not found/i]);
  }

  private failPending(reason: string): void {
    for (const [, w] of this.pending) {
      clearTimeout(w.timer);
      w.reject(new TsunaguError('BROKER_ADMIN_FAILED', reason));
    }
    this.pending.clear();
  }

  close(): void {
    this.failPending('closed');
  }
}

function aclKey(a: AclEntry): string {
  return `${a.acltype} ${a.topic} ${a.allow} ${a.priority ?? 0}`;
}
