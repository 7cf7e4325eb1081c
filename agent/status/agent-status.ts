import * as z from 'zod/mini';

/**
 * What the running agent shows a person at the device's console
 * (`tsunagu-agent status`): the agent writes it to `status.json` in its state
 * directory when it changes, the command reads it. A file rather than a
 * socket: nothing listens, nothing to secure beyond the state directory's
 * 0700, and the last status of an agent that died is still there to read.
 */
export const STATUS_ERRORS_KEPT = 10;

const ErrorEntrySchema = z.object({
  at: z.number(),
  level: z.enum(['warn', 'error']),
  /** A stable error code when the error had one (docs/errors.md). */
  code: z.optional(z.string()),
  message: z.string(),
});

export const AgentStatusSchema = z.strictObject({
  v: z.literal(1),
  agentVersion: z.string(),
  pid: z.int(),
  startedAt: z.number(),
  identity: z.nullable(z.object({ deviceId: z.string(), fleetId: z.string(), enrolledAt: z.number() })),
  link: z.object({ state: z.string(), since: z.number() }),
  workload: z.nullable(z.object({
    version: z.nullable(z.string()),
    status: z.string(),
    error: z.nullable(z.object({ code: z.string(), message: z.string() })),
  })),
  services: z.array(z.object({
    name: z.string(),
    image: z.string(),
    state: z.string(),
    health: z.string(),
    restartCount: z.number(),
    lastError: z.nullable(z.object({ code: z.string(), message: z.string() })),
  })),
  /** Newest last. */
  lastErrors: z.array(ErrorEntrySchema),
});

export type AgentStatus = z.infer<typeof AgentStatusSchema>;
export type StatusErrorEntry = z.infer<typeof ErrorEntrySchema>;

export function initialStatus(agentVersion: string, pid: number, now: number): AgentStatus {
  return { v: 1, agentVersion, pid, startedAt: now, identity: null, link: { state: 'offline', since: now }, workload: null, services: [], lastErrors: [] };
}

/** The last errors, newest last, at most STATUS_ERRORS_KEPT. */
export function withError(errors: readonly StatusErrorEntry[], entry: StatusErrorEntry): StatusErrorEntry[] {
  return [...errors, entry].slice(-STATUS_ERRORS_KEPT);
}
