import * as z from 'zod';
import type { AccountStore } from './account-store.js';

/**
 * The part of Mosquitto's dynamic-security control topic the fleet uses
 * once a fleet is running: `setClientPassword`, which `tsunagu-fleet send
 * rotate-credentials` sends from its own process, and `deleteClient`, which
 * `tsunagu-fleet revoke` sends (of a device account only). Answering them
 * here lets those commands work unchanged against both brokers. Everything else the
 * plugin offers is refused: the embedded broker's accounts come from
 * `tsunagu-fleet serve` itself, not from the wire.
 */
export const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
export const CONTROL_RESPONSE_TOPIC = `${CONTROL_TOPIC}/response`;

const ControlRequestSchema = z.object({
  commands: z.array(z.object({
    command: z.string().max(64),
    username: z.string().max(128).optional(),
    password: z.string().max(256).optional(),
    correlationData: z.string().max(128).optional(),
  }).passthrough()).max(100),
});

interface ControlResponse {
  command: string;
  error?: string;
  correlationData?: string;
}

/**
 * Run a control request from the fleet account; the answer goes to
 * CONTROL_RESPONSE_TOPIC. `onDeleted` runs after an account is removed and
 * before the answer is sent: the broker closes that account's connections
 * there, so the answer means the client is gone, as with Mosquitto.
 */
export async function answerControlRequest(payload: Buffer, store: AccountStore, onDeleted: (username: string) => Promise<void>): Promise<{ responses: ControlResponse[] } | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const request = ControlRequestSchema.safeParse(parsed);
  if (!request.success) return undefined;
  const responses: ControlResponse[] = [];
  for (const c of request.data.commands) {
    const base = { command: c.command, ...(c.correlationData === undefined ? {} : { correlationData: c.correlationData }) };
    if (c.command === 'deleteClient') {
      responses.push(await deleteDeviceClient(c.username, store, onDeleted, base));
    } else if (c.command !== 'setClientPassword') {
      responses.push({ ...base, error: 'not supported by the embedded broker' });
    } else if (c.username === undefined || c.password === undefined || c.password === '') {
      responses.push({ ...base, error: 'Invalid/missing username or password' });
    } else if (!(await store.setPassword(c.username, c.password))) {
      responses.push({ ...base, error: 'Client not found' });
    } else {
      responses.push(base);
    }
  }
  return { responses };
}

/** Only device accounts can be deleted from the wire: the fleet's and the bootstrap account come from the fleet config. */
async function deleteDeviceClient(username: string | undefined, store: AccountStore, onDeleted: (username: string) => Promise<void>, base: ControlResponse): Promise<ControlResponse> {
  if (username === undefined) return { ...base, error: 'Invalid/missing username' };
  const account = store.get(username);
  if (account === undefined) return { ...base, error: 'Client not found' };
  if (account.role !== 'device') return { ...base, error: 'only device accounts can be deleted' };
  store.remove(username);
  await onDeleted(username);
  return base;
}
