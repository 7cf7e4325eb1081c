import { join } from 'node:path';
import * as z from 'zod';
import { readFileIfExists, writeFileAtomic } from '../../common/atomic-file.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import { CLIENT_ID_PATTERN } from '../../protocol/client-id.js';
import { DEVICE_ID_PATTERN } from '../../protocol/topics.js';
import { bootstrapRole, deviceRole, fleetRole, type RoleSpec } from '../broker-roles.js';
import { clientIdOwners, mayUseClientId } from './client-id-binding.js';
import { hashPassword, verifyPassword } from './password-hash.js';

/**
 * The embedded broker's accounts: the counterpart of the clients and roles
 * Mosquitto's dynamic-security plugin keeps in its own file. Only password
 * hashes are stored. Each account holds exactly one of the roles of
 * `broker-roles.ts`, so both brokers confine with the same ACLs.
 */
const AccountSchema = z.discriminatedUnion('role', [
  z.object({ role: z.literal('fleet'), passwordHash: z.string() }).strict(),
  z.object({ role: z.literal('bootstrap'), passwordHash: z.string() }).strict(),
  /**
   * A device account is bound to `clientId`, the secret of its grant; an
   * account made before secret client ids has none and is bound to its
   * username (the device id). See client-id-binding.ts.
   */
  z.object({ role: z.literal('device'), passwordHash: z.string(), clientId: z.string().regex(CLIENT_ID_PATTERN).optional() }).strict(),
]);
export type Account = z.infer<typeof AccountSchema>;
export type AccountRole = Account['role'];

const AccountFileSchema = z.object({
  v: z.literal(1),
  accounts: z.record(z.string(), AccountSchema),
}).strict();

// A device account is about 150 bytes: room for a large fleet.
const FILE_LIMITS = { maxBytes: 32 * 1024 * 1024, maxDepth: 8 };

export function accountFilePath(fleetDir: string): string {
  return join(fleetDir, 'broker-accounts.json');
}

export function rolesOf(username: string, account: Account): RoleSpec[] {
  switch (account.role) {
    case 'fleet': return [fleetRole()];
    case 'bootstrap': return [bootstrapRole()];
    case 'device': return [deviceRole(username)];
  }
}

/** Why a connection was refused, for the broker's log (never the client id itself: it may be a device's secret). */
export type AuthRefusal = 'unknown-user' | 'client-id-not-allowed' | 'bad-password';

export class AccountStore {
  private readonly accounts: Map<string, Account>;
  /** Client id → the device account holding it; rebuilt on every change. */
  private owners: Map<string, string>;

  private constructor(private readonly path: string, accounts: Record<string, Account>) {
    this.accounts = new Map(Object.entries(accounts));
    this.owners = clientIdOwners(this.accounts);
  }

  /** Open the store of a fleet directory; an absent file is an empty store. */
  static open(path: string): AccountStore {
    const bytes = readFileIfExists(path);
    const file = bytes === undefined ? { v: 1 as const, accounts: {} } : checkSchema(AccountFileSchema, parseJsonBytes(bytes, FILE_LIMITS), path);
    return new AccountStore(path, file.accounts);
  }

  get(username: string): Account | undefined {
    return this.accounts.get(username);
  }

  /**
   * Check a credential and the client id it connects under: a device
   * account only under its bound client id, every other account under no
   * client id a device holds (client-id-binding.ts).
   */
  async authenticate(username: string, password: string, clientId: string): Promise<{ account: Account } | { refused: AuthRefusal }> {
    const account = this.accounts.get(username);
    if (account === undefined) return { refused: 'unknown-user' };
    if (!mayUseClientId({ username, account, clientId, owner: this.owners.get(clientId) })) return { refused: 'client-id-not-allowed' };
    return (await verifyPassword(password, account.passwordHash)) ? { account } : { refused: 'bad-password' };
  }

  /**
   * Create or reset an account; a device account with the client id it is
   * bound to. Idempotent: an account that already holds this role, password
   * and client id is left as it is, and the file is written only when
   * something changed.
   */
  async put(username: string, role: AccountRole, password: string, clientId?: string): Promise<void> {
    if (role === 'device' && !DEVICE_ID_PATTERN.test(username)) throw new Error(`not a device id: ${username}`);
    if (role === 'device' && clientId !== undefined && !CLIENT_ID_PATTERN.test(clientId)) throw new Error(`not a client id for ${username}`);
    const owner = clientId === undefined ? undefined : this.owners.get(clientId);
    if (owner !== undefined && owner !== username) throw new Error(`the client id for ${username} is held by another account`);
    const current = this.accounts.get(username);
    const currentClientId = current?.role === 'device' ? current.clientId : undefined;
    if (current?.role === role && currentClientId === clientId && await verifyPassword(password, current.passwordHash)) return;
    this.accounts.set(username, role === 'device'
      ? { role, passwordHash: await hashPassword(password), ...(clientId === undefined ? {} : { clientId }) }
      : { role, passwordHash: await hashPassword(password) });
    this.owners = clientIdOwners(this.accounts);
    this.save();
  }

  /** Change the password of an existing account, keeping its client id; false when there is none. */
  async setPassword(username: string, password: string): Promise<boolean> {
    const current = this.accounts.get(username);
    if (current === undefined) return false;
    await this.put(username, current.role, password, current.role === 'device' ? current.clientId : undefined);
    return true;
  }

  /** Remove an account; false when there was none. */
  remove(username: string): boolean {
    if (!this.accounts.delete(username)) return false;
    this.save();
    return true;
  }

  private save(): void {
    writeFileAtomic(this.path, `${JSON.stringify({ v: 1, accounts: Object.fromEntries(this.accounts) }, null, 1)}\n`, 0o600);
  }
}
