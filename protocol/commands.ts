import * as z from 'zod';
import type { JsonLimits } from './json.js';

/** Message types on the device's inbound topics (inside the signed payload's `typ`). */
export const COMMAND_TYPE = 'cmd';
export const DESIRED_TYPE = 'desired';
/** The device's signed answer to a command. */
export const REPLY_TYPE = 'reply';

export const COMMAND_LIMITS: JsonLimits = { maxBytes: 64 * 1024, maxDepth: 16 };
/** Desired-state documents are larger: a few dozen services with their settings. */
export const DESIRED_LIMITS: JsonLimits = { maxBytes: 256 * 1024, maxDepth: 32 };

const serviceName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/);

/**
 * Every command and its arguments. Adding one here without a handler in the
 * agent's table does not compile.
 */
export const CommandSchema = z.discriminatedUnion('name', [
  z.object({ name: z.literal('ping'), args: z.object({}).strict().default({}) }).strict(),
  z.object({ name: z.literal('report-now'), args: z.object({}).strict().default({}) }).strict(),
  z.object({ name: z.literal('restart'), args: z.object({ service: serviceName }).strict() }).strict(),
  z.object({ name: z.literal('stop'), args: z.object({ service: serviceName }).strict() }).strict(),
  z.object({ name: z.literal('start'), args: z.object({ service: serviceName }).strict() }).strict(),
  z.object({
    name: z.literal('logs'),
    args: z.object({ service: serviceName, lines: z.number().int().min(1).max(1000).default(100) }).strict(),
  }).strict(),
  z.object({
    name: z.literal('rotate-credentials'),
    /** The new broker password, sealed to the device's box key (base64). */
    args: z.object({ sealed: z.string().max(4096) }).strict(),
  }).strict(),
  z.object({ name: z.literal('reread-desired'), args: z.object({}).strict().default({}) }).strict(),
]);
export type Command = z.infer<typeof CommandSchema>;
export type CommandName = Command['name'];

/** Upper bound on a `logs` result, whatever the line count asked. */
export const MAX_LOG_BYTES = 32 * 1024;

/** `data` of a reply. `re` is the id of the command it answers. */
export const ReplyDataSchema = z.discriminatedUnion('ok', [
  z.object({ re: z.string().regex(/^[0-9a-f]{32}$/), ok: z.literal(true), result: z.unknown().optional() }).strict(),
  z.object({ re: z.string().regex(/^[0-9a-f]{32}$/), ok: z.literal(false), code: z.string().regex(/^[A-Z_]{1,40}$/), message: z.string().max(2048) }).strict(),
]);
export type ReplyData = z.infer<typeof ReplyDataSchema>;
