import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { TsunaguError } from '../protocol/errors.js';
import { checkSchema } from '../protocol/json.js';
import { parseBytes } from './supervisor/compose-values.js';
import { readFileIfExists } from './state/atomic-file.js';

/** Docker's size notation (`10m`, `512k`), as the json-file and local log drivers take it. */
const logSize = z.string().refine((v) => parseBytes(v).ok, 'must be a size like 10m or 512k');

const DISK_DEFAULTS = {
  reserveBytes: 512 * 1024 * 1024,
  unpackFactor: 2.5,
  gc: { highWatermarkPercent: 85, lowWatermarkPercent: 70 },
  containerLogs: { maxSize: '10m', maxFiles: 3 },
};

/**
 * Disk and flash rules (docs/lifecycle.md). Everything is measured on the
 * filesystem that holds the engine's data root, where images, container
 * layers and json-file logs live.
 */
const DiskConfigSchema = z.object({
  /** The filesystem to measure; default: the engine's data root as `docker info` reports it. */
  path: z.string().startsWith('/').optional(),
  /** Kept free beyond every pull: admission and pulls count only what lies above it. */
  reserveBytes: z.number().int().nonnegative().default(DISK_DEFAULTS.reserveBytes),
  /**
   * Bytes on disk per compressed byte downloaded: a pull estimate is the
   * registry's (compressed) layer sizes times this. Layers unpack to about
   * twice their gzip size, and the download sits beside the unpacked layer
   * until it is registered.
   */
  unpackFactor: z.number().min(1).max(20).default(DISK_DEFAULTS.unpackFactor),
  gc: z.object({
    /** Image garbage collection starts when the disk is fuller than this… */
    highWatermarkPercent: z.number().gt(0).max(100).default(DISK_DEFAULTS.gc.highWatermarkPercent),
    /** …and removes unused images, least recently used first, until it is at most this full. */
    lowWatermarkPercent: z.number().min(0).lt(100).default(DISK_DEFAULTS.gc.lowWatermarkPercent),
  }).strict().refine((g) => g.lowWatermarkPercent < g.highWatermarkPercent, 'lowWatermarkPercent must be below highWatermarkPercent')
    .default(DISK_DEFAULTS.gc),
  /**
   * Caps of the container logs the engine keeps on this disk (json-file and
   * local drivers): the default of every service, and the most a desired
   * state may ask for.
   */
  containerLogs: z.object({
    maxSize: logSize.default(DISK_DEFAULTS.containerLogs.maxSize),
    maxFiles: z.number().int().min(1).max(100).default(DISK_DEFAULTS.containerLogs.maxFiles),
  }).strict().default(DISK_DEFAULTS.containerLogs),
}).strict();

export type DiskConfig = z.infer<typeof DiskConfigSchema>;

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
  disk: DiskConfigSchema.default(DISK_DEFAULTS),
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
