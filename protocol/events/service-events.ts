import * as z from 'zod/mini';
import { eventSchema } from './event-frame.js';

/**
 * The container supervisor's lifecycle events, as they travel: named
 * `service-…` on the wire (docs/protocol.md §9.6), without the prefix inside
 * the agent (protocol/events/service-prefix.ts maps one to the other).
 */

const service = z.string().check(z.minLength(1), z.maxLength(128));
const image = z.string().check(z.minLength(1), z.maxLength(512));
const containerId = z.string().check(z.minLength(1));
const text = z.string();
/** Wall-clock ms on the device; not always a whole number (a back-off policy may halve). */
const instant = z.number().check(z.nonnegative());
const bytes = z.number().check(z.nonnegative());
const count = z.int().check(z.nonnegative());
/** null when the engine did not say. */
const exitCode = z.nullable(z.number());

/** Bytes of an image pull so far; at most once a second per image. */
export const ServicePullProgressSchema = eventSchema('service-pull-progress', { service, image, currentBytes: bytes, totalBytes: bytes });
export const ServicePulledSchema = eventSchema('service-pulled', { service, image });
/** `code`: PULL_FAILED, DIGEST_MISMATCH, NO_SPACE, … (docs/errors.md); retried at `retryAt`. */
export const ServicePullFailedSchema = eventSchema('service-pull-failed', { service, image, code: text, error: text, retryAt: instant });
/** The disk cannot hold the new image beside the old one: this update runs kill-then-download. */
export const ServiceUpdateSwitchedSchema = eventSchema('service-update-switched', {
  service, image, strategy: z.literal('kill-then-download'), reason: text,
});
export const ServiceStartedSchema = eventSchema('service-started', { service, containerId });
export const ServiceExitedSchema = eventSchema('service-exited', { service, containerId, exitCode });
export const ServiceHealthySchema = eventSchema('service-healthy', { service, containerId });
export const ServiceUnhealthySchema = eventSchema('service-unhealthy', { service, containerId });
/** Crash-loop back-off: the next start waits until `retryAt`. */
export const ServiceBackoffSchema = eventSchema('service-backoff', { service, restartCount: count, exitCode, retryAt: instant });
/** Pressure takes the service down; `reason`: the reading and the threshold. */
export const ServiceEvictedSchema = eventSchema('service-evicted', { service, reason: text });
export const ServiceRestoredSchema = eventSchema('service-restored', { service });
export const ServiceStepFailedSchema = eventSchema('service-step-failed', { service, step: text, error: text, retryAt: instant });
/** A container whose start failed on stale runtime state was removed (`reason`: the engine's message); a new one is created from the desired spec. */
export const ServiceRecreatedSchema = eventSchema('service-recreated', { service, containerId, reason: text });
/** A new configuration exited or turned unhealthy within its probation; `rolledBackTo`: the version returned to, null for a service new in `version`. */
export const ServiceProbationFailedSchema = eventSchema('service-probation-failed', {
  service, reason: text, version: z.nullable(text), rolledBackTo: z.nullable(text),
});

/** Every service event, in the order docs/protocol.md lists them. */
export const SERVICE_EVENT_SCHEMAS = [
  ServicePullProgressSchema, ServicePulledSchema, ServicePullFailedSchema, ServiceUpdateSwitchedSchema,
  ServiceStartedSchema, ServiceExitedSchema, ServiceHealthySchema, ServiceUnhealthySchema, ServiceBackoffSchema,
  ServiceEvictedSchema, ServiceRestoredSchema, ServiceStepFailedSchema, ServiceRecreatedSchema, ServiceProbationFailedSchema,
] as const;
