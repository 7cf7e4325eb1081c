/**
 * Parsers for the scalar notations of the Compose Specification: durations,
 * byte sizes, port and volume short syntax, device mappings. Each returns a
 * value or a reason string; the schema turns reasons into errors that name
 * the field.
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(reason: string): Parsed<T> => ({ ok: false, reason });

const DURATION_UNITS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, ns: 0.000001 };

/** Compose durations use Go's notation: `1m30s`, `500ms`, `10s`. A bare number is seconds. */
export function parseDuration(input: string | number): Parsed<number> {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? ok(Math.round(input * 1000)) : bad('must be a non-negative duration');
  const text = input.trim();
  if (!/^(\d+(\.\d+)?(h|ms|m|s|us|ns))+$/.test(text)) return bad(`"${input}" is not a duration like 10s or 1m30s`);
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/g)) total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? 0);
  return ok(Math.round(total));
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** `64m`, `1g`, `512kb`, or a number of bytes. */
export function parseBytes(input: string | number): Parsed<number> {
  if (typeof input === 'number') return Number.isInteger(input) && input > 0 ? ok(input) : bad('must be a positive whole number of bytes');
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(input.trim());
  const unit = BYTE_UNITS[(m?.[2] ?? 'x').toLowerCase()];
  if (!m || unit === undefined) return bad(`"${input}" is not a size like 64m or 1g`);
  const bytes = Math.floor(Number(m[1]) * unit);
  return bytes > 0 ? ok(bytes) : bad('must be positive');
}

export interface PortMapping {
  containerPort: number;
  protocol: 'tcp' | 'udp';
  /** Absent: the engine picks a free host port. */
  hostPort?: number;
  hostIp?: string;
}

function port(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * Short syntax `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`. Ranges are
 * refused: they multiply into many mappings and no device needs them.
 */
export function parsePortShort(input: string | number): Parsed<PortMapping> {
  const text = String(input);
  const [main = '', proto = 'tcp', extra] = text.split('/');
  if (extra !== undefined || (proto !== 'tcp' && proto !== 'udp')) return bad(`"${text}": protocol must be tcp or udp`);
  if (main.includes('-')) return bad(`"${text}": port ranges are not supported`);
  // An IPv6 host address is bracketed: [::1]:8080:80.
  const v6 = /^\[([0-9a-f:.]+)\]:(.*)$/i.exec(main);
  const parts = v6 ? [v6[1] ?? '', ...(v6[2] ?? '').split(':')] : main.split(':');
  if (parts.length > 3) return bad(`"${text}" is not HOST_IP:HOST_PORT:CONTAINER_PORT`);
  const containerPort = port(parts[parts.length - 1] ?? '');
  if (containerPort === undefined) return bad(`"${text}": container port must be 1-65535`);
  const mapping: PortMapping = { containerPort, protocol: proto };
  if (parts.length >= 2) {
    const hostText = parts[parts.length - 2] ?? '';
    if (hostText !== '') {
      const hostPort = port(hostText);
      if (hostPort === undefined) return bad(`"${text}": host port must be 1-65535`);
      mapping.hostPort = hostPort;
    }
  }
  if (parts.length === 3) mapping.hostIp = parts[0];
  return ok(mapping);
}

export interface VolumeMount {
  type: 'volume' | 'bind';
  /** Volume name, or absolute host path for a bind mount. */
  source: string;
  target: string;
  readOnly: boolean;
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Short syntax `SOURCE:TARGET[:ro|rw]`. A source starting with `/` is a bind
 * mount; anything else a named volume. Relative host paths (`./data`) are
 * refused: a device has no project directory to resolve them against.
 * Anonymous volumes (a bare target) are refused: they leak on every recreate.
 */
export function parseVolumeShort(input: string): Parsed<VolumeMount> {
  const parts = input.split(':');
  if (parts.length < 2 || parts.length > 3) return bad(`"${input}" is not SOURCE:TARGET[:ro]; anonymous volumes are not supported`);
  const [source = '', target = '', mode = 'rw'] = parts;
  if (mode !== 'ro' && mode !== 'rw') return bad(`"${input}": mode must be ro or rw`);
  return volumeMount(source.startsWith('/') ? 'bind' : 'volume', source, target, mode === 'ro', input);
}

export function volumeMount(type: 'volume' | 'bind', source: string, target: string, readOnly: boolean, what: string): Parsed<VolumeMount> {
  if (!target.startsWith('/')) return bad(`"${what}": target must be an absolute path`);
  if (type === 'bind' && !source.startsWith('/')) return bad(`"${what}": bind source must be an absolute host path`);
  if (type === 'volume' && !VOLUME_NAME.test(source)) return bad(`"${what}": "${source}" is not a volume name (relative paths are not supported)`);
  return ok({ type, source, target, readOnly });
}

export interface DeviceMapping {
  host: string;
  container: string;
  permissions: string;
}

/** `/dev/ttyUSB0[:/dev/ttyUSB0[:rwm]]`. */
export function parseDevice(input: string): Parsed<DeviceMapping> {
  const [host = '', container = host, permissions = 'rwm', extra] = input.split(':');
  if (extra !== undefined || !host.startsWith('/dev/') || !container.startsWith('/')) return bad(`"${input}" is not /dev/HOST[:/CONTAINER[:rwm]]`);
  if (!/^[rwm]{1,3}$/.test(permissions)) return bad(`"${input}": permissions must be made of r, w, m`);
  return ok({ host, container, permissions });
}

/**
 * A Linux capability as Compose and Docker accept it: `NET_ADMIN`,
 * `CAP_NET_ADMIN`, `net_admin`, or `ALL`. Normalised to the upper-case name
 * without the prefix, so that a policy and a document compare one spelling.
 */
const SIGNAL_NAMES = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'KILL', 'PIPE', 'PROF', 'PWR', 'QUIT', 'SEGV', 'STKFLT',
  'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
]);

/**
 * `stop_signal`: a Linux signal by name, with or without `SIG`, in any case
 * (`SIGQUIT`, `quit`), a real-time one (`SIGRTMIN+3`), or a number 1–64.
 * Normalised to `SIGNAME` or the number: the engine would refuse anything
 * else at create, after the old container is already gone.
 */
export function parseStopSignal(input: string | number): Parsed<string> {
  const text = String(input).trim().toUpperCase();
  if (/^\d+$/.test(text)) return Number(text) >= 1 && Number(text) <= 64 ? ok(String(Number(text))) : bad(`"${input}" is not a signal number (1-64)`);
  const name = text.startsWith('SIG') ? text.slice(3) : text;
  const rt = /^RT(MIN|MAX)([+-]\d+)?$/.exec(name);
  if (rt !== null && (rt[2] === undefined || (rt[1] === 'MIN' ? rt[2].startsWith('+') : rt[2].startsWith('-')))) return ok(`SIG${name}`);
  return SIGNAL_NAMES.has(name) ? ok(`SIG${name}`) : bad(`"${input}" is not a signal name like SIGTERM or SIGQUIT`);
}

export function parseCapability(input: string): Parsed<string> {
  const name = input.trim().toUpperCase().replace(/^CAP_/, '');
  return /^[A-Z][A-Z0-9_]{0,39}$/.test(name) ? ok(name) : bad(`"${input}" is not a capability name like NET_ADMIN`);
}

/** `["a", "b"]` stays; a string is split like a shell would for simple words. */
export function parseCommand(input: string | string[]): Parsed<string[]> {
  if (Array.isArray(input)) return ok(input);
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (const m of input.matchAll(re)) words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3] ?? ''));
  return words.length > 0 ? ok(words) : bad('must not be empty');
}
