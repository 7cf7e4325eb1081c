import * as z from 'zod/mini';
import type { JsonLimits } from './json.js';

/** Message types on the device's inbound topics (inside the signed payload's `typ`). */
export const COMMAND_TYPE = 'cmd';
export const DESIRED_TYPE = 'desired';
/** The device's signed answer to a command. */
export const REPLY_TYPE = 'reply';

export const COMMAND_LIMITS: JsonLimits = { maxBytes: 64 * 1024, maxDepth: 16 };
/** Desired-state documents are larger: a few dozen services with their settings. */
export const DESIRED_LIMITS: JsonLimits = { maxBytes: 256 * 1024, maxDepth: 32 };

const serviceName = z.string().check(z.regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/));

/**
 * Every command and its arguments. Adding one here without a handler in the
 * agent's table does not compile.
 */
export const CommandSchema = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('ping'), args: z._default(z.strictObject({}), {}) }),
  z.strictObject({ name: z.literal('report-now'), args: z._default(z.strictObject({}), {}) }),
  z.strictObject({ name: z.literal('restart'), args: z.strictObject({ service: serviceName }) }),
  z.strictObject({ name: z.literal('stop'), args: z.strictObject({ service: serviceName }) }),
  z.strictObject({ name: z.literal('start'), args: z.strictObject({ service: serviceName }) }),
  z.strictObject({
    name: z.literal('logs'),
    args: z.strictObject({ service: serviceName, lines: z._default(z.int().check(z.minimum(1), z.maximum(1000)), 100) }),
  }),
  z.strictObject({
    name: z.literal('rotate-credentials'),
    /** The new broker password, sealed to the device's box key (base64). */
    args: z.strictObject({ sealed: z.string().check(z.maxLength(4096)) }),
  }),
  z.strictObject({ name: z.literal('reread-desired'), args: z._default(z.strictObject({}), {}) }),
  /**
   * Leave service for good: the device answers, then removes the containers
   * it manages, wipes its identity and secrets, and stops. Sent by
   * `tsunagu-fleet retire`, which revokes the device once it has answered.
   */
  z.strictObject({ name: z.literal('retire'), args: z._default(z.strictObject({}), {}) }),
]);
export type Command = z.infer<typeof CommandSchema>;
export type CommandName = Command['name'];

const COMMAND_NAMES: ReadonlySet<string> = new Set(CommandSchema.def.options.flatMap((o) => o.shape.name.def.values));

/** True for a name the schema knows: a command refused with another name is an unknown command, not a malformed one. */
export function isCommandName(name: string): name is CommandName {
  return COMMAND_NAMES.has(name);
}

/** Upper bound on a `logs` result, whatever the line count asked. */
export const MAX_LOG_BYTES = 32 * 1024;

/**
 * A signed reply as the fleet reads it. The largest reply is a `logs` result
 * (MAX_LOG_BYTES of text, escaped in JSON) inside the envelope; there is room
 * to spare for the other results.
 */
export const REPLY_LIMITS: JsonLimits = { maxBytes: 256 * 1024, maxDepth: 16 };
/** Longest `message` of a failed command's reply: the device cuts its error message to this. */
export const MAX_REPLY_MESSAGE_CHARS = 2048;

/** `data` of a reply. `re` is the id of the command it answers. */
export const ReplyDataSchema = z.discriminatedUnion('ok', [
  z.strictObject({ re: z.string().check(z.regex(/^[0-9a-f]{32}$/)), ok: z.literal(true), result: z.optional(z.unknown()) }),
  z.strictObject({ re: z.string().check(z.regex(/^[0-9a-f]{32}$/)), ok: z.literal(false), code: z.string().check(z.regex(/^[A-Z_]{1,40}$/)), message: z.string().check(z.maxLength(MAX_REPLY_MESSAGE_CHARS)) }),
]);
export type ReplyData = z.infer<typeof ReplyDataSchema>;
