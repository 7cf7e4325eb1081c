import * as z from 'zod';
import { ReportedStateSchema, type ReportedState } from '../../protocol/desired.js';
import { readDeviceEvent, type ReceivedDeviceEvent } from '../../protocol/events/device-events.js';
import type { DeviceResult } from '../deploy/deploy-device.js';

/**
 * What the CLI and a running `serve` say to each other over the fleet
 * directory's unix socket: one JSON object per line. The socket is the
 * fleet owner's alone (mode 0600 inside the 0700 fleet directory), so a
 * request carries a compose document with its secrets still in plain, as
 * the CLI's own memory would; `serve` seals them to the device as the CLI
 * would have.
 */
export const SERVE_CHANNEL_VERSION = 1;

const JsonObject = z.record(z.string(), z.unknown());

export const ServeRequestSchema = z.discriminatedUnion('verb', [
  z.object({
    v: z.literal(SERVE_CHANNEL_VERSION),
    verb: z.literal('deploy'),
    deviceId: z.string().min(1).max(128),
    compose: JsonObject,
    secrets: z.record(z.string(), z.record(z.string(), z.string())),
    registries: JsonObject,
    wait: z.boolean(),
    timeoutMs: z.number().int().positive(),
  }).strict(),
  z.object({ v: z.literal(SERVE_CHANNEL_VERSION), verb: z.literal('deployments-changed') }).strict(),
]);
export type ServeRequest = z.infer<typeof ServeRequestSchema>;

/** Lines from `serve`, in order: progress of the deploy, then exactly one `result`, `done` or `error`. */
export type ServeReply =
  | { kind: 'published'; deviceId: string; version: number }
  | { kind: 'event'; deviceId: string; event: unknown }
  | { kind: 'state'; deviceId: string; state: ReportedState }
  | ({ kind: 'result' } & DeviceResult)
  | { kind: 'done' }
  | { kind: 'error'; code: string; message: string };

/** A device event as relayed: read again here, as if it came from the broker. */
export function relayedEvent(value: unknown): ReceivedDeviceEvent | undefined {
  return readDeviceEvent(value);
}

/** A reported state as relayed, checked against the same schema the broker path uses. */
export function relayedState(value: unknown): ReportedState | undefined {
  const r = ReportedStateSchema.safeParse(value);
  return r.success ? r.data : undefined;
}
