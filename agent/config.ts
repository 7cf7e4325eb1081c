import * as z from 'zod';
import { parse as parseYaml } from 'yaml';
import { TsunaguError } from '../protocol/errors.js';
import { checkSchema } from '../protocol/json.js';
import { isWithin, pathPatternProblem } from './admission/path-pattern.js';
import { readFileIfExists } from './state/atomic-file.js';
import { parseBytes, parseCapability } from './supervisor/compose-values.js';
import { DEFAULT_PULL_STALL_MS } from './supervisor/pull-stall-deadline.js';

/** A size as in Compose files (`256m`, `1g`) or a number of bytes. */
const byteSize = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const p = parseBytes(v);
  if (p.ok) return p.value;
  ctx.addIssue({ code: 'custom', message: p.reason });
  return z.NEVER;
});

const MIB = 1024 * 1024;

const pathPattern = z.string().superRefine((pattern, ctx) => {
  const problem = pathPatternProblem(pattern);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: `"${pattern}" ${problem}` });
});

const devicePattern = pathPattern.refine((pattern) => pattern !== '/dev' && isWithin(pattern, '/dev'), { message: 'must be a path under /dev/' });

const capabilityName = z.string().transform((name, ctx) => {
  const parsed = parseCapability(name);
  if (parsed.ok) return parsed.value;
  ctx.addIssue({ code: 'custom', message: parsed.reason });
  return z.NEVER;
});

/** A bind rule: a bare pattern allows read-write binds; `{ path, readOnly: true }` allows only `:ro` ones. */
const bindRule = z.preprocess(
  (rule) => (typeof rule === 'string' ? { path: rule } : rule),
  z.strictObject({ path: pathPattern, readOnly: z.boolean().default(false) }),
);

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
    // Reconnect windows are never narrower than this (still capped): see common/backoff.ts.
    reconnectSpreadMs: z.number().int().nonnegative().default(10_000),
  }).strict().default({ keepaliveSeconds: 30, backoffBaseMs: 1_000, backoffCapMs: 60_000, reconnectSpreadMs: 10_000 }),
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
    /**
     * A pull that does not move forward for this long (no new byte, no layer
     * step) is stopped, reported PULL_FAILED and retried with the pull
     * back-off; 0: never. See agent/supervisor/pull-stall-deadline.ts.
     */
    pullStallMs: z.number().int().refine((ms) => ms === 0 || ms >= 10_000, 'must be 0 (off) or at least 10000').default(DEFAULT_PULL_STALL_MS),
  }).strict().default({ scope: 'tsunagu', pullStallMs: DEFAULT_PULL_STALL_MS }),
  memory: z.object({
    /**
     * Kept for the system and the agent: a desired state whose memory limits
     * add up to more than total memory minus this is refused.
     */
    reserve: byteSize.default(128 * MIB),
    /** Given to a service that sets no memory limit; `null`: none (not advised). */
    defaultLimit: byteSize.nullable().default(256 * MIB),
  }).strict().default({ reserve: 128 * MIB, defaultLimit: 256 * MIB }),
  rollout: z.object({
    /**
     * A service whose new configuration exits or turns unhealthy within this
     * time after it starts is rolled back to its previous one; 0 turns the
     * gate off. The version counts as applied only once it is over.
     */
    probationMs: z.number().int().min(0).max(3_600_000).default(30_000),
  }).strict().default({ probationMs: 30_000 }),
  /**
   * The device's security policy (agent/admission/security-policy.ts): what a
   * desired state may ask of this device. Defaults allow nothing beyond an
   * ordinary container; see docs/lifecycle.md.
   */
  policy: z.object({
    allowPrivileged: z.boolean().default(false),
    allowHostNetwork: z.boolean().default(false),
    allowHostPid: z.boolean().default(false),
    /** Capabilities `cap_add` may name; `ALL` allows any. */
    capabilities: z.array(capabilityName).default([]),
    binds: z.array(bindRule).default([]),
    /** Host device patterns, e.g. /dev/ttyUSB*, /dev/video*, /dev/gpiochip*. */
    devices: z.array(devicePattern).default([]),
  }).strict().default({ allowPrivileged: false, allowHostNetwork: false, allowHostPid: false, capabilities: [], binds: [], devices: [] }),
  /** systemd's service protocol and watchdog (agent/watchdog); see docs/lifecycle.md. */
  watchdog: z.object({
    /** auto: notify systemd when it asks (NOTIFY_SOCKET, WATCHDOG_USEC in the environment); off: never. */
    mode: z.enum(['auto', 'off']).default('auto'),
    /** An event-loop stall longer than this ends the pings; default: half the watchdog timeout. */
    maxStallMs: z.number().int().min(100).optional(),
    /** A reconcile pass longer than this (an engine call that never returns) ends them too. */
    maxReconcileMs: z.number().int().min(10_000).default(600_000),
  }).strict().default({ mode: 'auto', maxReconcileMs: 600_000 }),
  outbox: z.object({
    /** On-disk bound for what waits while offline; oldest metrics go first. */
    maxBytes: z.number().int().min(8 * 1024).default(1024 * 1024),
  }).strict().default({ maxBytes: 1024 * 1024 }),
  pressure: z.object({
    /** Off: nothing is ever evicted. */
    enabled: z.boolean().default(true),
    /** Memory pressure from MemAvailable; null turns the rule off. */
    memory: z.object({
      evictBelowPercent: z.number().gt(0).lt(100).default(10),
      clearAbovePercent: z.number().gt(0).lt(100).default(20),
      evictBelowBytes: z.number().int().positive().optional(),
      clearAboveBytes: z.number().int().positive().optional(),
    }).strict()
      .refine((m) => m.clearAbovePercent > m.evictBelowPercent, { message: 'clearAbovePercent must be above evictBelowPercent (a band, so that a reading near one threshold cannot flap)' })
      .refine((m) => (m.evictBelowBytes === undefined) === (m.clearAboveBytes === undefined), { message: 'evictBelowBytes and clearAboveBytes go together' })
      .refine((m) => m.evictBelowBytes === undefined || m.clearAboveBytes === undefined || m.clearAboveBytes > m.evictBelowBytes, { message: 'clearAboveBytes must be above evictBelowBytes' })
      .nullable()
      .default({ evictBelowPercent: 10, clearAbovePercent: 20 }),
    /** Thermal pressure from the hottest thermal zone; null turns the rule off. */
    temperature: z.object({
      evictAtCelsius: z.number().default(80),
      clearAtCelsius: z.number().default(70),
    }).strict()
      .refine((t) => t.clearAtCelsius < t.evictAtCelsius, { message: 'clearAtCelsius must be below evictAtCelsius (a band, so that a reading near one threshold cannot flap)' })
      .nullable()
      .default({ evictAtCelsius: 80, clearAtCelsius: 70 }),
    /** Normal-priority services are evicted when the pressure outlasts the best-effort evictions by this long. */
    escalateAfterMs: z.number().int().nonnegative().default(30_000),
    /** How long the pressure must stay clear before each tier comes back (normal first, then best-effort). */
    clearForMs: z.number().int().nonnegative().default(120_000),
  }).strict().default({
    enabled: true, memory: { evictBelowPercent: 10, clearAbovePercent: 20 }, temperature: { evictAtCelsius: 80, clearAtCelsius: 70 },
    escalateAfterMs: 30_000, clearForMs: 120_000,
  }),
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
