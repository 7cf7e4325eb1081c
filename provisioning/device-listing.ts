import * as z from 'zod';
import { fromBase64 } from '../protocol/bytes.js';
import { keyId } from '../protocol/keys.js';
import type { DeviceRecord } from './fleet-database.js';

const time = z.number().int().nonnegative();
const base64Key = z.string().regex(/^[A-Za-z0-9+/]{43}=$/);

/**
 * One device as `tsunagu-fleet devices --json` prints it: the fleet database's
 * record, and with `--keys` the device's public keys, which a third party
 * needs to verify the device's replies (signing key, by key id) and to seal
 * secrets to it (box key). The format is documented in docs/provisioning.md
 * and published as docs/schemas/devices-listing.json.
 */
export const DeviceListingEntrySchema = z.object({
  deviceId: z.string(),
  serial: z.string(),
  model: z.string(),
  arch: z.string(),
  macs: z.array(z.string()),
  hostname: z.string(),
  /** `active`, `pending`, `revoked`; a reader accepts values it does not know. */
  status: z.string(),
  approved: z.boolean(),
  /** On a pending re-key request: the id of the active device it would replace. */
  replaces: z.string().nullable(),
  /** An approved re-key request admitted as a device of its own (`approve --as-new`). */
  asNew: z.boolean(),
  enrolledAt: time.nullable(),
  updatedAt: time,
  lastSeen: time.nullable(),
  online: z.boolean(),
  labels: z.record(z.string(), z.string()),
  /** With --keys: the device's Ed25519 public key (base64, 32 bytes). */
  signPublicKey: base64Key.optional(),
  /** With --keys: the key id of signPublicKey (protocol.md §3), the `kid` of the device's replies. */
  keyId: z.string().regex(/^[0-9a-f]{16}$/).optional(),
  /** With --keys: the device's X25519 public key (base64, 32 bytes), to seal to. */
  boxPublicKey: base64Key.optional(),
}).strict();
export type DeviceListingEntry = z.infer<typeof DeviceListingEntrySchema>;

export const DeviceListingSchema = z.array(DeviceListingEntrySchema);

/** The listing of `devices --json`; the public keys only when asked for. */
export function deviceListing(records: readonly DeviceRecord[], withKeys: boolean): DeviceListingEntry[] {
  return records.map(({ signPublicKey, boxPublicKey, ...record }) => (withKeys
    ? { ...record, signPublicKey, keyId: keyId(fromBase64(signPublicKey, 'signPublicKey', 32)), boxPublicKey }
    : record));
}
