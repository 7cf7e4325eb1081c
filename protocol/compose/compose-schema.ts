import { parse as parseYaml } from 'yaml';
import * as z from 'zod/mini';
import { TsunaguError } from '../errors.js';
import { ENGLISH_ISSUES } from '../json.js';
import {
  parseBytes, parseCapability, parseCommand, parseDevice, parseDuration, parsePortShort, parseStopSignal, parseVolumeShort, volumeMount,
  type Parsed, type PortMapping,
} from './compose-values.js';

import {
  CAPPED_LOG_DRIVERS, DEFAULT_LOGGING, DEFAULT_STOP_GRACE_MS, DEPENDS_ON_CONDITIONS, PRIORITIES, UPDATE_STRATEGIES,
  type DesiredService, type DesiredState, type Healthcheck, type LogCaps, type Priority, type RestartPolicy, type UpdateStrategy,
} from './desired-service.js';
import { RESERVED_LABEL_PREFIX } from './reserved-labels.js';

export type { DeviceMapping, PortMapping, VolumeMount } from './compose-values.js';

/**
 * The desired-state document: a subset of the Compose Specification plus
 * tsunagu's own settings under `x-tsunagu`. Every object is strict: a field
 * this agent does not implement is refused with its path rather than ignored,
 * because silently dropping, say, `user` or `security_opt` would run a
 * workload differently from what the operator reviewed.
 */

const stringOrList = z.union([z.string(), z.array(z.string())]);
const scalar = z.union([z.string(), z.number(), z.boolean()]);
const mapOrList = z.union([z.record(z.string(), z.nullable(scalar)), z.array(z.string())]);
const duration = z.union([z.string(), z.number()]);
const byteSize = z.union([z.string(), z.number()]);

const dependsOnCondition = z.enum(DEPENDS_ON_CONDITIONS);
const priority = z.enum(PRIORITIES);
const updateStrategy = z.enum(UPDATE_STRATEGIES);

const tsunaguServiceSchema = z.strictObject({
  requires: z.optional(z.array(z.string())),
  priority: z.optional(priority),
  update: z.optional(updateStrategy),
});

const serviceSchema = z.strictObject({
  image: z.string().check(z.minLength(1)),
  command: z.optional(stringOrList),
  entrypoint: z.optional(stringOrList),
  environment: z.optional(mapOrList),
  ports: z.optional(z.array(z.union([
    z.string(), z.number(),
    z.strictObject({
      target: z.int(), published: z.optional(z.union([z.string(), z.number()])),
      host_ip: z.optional(z.string()), protocol: z.optional(z.enum(['tcp', 'udp'])),
    }),
  ]))),
  volumes: z.optional(z.array(z.union([
    z.string(),
    z.strictObject({ type: z.enum(['volume', 'bind']), source: z.string(), target: z.string(), read_only: z.optional(z.boolean()) }),
  ]))),
  restart: z.optional(z.string()),
  healthcheck: z.optional(z.strictObject({
    test: z.optional(stringOrList), interval: z.optional(duration), timeout: z.optional(duration),
    retries: z.optional(z.int().check(z.minimum(0))), start_period: z.optional(duration), disable: z.optional(z.boolean()),
  })),
  depends_on: z.optional(z.union([z.array(z.string()), z.record(z.string(), z.strictObject({ condition: z.optional(dependsOnCondition) }))])),
  network_mode: z.optional(z.string()),
  pid: z.optional(z.string()),
  privileged: z.optional(z.boolean()),
  cap_add: z.optional(z.array(z.string())),
  cap_drop: z.optional(z.array(z.string())),
  devices: z.optional(z.array(z.string())),
  labels: z.optional(mapOrList),
  mem_limit: z.optional(byteSize),
  stop_grace_period: z.optional(duration),
  stop_signal: z.optional(z.union([z.string(), z.int()])),
  deploy: z.optional(z.strictObject({
    resources: z.optional(z.strictObject({
      limits: z.optional(z.strictObject({ cpus: z.optional(z.union([z.string(), z.number()])), memory: z.optional(byteSize), pids: z.optional(z.int().check(z.positive())) })),
    })),
  })),
  logging: z.optional(z.strictObject({ driver: z.optional(z.string()), options: z.optional(z.record(z.string(), z.union([z.string(), z.number()]))) })),
  'x-tsunagu': z.optional(tsunaguServiceSchema),
});

const documentSchema = z.strictObject({
  version: z.optional(z.string()), // obsolete in the Compose Specification; accepted and ignored
  name: z.optional(z.string().check(z.regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lowercase letters, digits, _ and -'))),
  services: z.record(z.string(), serviceSchema),
  volumes: z.optional(z.record(z.string(), z.nullable(z.strictObject({})))),
  'x-tsunagu': z.optional(z.strictObject({ priority: z.optional(priority), update: z.optional(updateStrategy) })),
});

/**
 * The document's structure as it travels in `data.compose` (x-* fields other
 * than x-tsunagu aside), before the checks and normalisation below: the source
 * of docs/schemas/desired-compose.json.
 */
export const ComposeDocumentSchema = documentSchema;
export const ComposeServiceSchema = serviceSchema;

type RawService = z.infer<typeof serviceSchema>;

export interface ParseOptions {
  /** Default DEFAULT_LOGGING's. */
  containerLogs?: LogCaps;
}

const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Largest compose document as YAML text (on the wire, the signed JSON is bounded by DESIRED_LIMITS). */
export const MAX_DOCUMENT_BYTES = 256 * 1024;
/** How the YAML is read: merge keys, alias expansion bounded, no duplicate keys. */
export const COMPOSE_YAML_OPTIONS = { merge: true, maxAliasCount: 100, uniqueKeys: true } as const;

function refuse(path: (string | number)[], message: string): never {
  throw new TsunaguError('SCHEMA', `${path.join('.')}: ${message}`, { field: path.join('.') });
}

function need<T>(parsed: Parsed<T>, path: (string | number)[]): T {
  if (!parsed.ok) refuse(path, parsed.reason);
  return parsed.value;
}

/** Compose allows `x-*` extension fields anywhere; this agent reads only `x-tsunagu` and drops the rest. */
function dropExtensions(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => !k.startsWith('x-') || k === 'x-tsunagu'));
}

function checkStructure(doc: unknown): z.infer<typeof documentSchema> {
  const top = dropExtensions(doc);
  if (typeof top === 'object' && top !== null && 'services' in top && typeof top.services === 'object' && top.services !== null && !Array.isArray(top.services)) {
    top.services = Object.fromEntries(Object.entries(top.services).map(([k, v]) => [k, dropExtensions(v)]));
  }
  const result = documentSchema.safeParse(top, ENGLISH_ISSUES);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue === undefined) refuse(['(root)'], 'invalid');
  if (issue.code === 'unrecognized_keys') {
    const path = [...issue.path.map(String), issue.keys[0] ?? '?'];
    throw new TsunaguError('UNSUPPORTED', `${path.join('.')}: not supported`, { field: path.join('.') });
  }
  refuse(issue.path.length > 0 ? issue.path.map(String) : ['(root)'], issue.message);
}

function stringMap(input: Record<string, string | number | boolean | null> | string[] | undefined, path: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(input)) {
    input.forEach((entry, i) => {
      const eq = entry.indexOf('=');
      if (eq <= 0) refuse([...path, i], `"${entry}" is not KEY=VALUE (values taken from the agent's own environment are not supported)`);
      out[entry.slice(0, eq)] = entry.slice(eq + 1);
    });
  } else if (input !== undefined) {
    for (const [k, v] of Object.entries(input)) {
      if (v === null) refuse([...path, k], `${what} without a value is not supported (the agent's own environment is not passed through)`);
      out[k] = String(v);
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function restartPolicy(input: string | undefined, path: string[]): RestartPolicy {
  if (input === undefined || input === 'no') return { name: 'no' };
  if (input === 'always' || input === 'unless-stopped') return { name: input };
  const m = /^on-failure(?::(\d+))?$/.exec(input);
  if (m) return m[1] === undefined ? { name: 'on-failure' } : { name: 'on-failure', maxRetries: Number(m[1]) };
  refuse(path, `"${input}" is not one of no, always, on-failure[:N], unless-stopped`);
}

function healthcheck(input: RawService['healthcheck'], path: string[]): Healthcheck | null {
  if (input === undefined) return null;
  const ms = (v: string | number | undefined, key: string): number | null => (v === undefined ? null : need(parseDuration(v), [...path, key]));
  if (input.disable === true) return { test: ['NONE'], intervalMs: null, timeoutMs: null, retries: null, startPeriodMs: null };
  let test: string[] | null = null;
  if (typeof input.test === 'string') test = ['CMD-SHELL', input.test];
  else if (input.test !== undefined) {
    if (!['CMD', 'CMD-SHELL', 'NONE'].includes(input.test[0] ?? '')) refuse([...path, 'test'], 'must start with CMD, CMD-SHELL or NONE');
    test = input.test;
  }
  return {
    test,
    intervalMs: ms(input.interval, 'interval'),
    timeoutMs: ms(input.timeout, 'timeout'),
    retries: input.retries ?? null,
    startPeriodMs: ms(input.start_period, 'start_period'),
  };
}

function capabilities(input: string[] | undefined, path: string[]): string[] {
  const names = (input ?? []).map((c, i) => need(parseCapability(c), [...path, i]));
  return [...new Set(names)].sort();
}

function limits(raw: RawService, path: string[]): DesiredService['limits'] {
  const l = raw.deploy?.resources?.limits;
  const memA = raw.mem_limit === undefined ? null : need(parseBytes(raw.mem_limit), [...path, 'mem_limit']);
  const memB = l?.memory === undefined ? null : need(parseBytes(l.memory), [...path, 'deploy', 'resources', 'limits', 'memory']);
  if (memA !== null && memB !== null && memA !== memB) refuse([...path, 'mem_limit'], 'conflicts with deploy.resources.limits.memory');
  let nanoCpus: number | null = null;
  if (l?.cpus !== undefined) {
    const cpus = Number(l.cpus);
    if (!Number.isFinite(cpus) || cpus <= 0) refuse([...path, 'deploy', 'resources', 'limits', 'cpus'], 'must be a positive number');
    nanoCpus = Math.round(cpus * 1e9);
  }
  return { memoryBytes: memA ?? memB, nanoCpus, pids: l?.pids ?? null };
}

/**
 * The service's logging with the device's caps filled in where it sets none:
 * a json-file log without `max-size` would otherwise grow without bound.
 */
function logging(raw: RawService['logging'], caps: LogCaps, path: string[]): DesiredService['logging'] {
  const driver = raw?.driver ?? DEFAULT_LOGGING.driver;
  const options = stringMap(raw?.options, [...path, 'logging', 'options'], 'an option');
  if (CAPPED_LOG_DRIVERS.has(driver)) {
    options['max-size'] ??= caps.maxSize;
    options['max-file'] ??= String(caps.maxFiles);
  }
  return { driver, options: Object.fromEntries(Object.entries(options).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
}

function normaliseService(name: string, raw: RawService, declaredVolumes: Set<string>, defaults: { priority?: Priority; update?: UpdateStrategy }, caps: LogCaps): DesiredService {
  const path = ['services', name];
  if (!SERVICE_NAME.test(name)) refuse(path, 'service names are letters, digits, _ . - and start with a letter or digit');
  const networkMode = raw.network_mode ?? 'bridge';
  if (networkMode !== 'bridge' && networkMode !== 'host' && networkMode !== 'none') refuse([...path, 'network_mode'], `"${networkMode}" is not supported (bridge, host, none)`);
  // Compose also knows `service:NAME` and `container:ID`; they tie a service to another one's lifetime.
  if (raw.pid !== undefined && raw.pid !== 'host') refuse([...path, 'pid'], `"${raw.pid}" is not supported (host)`);
  const labels = stringMap(raw.labels, [...path, 'labels'], 'a label');
  for (const key of Object.keys(labels)) if (key.startsWith(RESERVED_LABEL_PREFIX)) refuse([...path, 'labels', key], `the prefix ${RESERVED_LABEL_PREFIX} is reserved for the agent`);
  const volumes = (raw.volumes ?? []).map((v, i) => {
    const vpath = [...path, 'volumes', i];
    const mount = typeof v === 'string'
      ? need(parseVolumeShort(v), vpath)
      : need(volumeMount(v.type, v.source, v.target, v.read_only ?? false, v.source), vpath);
    if (mount.type === 'volume' && !declaredVolumes.has(mount.source)) refuse(vpath, `volume "${mount.source}" is not declared under top-level volumes`);
    return mount;
  });
  const ports = (raw.ports ?? []).map((p, i): PortMapping => {
    if (typeof p !== 'object') return need(parsePortShort(p), [...path, 'ports', i]);
    const mapping: PortMapping = { containerPort: p.target, protocol: p.protocol ?? 'tcp' };
    if (p.published !== undefined) mapping.hostPort = need(parsePortShort(String(p.published)), [...path, 'ports', i, 'published']).containerPort;
    if (p.host_ip !== undefined) mapping.hostIp = p.host_ip;
    return mapping;
  });
  const dependsOn = Array.isArray(raw.depends_on)
    ? raw.depends_on.map((service) => ({ service, condition: 'service_started' as const }))
    : Object.entries(raw.depends_on ?? {}).map(([service, d]) => ({ service, condition: d.condition ?? 'service_started' }));
  return {
    name,
    image: raw.image,
    command: raw.command === undefined ? null : need(parseCommand(raw.command), [...path, 'command']),
    entrypoint: raw.entrypoint === undefined ? null : need(parseCommand(raw.entrypoint), [...path, 'entrypoint']),
    environment: stringMap(raw.environment, [...path, 'environment'], 'a variable'),
    ports,
    volumes,
    restart: restartPolicy(raw.restart, [...path, 'restart']),
    healthcheck: healthcheck(raw.healthcheck, [...path, 'healthcheck']),
    dependsOn: dependsOn.sort((a, b) => (a.service < b.service ? -1 : 1)),
    networkMode,
    pid: raw.pid === 'host' ? 'host' : null,
    privileged: raw.privileged ?? false,
    capAdd: capabilities(raw.cap_add, [...path, 'cap_add']),
    capDrop: capabilities(raw.cap_drop, [...path, 'cap_drop']),
    devices: (raw.devices ?? []).map((d, i) => need(parseDevice(d), [...path, 'devices', i])),
    labels,
    limits: limits(raw, path),
    logging: logging(raw.logging, caps, path),
    stopGraceMs: raw.stop_grace_period === undefined ? DEFAULT_STOP_GRACE_MS : need(parseDuration(raw.stop_grace_period), [...path, 'stop_grace_period']),
    stopSignal: raw.stop_signal === undefined ? null : need(parseStopSignal(raw.stop_signal), [...path, 'stop_signal']),
    tsunagu: {
      requires: [...(raw['x-tsunagu']?.requires ?? [])].sort(),
      priority: raw['x-tsunagu']?.priority ?? defaults.priority ?? 'normal',
      update: raw['x-tsunagu']?.update ?? defaults.update ?? 'download-then-kill',
    },
  };
}

/** Order services so that each follows its dependencies; refuse unknown dependencies and cycles. */
function dependencyOrder(services: Map<string, DesiredService>): DesiredService[] {
  const ordered: DesiredService[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: DesiredService, chain: string[]): void => {
    if (state.get(s.name) === 'done') return;
    if (state.get(s.name) === 'visiting') refuse(['services', s.name, 'depends_on'], `dependency cycle: ${[...chain, s.name].join(' -> ')}`);
    state.set(s.name, 'visiting');
    for (const d of s.dependsOn) {
      const dep = services.get(d.service);
      if (dep === undefined) refuse(['services', s.name, 'depends_on', d.service], 'no such service');
      visit(dep, [...chain, s.name]);
    }
    state.set(s.name, 'done');
    ordered.push(s);
  };
  for (const name of [...services.keys()].sort()) visit(services.get(name) as DesiredService, []);
  return ordered;
}

/** Validate and normalise a desired-state document given as a JS value (parsed JSON or YAML). */
export function parseDesiredState(doc: unknown, options: ParseOptions = {}): DesiredState {
  const caps = options.containerLogs ?? { maxSize: DEFAULT_LOGGING.options['max-size'], maxFiles: Number(DEFAULT_LOGGING.options['max-file']) };
  const raw = checkStructure(doc);
  const declared = new Set(Object.keys(raw.volumes ?? {}));
  for (const v of declared) if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(v)) refuse(['volumes', v], 'not a valid volume name');
  const defaults = raw['x-tsunagu'] ?? {};
  const services = new Map(Object.entries(raw.services).map(([name, s]) => [name, normaliseService(name, s, declared, defaults, caps)]));
  return { project: raw.name ?? 'tsunagu', services: dependencyOrder(services), volumes: [...declared].sort() };
}

/** Parse YAML text (anchors and merge keys allowed, alias expansion bounded) and normalise it. */
export function parseDesiredStateYaml(text: string, options: ParseOptions = {}): DesiredState {
  if (Buffer.byteLength(text) > MAX_DOCUMENT_BYTES) throw new TsunaguError('TOO_LARGE', `desired state exceeds ${MAX_DOCUMENT_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = parseYaml(text, COMPOSE_YAML_OPTIONS);
  } catch (err) {
    throw new TsunaguError('MALFORMED', `desired state is not valid YAML: ${(err as Error).message}`);
  }
  return parseDesiredState(doc, options);
}
