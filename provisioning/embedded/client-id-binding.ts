/**
 * Which client ids an account of the embedded broker may connect with.
 * MQTT hands a session to whoever connects under its client id, closing the
 * holder's connection (and, with clean start, discarding its queued
 * messages), so a device's client ids belong to its account alone:
 *   - its bound client id (the secret of its grant), the only one it may use;
 *   - its device id, which every topic shows and which was the client id of
 *     devices enrolled before secret client ids.
 * Any other account (bootstrap, fleet, another device) is refused under
 * either. This is the embedded broker's own guard; on Mosquitto, which lets
 * any account take any client id, only the secrecy of the bound id protects.
 */

/** The client id a device account is bound to: its grant's, or its device id for an account made before secret client ids. */
export function boundClientId(username: string, account: { role: string; clientId?: string | undefined }): string | undefined {
  if (account.role !== 'device') return undefined;
  return account.clientId ?? username;
}

/** The client ids each device account holds, mapped to that account's username. */
export function clientIdOwners(accounts: Iterable<readonly [string, { role: string; clientId?: string | undefined }]>): Map<string, string> {
  const owners = new Map<string, string>();
  for (const [username, account] of accounts) {
    const bound = boundClientId(username, account);
    if (bound === undefined) continue;
    owners.set(username, username);
    owners.set(bound, username);
  }
  return owners;
}

/**
 * Decide whether `username` may connect under `clientId`; `owner` is the
 * account holding that client id, if any (from `clientIdOwners`).
 */
export function mayUseClientId(args: { username: string; account: { role: string; clientId?: string | undefined }; clientId: string; owner: string | undefined }): boolean {
  const bound = boundClientId(args.username, args.account);
  if (bound !== undefined) return args.clientId === bound;
  return args.owner === undefined;
}
