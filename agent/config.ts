import * as z from 'zod/mini';
import { parse as parseYaml } from 'yaml';
import { TsunaguError } from '../protocol/errors.js';
import { checkSchema } from '../protocol/json.js';
import { isWithin, pathPatternProblem } from './admission/path-pattern.js';
import { readFileIfExists } from '../common/atomic-file.js';
import { parseBytes, parseCapability } from '../protocol/compose/compose-values.js';
import { DEFAULT_PULL_STALL_MS } from './pulls/pull-stall-deadline.js';

/** A size as in Compose files (`256m`, `1g`) or a number of bytes. */
const byteSize = z.pipe(z.union([z.number(), z.string()]), z.transform((v: number | string, ctx) => {
  const p = parseBytes(v);
  if (p.ok) return p.value;
  ctx.issues.push({ code: 'custom', message: p.reason, input: v });
  return z.NEVER;
}));

const MIB = 1024 * 1024;

const pathPattern = z.string().check(z.superRefine((pattern, ctx) => {
  const problem = pathPatternProblem(pattern);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: `"${pattern}" ${problem}` });
}));

const devicePattern = pathPattern.check(z.refine((pattern) => pattern !== '/dev' && isWithin(pattern, '/dev'), { message: 'must be a path under /dev/' }));

const capabilityName = z.pipe(z.string(), z.transform((name: string, ctx) => {
  const parsed = parseCapability(name);
  if (parsed.ok) return parsed.value;
  ctx.issues.push({ code: 'custom', message: parsed.reason, input: name });
  return z.NEVER;
}));

/** A bind rule: a bare pattern allows read-write binds; `{ path, readOnly: true }` allows only `:ro` ones. */
const bindRule = z.pipe(
  z.transform((rule: unknown) => (typeof rule === 'string' ? { path: rule } : rule)),
  z.strictObject({ path: pathPattern, readOnly: z._default(z.boolean(), false) }),
);

/** Docker's size notation (`10m`, `512k`), as the json-file and local log drivers take it. */
const logSize = z.string().check(z.refine((v) => parseBytes(v).ok, 'must be a size like 10m or 512k'));

const DISK_DEFAULTS = {
  reserveBytes: 512 * 1024 * 1024,
  unpackFactor: 2.5,
  gc: { highWatermarkPercent: 85, lowWatermarkPercent: 70 },
  containerLogs: { maxSize: '10m', maxFiles: 3 },
};

const positiveInt = z.int().check(z.positive());
const nonnegativeInt = z.int().check(z.nonnegative());

/**
 * Disk and flash rules (docs/lifecycle.md). Everything is measured on the
 * filesystem that holds the engine's data root, where images, container
 * layers and json-file logs live.
 */
const DiskConfigSchema = z.strictObject({
  /** The filesystem to measure; default: the engine's data root as `docker info` reports it. */
  path: z.optional(z.string().check(z.startsWith('/'))),
  /** Kept free beyond every pull: admission and pulls count only what lies above it. */
  reserveBytes: z._default(nonnegativeInt, DISK_DEFAULTS.reserveBytes),
  /**
   * Bytes on disk per compressed byte downloaded: a pull estimate is the
   * registry's (compressed) layer sizes times this. Layers unpack to about
   * twice their gzip size, and the download sits beside the unpacked layer
   * until it is registered.
   */
  unpackFactor: z._default(z.number().check(z.minimum(1), z.maximum(20)), DISK_DEFAULTS.unpackFactor),
  gc: z._default(z.strictObject({
    /** Image garbage collection starts when the disk is fuller than this… */
    highWatermarkPercent: z._default(z.number().check(z.gt(0), z.maximum(100)), DISK_DEFAULTS.gc.highWatermarkPercent),
    /** …and removes unused images, least recently used first, until it is at most this full. */
    lowWatermarkPercent: z._default(z.number().check(z.minimum(0), z.lt(100)), DISK_DEFAULTS.gc.lowWatermarkPercent),
  }).check(z.refine((g) => g.lowWatermarkPercent < g.highWatermarkPercent, 'lowWatermarkPercent must be below highWatermarkPercent')),
  DISK_DEFAULTS.gc),
  /**
   * Caps of the container logs the engine keeps on this disk (json-file and
   * local drivers): the default of every service, and the most a desired
   * state may ask for.
   */
  containerLogs: z._default(z.strictObject({
    maxSize: z._default(logSize, DISK_DEFAULTS.containerLogs.maxSize),
    maxFiles: z._default(z.int().check(z.minimum(1), z.maximum(100)), DISK_DEFAULTS.containerLogs.maxFiles),
  }), DISK_DEFAULTS.containerLogs),
});

export type DiskConfig = z.infer<typeof DiskConfigSchema>;

/**
 * The agent's own config file (YAML, default /etc/tsunagu/agent.yaml).
 * Set by the device owner, never by fleet messages: the fleet cannot widen
 * what a device allows.
 */
export const AgentConfigSchema = z.strictObject({
  stateDir: z._default(z.string(), '/var/lib/tsunagu'),
  /** Explicit bootstrap file; otherwise the boot partition and /etc/tsunagu are searched. */
  bootstrapFile: z.optional(z.string()),
  logLevel: z._default(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info'),
  enrollment: z._default(z.strictObject({
    /** Random wait before the first attempt: spreads a fleet that powers up together. */
    startupJitterMs: z._default(nonnegativeInt, 10_000),
    backoffBaseMs: z._default(positiveInt, 1_000),
    backoffCapMs: z._default(positiveInt, 300_000),
    /** Override the serial the device presents (for boards without one). */
    serial: z.optional(z.string()),
  }), { startupJitterMs: 10_000, backoffBaseMs: 1_000, backoffCapMs: 300_000 }),
  link: z._default(z.strictObject({
    keepaliveSeconds: z._default(z.int().check(z.minimum(5), z.maximum(3600)), 30),
    backoffBaseMs: z._default(positiveInt, 1_000),
    backoffCapMs: z._default(positiveInt, 60_000),
    // Reconnect windows are never narrower than this (still capped): see common/backoff.ts.
    reconnectSpreadMs: z._default(nonnegativeInt, 10_000),
  }), { keepaliveSeconds: 30, backoffBaseMs: 1_000, backoffCapMs: 60_000, reconnectSpreadMs: 10_000 }),
  clock: z._default(z.strictObject({
    /** auto: trust the clock once NTP has synchronised it (systemd-timesyncd); see docs/protocol.md. */
    trust: z._default(z.enum(['auto', 'always', 'never']), 'auto'),
  }), { trust: 'auto' }),
  reports: z._default(z.strictObject({
    /** A metrics report at least this often. */
    metricsIntervalMs: z._default(z.int().check(z.minimum(1_000)), 30_000),
    /** Sampling period for early reports on a significant change. */
    sampleIntervalMs: z._default(z.int().check(z.minimum(500)), 10_000),
  }), { metricsIntervalMs: 30_000, sampleIntervalMs: 10_000 }),
  runtime: z._default(z.strictObject({
    /** Unix socket of the container engine; default DOCKER_HOST when it names a unix socket, else /var/run/docker.sock. */
    socket: z.optional(z.string()),
    /** Ownership scope of the agent's containers (their `io.tsunagu.scope` label); one agent per engine needs no other. */
    scope: z._default(z.string().check(z.regex(/^[a-z0-9][a-z0-9-]{0,30}$/)), 'tsunagu'),
    /**
     * A pull that does not move forward for this long (no new byte, no layer
     * step) is stopped, reported PULL_FAILED and retried with the pull
     * back-off; 0: never. See agent/pulls/pull-stall-deadline.ts.
     */
    pullStallMs: z._default(z.int().check(z.refine((ms) => ms === 0 || ms >= 10_000, 'must be 0 (off) or at least 10000')), DEFAULT_PULL_STALL_MS),
  }), { scope: 'tsunagu', pullStallMs: DEFAULT_PULL_STALL_MS }),
  memory: z._default(z.strictObject({
    /**
     * Kept for the system and the agent: a desired state whose memory limits
     * add up to more than total memory minus this is refused.
     */
    reserve: z._default(byteSize, 128 * MIB),
    /** Given to a service that sets no memory limit; `null`: none (not advised). */
    defaultLimit: z._default(z.nullable(byteSize), 256 * MIB),
  }), { reserve: 128 * MIB, defaultLimit: 256 * MIB }),
  rollout: z._default(z.strictObject({
    /**
     * A service whose new configuration exits or turns unhealthy within this
     * time after it starts is rolled back to its previous one; 0 turns the
     * gate off. The version counts as applied only once it is over.
     */
    probationMs: z._default(z.int().check(z.minimum(0), z.maximum(3_600_000)), 30_000),
  }), { probationMs: 30_000 }),
  /**
   * The device's security policy (agent/admission/security-policy.ts): what a
   * desired state may ask of this device. Defaults allow nothing beyond an
   * ordinary container; see docs/lifecycle.md.
   */
  policy: z._default(z.strictObject({
    allowPrivileged: z._default(z.boolean(), false),
    allowHostNetwork: z._default(z.boolean(), false),
    allowHostPid: z._default(z.boolean(), false),
    /** Capabilities `cap_add` may name; `ALL` allows any. */
    capabilities: z._default(z.array(capabilityName), []),
    binds: z._default(z.array(bindRule), []),
    /** Host device patterns, e.g. /dev/ttyUSB*, /dev/video*, /dev/gpiochip*. */
    devices: z._default(z.array(devicePattern), []),
  }), { allowPrivileged: false, allowHostNetwork: false, allowHostPid: false, capabilities: [], binds: [], devices: [] }),
  /** systemd's service protocol and watchdog (agent/watchdog); see docs/lifecycle.md. */
  watchdog: z._default(z.strictObject({
    /** auto: notify systemd when it asks (NOTIFY_SOCKET, WATCHDOG_USEC in the environment); off: never. */
    mode: z._default(z.enum(['auto', 'off']), 'auto'),
    /** An event-loop stall longer than this ends the pings; default: half the watchdog timeout. */
    maxStallMs: z.optional(z.int().check(z.minimum(100))),
    /** A reconcile pass longer than this (an engine call that never returns) ends them too. */
    maxReconcileMs: z._default(z.int().check(z.minimum(10_000)), 600_000),
  }), { mode: 'auto', maxReconcileMs: 600_000 }),
  outbox: z._default(z.strictObject({
    /** On-disk bound for what waits while offline; oldest metrics go first. */
    maxBytes: z._default(z.int().check(z.minimum(8 * 1024)), 1024 * 1024),
  }), { maxBytes: 1024 * 1024 }),
  pressure: z._default(z.strictObject({
    /** Off: nothing is ever evicted. */
    enabled: z._default(z.boolean(), true),
    /** Memory pressure from MemAvailable; null turns the rule off. */
    memory: z._default(z.nullable(z.strictObject({
      evictBelowPercent: z._default(z.number().check(z.gt(0), z.lt(100)), 10),
      clearAbovePercent: z._default(z.number().check(z.gt(0), z.lt(100)), 20),
      evictBelowBytes: z.optional(positiveInt),
      clearAboveBytes: z.optional(positiveInt),
    }).check(
      z.refine((m) => m.clearAbovePercent > m.evictBelowPercent, { message: 'clearAbovePercent must be above evictBelowPercent (a band, so that a reading near one threshold cannot flap)' }),
      z.refine((m) => (m.evictBelowBytes === undefined) === (m.clearAboveBytes === undefined), { message: 'evictBelowBytes and clearAboveBytes go together' }),
      z.refine((m) => m.evictBelowBytes === undefined || m.clearAboveBytes === undefined || m.clearAboveBytes > m.evictBelowBytes, { message: 'clearAboveBytes must be above evictBelowBytes' }),
    )), { evictBelowPercent: 10, clearAbovePercent: 20 }),
    /** Thermal pressure from the hottest thermal zone; null turns the rule off. */
    temperature: z._default(z.nullable(z.strictObject({
      evictAtCelsius: z._default(z.number(), 80),
      clearAtCelsius: z._default(z.number(), 70),
    }).check(
      z.refine((t) => t.clearAtCelsius < t.evictAtCelsius, { message: 'clearAtCelsius must be below evictAtCelsius (a band, so that a reading near one threshold cannot flap)' }),
    )), { evictAtCelsius: 80, clearAtCelsius: 70 }),
    /** Normal-priority services are evicted when the pressure outlasts the best-effort evictions by this long. */
    escalateAfterMs: z._default(nonnegativeInt, 30_000),
    /** How long the pressure must stay clear before each tier comes back (normal first, then best-effort). */
    clearForMs: z._default(nonnegativeInt, 120_000),
  }), {
    enabled: true, memory: { evictBelowPercent: 10, clearAbovePercent: 20 }, temperature: { evictAtCelsius: 80, clearAtCelsius: 70 },
    escalateAfterMs: 30_000, clearForMs: 120_000,
  }),
  disk: z._default(DiskConfigSchema, DISK_DEFAULTS),
});

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
