import * as z from 'zod';
import { parse as parseYaml } from 'yaml';
import { TsunaguError } from '../protocol/errors.js';
import { checkSchema } from '../protocol/json.js';
import { readFileIfExists } from './state/atomic-file.js';

/**
 * The agent's own config file (YAML, default /etc/tsunagu/agent.yaml).
 * Set by the device owner, never by fleet messages: the fleet cannot widen
 * what a device allows.
 */
export const AgentConfigSchema = z.object({
  stateDir: z.string().default('/var/lib/tsunagu'),
  /** Explicit bootstrap file; otherwise the boot partition and /etc/tsunagu are searched. */
  bootstrapFile: z.string().optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  enrollment: z.object({
    /** Random wait before the first attempt: spreads a fleet that powers up together. */
    startupJitterMs: z.number().int().nonnegative().default(10_000),
    backoffBaseMs: z.number().int().positive().default(1_000),
    backoffCapMs: z.number().int().positive().default(300_000),
    /** Override the serial the device presents (for boards without one). */
    serial: z.string().optional(),
  }).strict().default({ startupJitterMs: 10_000, backoffBaseMs: 1_000, backoffCapMs: 300_000 }),
  link: z.object({
    keepaliveSeconds: z.number().int().min(5).max(3600).default(30),
    backoffBaseMs: z.number().int().positive().default(1_000),
    backoffCapMs: z.number().int().positive().default(60_000),
  }).strict().default({ keepaliveSeconds: 30, backoffBaseMs: 1_000, backoffCapMs: 60_000 }),
  clock: z.object({
    /** auto: trust the clock once NTP has synchronised it (systemd-timesyncd); see docs/protocol.md. */
    trust: z.enum(['auto', 'always', 'never']).default('auto'),
  }).strict().default({ trust: 'auto' }),
  reports: z.object({
    /** A metrics report at least this often. */
    metricsIntervalMs: z.number().int().min(1_000).default(30_000),
    /** Sampling period for early reports on a significant change. */
    sampleIntervalMs: z.number().int().min(500).default(10_000),
  }).strict().default({ metricsIntervalMs: 30_000, sampleIntervalMs: 10_000 }),
  runtime: z.object({
    /** Unix socket of the container engine; default DOCKER_HOST when it names a unix socket, else /var/run/docker.sock. */
    socket: z.string().optional(),
    /** Ownership scope of the agent's containers (their `io.tsunagu.scope` label); one agent per engine needs no other. */
    scope: z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/).default('tsunagu'),
  }).strict().default({ scope: 'tsunagu' }),
  outbox: z.object({
    /** On-disk bound for what waits while offline; oldest metrics go first. */
    maxBytes: z.number().int().min(8 * 1024).default(1024 * 1024),
  }).strict().default({ maxBytes: 1024 * 1024 }),
}).strict();

export type AgentConfig = z.infer<typeof AgentConfigSchema>;

export const DEFAULT_CONFIG_PATH = '/etc/tsunagu/agent.yaml';

/** Load the config; a missing default file means defaults, a missing explicit file is an error. */
export function loadAgentConfig(path: string | undefined, overrides: Partial<AgentConfig>): AgentConfig {
  const file = path ?? DEFAULT_CONFIG_PATH;
  const bytes = readFileIfExists(file);
  if (bytes === undefined && path !== undefined) throw new TsunaguError('CONFIG', `config file ${path} not found`);
  let raw: unknown = {};
  if (bytes !== undefined) {
    try {
      raw = parseYaml(bytes.toString('utf8')) ?? {};
    } catch (err) {
      throw new TsunaguError('CONFIG', `${file}: ${(err as Error).message}`);
    }
  }
  const merged = { ...(raw as Record<string, unknown>), ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
  try {
    return checkSchema(AgentConfigSchema, merged, file);
  } catch (err) {
    throw new TsunaguError('CONFIG', (err as Error).message);
  }
}
