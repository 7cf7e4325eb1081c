/*
 * Pure parsers for the few kernel files the metrics path reads directly.
 * They take text and return data so that they are tested without a kernel;
 * the adapter does the reading. Malformed lines are skipped, never thrown
 * on: a report with one interface missing beats no report.
 */

/** Aggregate CPU ticks from the first line of /proc/stat. */
export function parseProcStat(text: string): { busy: number; total: number } | undefined {
  const line = text.split('\n', 1)[0] ?? '';
  if (!line.startsWith('cpu ')) return undefined;
  // user nice system idle iowait irq softirq steal [guest guest_nice]: guest
  // time is already counted in user/nice, so only the first eight add up.
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 4 || f.some((n) => !Number.isFinite(n))) return undefined;
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** Total and available memory from /proc/meminfo (values there are in KiB). */
export function parseMeminfo(text: string): { totalBytes: number; availableBytes: number } | undefined {
  const kib = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = kib('MemTotal');
  if (total === undefined) return undefined;
  // MemAvailable exists since Linux 3.14; before it, free + page cache is the usual estimate.
  const available = kib('MemAvailable') ?? (kib('MemFree') ?? 0) + (kib('Buffers') ?? 0) + (kib('Cached') ?? 0);
  return { totalBytes: total, availableBytes: Math.min(available, total) };
}

export function parseLoadAvg(text: string): [number, number, number] {
  const [a, b, c] = text.trim().split(/\s+/).map(Number);
  const ok = (n: number | undefined): number => (n !== undefined && Number.isFinite(n) && n >= 0 ? n : 0);
  return [ok(a), ok(b), ok(c)];
}

/** Cumulative rx/tx byte counters from /proc/net/dev, loopback excluded. */
export function parseNetDev(text: string): { name: string; rxBytes: number; txBytes: number }[] {
  const out: { name: string; rxBytes: number; txBytes: number }[] = [];
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    const rx = f[0];
    const tx = f[8];
    if (name === '' || name === 'lo' || rx === undefined || tx === undefined || !Number.isFinite(rx) || !Number.isFinite(tx)) continue;
    out.push({ name, rxBytes: rx, txBytes: tx });
  }
  return out;
}

export interface MountEntry {
  device: string;
  mount: string;
  type: string;
}

/** /proc/mounts escapes space, tab, newline and backslash as 3-digit octal. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const [device, mount, type] = line.split(' ');
    if (device === undefined || mount === undefined || type === undefined) continue;
    out.push({ device: unescapeMountField(device), mount: unescapeMountField(mount), type });
  }
  return out;
}

/** Filesystem types that hold data on a local block device. */
const LOCAL_TYPES = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'f2fs', 'vfat', 'exfat', 'ntfs', 'ntfs3', 'jfs', 'zfs']);

/**
 * The filesystems worth reporting: local, block-backed, one entry per device
 * (the first mount wins; later ones are bind mounts of the same data). Network
 * filesystems are left out on purpose: statfs on a hung NFS server blocks.
 * Loop devices are snaps and images, not storage the operator manages.
 */
export function selectLocalFilesystems(mounts: MountEntry[]): MountEntry[] {
  const seen = new Set<string>();
  const out: MountEntry[] = [];
  for (const m of mounts) {
    if (!LOCAL_TYPES.has(m.type) || !m.device.startsWith('/dev/') || m.device.startsWith('/dev/loop')) continue;
    if (seen.has(m.device)) continue;
    seen.add(m.device);
    out.push(m);
  }
  return out;
}

/** A /sys/class/thermal zone reading is in millidegrees Celsius. */
export function parseMilliCelsius(text: string): number | undefined {
  const n = Number(text.trim());
  // Some drivers report -273150 or 0 for "no sensor"; neither is a real CPU temperature.
  if (!Number.isFinite(n) || n <= 0 || n > 250_000) return undefined;
  return n / 1000;
}
