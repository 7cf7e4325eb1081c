/**
 * The one edge between the agent and the machine it describes. Everything
 * above it (inventory building, labels, metrics arithmetic, change detection)
 * is pure and tested with plain data; the real adapter is `SystemProbe`.
 *
 * The interface takes no arguments on purpose: nothing the fleet or a
 * neighbour controls can reach systeminformation, which has had
 * command-injection CVEs through exactly such strings.
 */
export interface ResourceProbe {
  /**
   * Static facts. Expensive (the real adapter spawns several processes and
   * takes hundreds of milliseconds): call once, cache, re-read on demand only.
   */
  readStatic(): Promise<StaticFacts>;
  /** Cheap counters for one metrics report; no child processes. */
  sample(): Promise<RawSample>;
  /** Entry names directly under /dev: a directory listing, cheap enough to poll for hot-plug. */
  listDevEntries(): Promise<string[]>;
}

export interface StaticFacts {
  hardware: { manufacturer?: string; model?: string; serial?: string };
  os: { platform: string; distro: string; release: string; kernel: string };
  /** `uname -m` as the kernel reports it (x86_64, aarch64, armv7l, …). */
  machine: string;
  /** Node's `process.arch`: tells a 32-bit userland on a 64-bit kernel apart. */
  processArch: string;
  cpu: { model: string; cores: number; physicalCores: number };
  memoryTotalBytes: number;
  disks: { name: string; sizeBytes: number; removable: boolean; model?: string }[];
  filesystems: { mount: string; device: string; type: string; sizeBytes: number }[];
  /** All interfaces including loopback; the inventory filters. */
  interfaces: { name: string; mac?: string; addresses: string[]; internal: boolean; physical: boolean }[];
  /** Graphics controllers as the system reports them. */
  graphics: { vendor: string; model: string; memoryBytes?: number }[];
  /** Entry names directly under /dev (not paths), for device discovery. */
  devEntries: string[];
}

/** Raw counters; rates and fractions are computed from two of these by `computeMetrics`. */
export interface RawSample {
  /** Wall clock, epoch ms. */
  at: number;
  /** Monotonic ms, for rates that must survive a clock step (NTP after a 1970 boot). */
  monotonicMs: number;
  uptimeSec: number;
  /** Aggregate CPU time from /proc/stat, in clock ticks. */
  cpuTicks: { busy: number; total: number };
  loadAvg: [number, number, number];
  memory: { totalBytes: number; availableBytes: number };
  filesystems: { mount: string; sizeBytes: number; availableBytes: number; freeBytes: number }[];
  temperatureC?: number;
  /** Cumulative byte counters per interface (loopback excluded). */
  network: { name: string; rxBytes: number; txBytes: number }[];
}
