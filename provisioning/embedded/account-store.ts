import { join } from 'node:path';
import * as z from 'zod';
import { readFileIfExists, writeFileAtomic } from '../../agent/state/atomic-file.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import { DEVICE_ID_PATTERN } from '../../protocol/topics.js';
import { bootstrapRole, deviceRole, fleetRole, type RoleSpec } from '../broker-roles.js';
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
  /** A device account is bound to the client id equal to its username (the device id). */
  z.object({ role: z.literal('device'), passwordHash: z.string() }).strict(),
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

export class AccountStore {
  private readonly accounts: Map<string, Account>;

  private constructor(private readonly path: string, accounts: Record<string, Account>) {
    this.accounts = new Map(Object.entries(accounts));
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

  /** Check a credential; a device account also needs its own client id. */
  async authenticate(username: string, password: string, clientId: string): Promise<Account | undefined> {
    const account = this.accounts.get(username);
    if (account === undefined) return undefined;
    if (account.role === 'device' && clientId !== username) return undefined;
    return (await verifyPassword(password, account.passwordHash)) ? account : undefined;
  }

  /**
   * Create or reset an account. Idempotent: an account that already holds
   * this role and password is left as it is, and the file is written only
   * when something changed.
   */
  async put(username: string, role: AccountRole, password: string): Promise<void> {
    if (role === 'device' && !DEVICE_ID_PATTERN.test(username)) throw new Error(`not a device id: ${username}`);
    const current = this.accounts.get(username);
    if (current?.role === role && await verifyPassword(password, current.passwordHash)) return;
    this.accounts.set(username, { role, passwordHash: await hashPassword(password) });
    this.save();
  }

  /** Change the password of an existing account; false when there is none. */
  async setPassword(username: string, password: string): Promise<boolean> {
    const current = this.accounts.get(username);
    if (current === undefined) return false;
    await this.put(username, current.role, password);
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
