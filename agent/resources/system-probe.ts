import { existsSync } from 'node:fs';
import { readFile, readdir, statfs } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import si from 'systeminformation';
import { TsunaguError } from '../../protocol/errors.js';
import type { ResourceProbe, RawSample, StaticFacts } from './probe.js';
import { parseLoadAvg, parseMilliCelsius, parseMounts, parseNetDev, parseProcStat, selectLocalFilesystems } from './proc.js';

/** Values firmware vendors leave in DMI fields when they have nothing to say. */
const PLACEHOLDER = /^(-|none|default string|to be filled by o\.e\.m\.|not specified|system serial number|0+|unknown)$/i;

function fact(value: string | undefined): string | undefined {
  const v = value?.replace(/\0/g, '').trim();
  return v === undefined || v === '' || PLACEHOLDER.test(v) ? undefined : v;
}

export interface SystemProbeOptions {
  /** Roots of the kernel interfaces; tests of the adapter leave them alone. */
  proc?: string;
  sys?: string;
  dev?: string;
}

/**
 * The real probe. Static facts go through systeminformation (its calls spawn
 * dmidecode, lsblk, lspci and friends: fine once at start, far too costly per
 * report). No call receives an argument, so nothing a neighbour controls
 * (interface names, SSIDs) can reach a shell through it.
 *
 * The periodic sample spawns nothing. Per call on our machines: si.fsSize
 * runs `df` (8 ms in process plus the child), si.networkStats runs `cat` on
 * sysfs per interface and wants interface names as arguments, and
 * si.cpuTemperature runs a shell pipeline (12 ms). Each is replaced by a
 * direct read of the file they end up reading (/proc/mounts + statfs,
 * /proc/net/dev, /sys/class/thermal), a few lines each. si.currentLoad keeps
 * its previous sample in module state (two callers skew each other's deltas),
 * so CPU ticks come from /proc/stat and the delta is computed purely in
 * `computeMetrics`. si.mem only reads /proc/meminfo, so it stays.
 */
export class SystemProbe implements ResourceProbe {
  private readonly proc: string;
  private readonly sys: string;
  private readonly dev: string;

  constructor(options: SystemProbeOptions = {}) {
    this.proc = options.proc ?? '/proc';
    this.sys = options.sys ?? '/sys';
    this.dev = options.dev ?? '/dev';
  }

  async readStatic(): Promise<StaticFacts> {
    try {
      // One after another: on a single-core board a burst of parallel
      // children would stall the services the device exists to run.
      const system = await si.system();
      const osInfo = await si.osInfo();
      const cpu = await si.cpu();
      const mem = await si.mem();
      const blocks = await si.blockDevices();
      const graphics = await si.graphics();
      const hardware: StaticFacts['hardware'] = {};
      const manufacturer = fact(system.manufacturer);
      const model = fact(system.model) ?? (await this.deviceTreeModel());
      const serial = fact(system.serial);
      if (manufacturer) hardware.manufacturer = manufacturer;
      if (model) hardware.model = model;
      if (serial) hardware.serial = serial;
      return {
        hardware,
        os: { platform: osInfo.platform, distro: osInfo.distro, release: osInfo.release, kernel: osInfo.kernel },
        machine: os.machine(),
        processArch: process.arch,
        cpu: {
          model: [cpu.manufacturer, cpu.brand].filter((s) => s !== '').join(' ') || 'unknown',
          cores: cpu.cores || os.availableParallelism(),
          physicalCores: cpu.physicalCores || cpu.cores || 1,
        },
        memoryTotalBytes: mem.total,
        disks: blocks
          // zram is compressed RAM and mtdblock raw NOR flash, neither storage to schedule on.
          .filter((b) => b.type === 'disk' && !/^(zram|ram|loop|mtdblock)/.test(b.name))
          .map((b) => (fact(b.model) ? { name: b.name, sizeBytes: b.size, removable: b.removable, model: fact(b.model) } : { name: b.name, sizeBytes: b.size, removable: b.removable })),
        filesystems: (await this.localFilesystems()).map((f) => ({ mount: f.mount, device: f.device, type: f.type, sizeBytes: f.sizeBytes })),
        interfaces: await this.interfaces(),
        graphics: graphics.controllers.map((c) =>
          c.vram ? { vendor: c.vendor || 'unknown', model: c.model || 'unknown', memoryBytes: c.vram * 1024 * 1024 } : { vendor: c.vendor || 'unknown', model: c.model || 'unknown' },
        ),
        devEntries: await this.listDevEntries(),
      };
    } catch (err) {
      throw new TsunaguError('PROBE_FAILED', `static facts: ${(err as Error).message}`, undefined, { cause: err });
    }
  }

  async sample(): Promise<RawSample> {
    const at = Date.now();
    const monotonicMs = performance.now();
    try {
      const [stat, loadavg, netdev, mem, filesystems, temperatureC] = await Promise.all([
        readFile(join(this.proc, 'stat'), 'utf8'),
        readFile(join(this.proc, 'loadavg'), 'utf8'),
        readFile(join(this.proc, 'net/dev'), 'utf8'),
        si.mem(),
        this.localFilesystems(),
        this.temperature(),
      ]);
      const cpuTicks = parseProcStat(stat);
      if (cpuTicks === undefined) throw new Error(`${this.proc}/stat has no aggregate cpu line`);
      const sample: RawSample = {
        at,
        monotonicMs,
        uptimeSec: os.uptime(),
        cpuTicks,
        loadAvg: parseLoadAvg(loadavg),
        memory: { totalBytes: mem.total, availableBytes: mem.available },
        filesystems: filesystems.map((f) => ({ mount: f.mount, sizeBytes: f.sizeBytes, availableBytes: f.availableBytes, freeBytes: f.freeBytes })),
        network: parseNetDev(netdev),
      };
      if (temperatureC !== undefined) sample.temperatureC = temperatureC;
      return sample;
    } catch (err) {
      throw new TsunaguError('PROBE_FAILED', `metrics sample: ${(err as Error).message}`, undefined, { cause: err });
    }
  }

  async listDevEntries(): Promise<string[]> {
    return (await readdir(this.dev)).sort();
  }

  private async localFilesystems(): Promise<{ mount: string; device: string; type: string; sizeBytes: number; availableBytes: number; freeBytes: number }[]> {
    const mounts = selectLocalFilesystems(parseMounts(await readFile(join(this.proc, 'mounts'), 'utf8')));
    const out = [];
    for (const m of mounts) {
      try {
        const s = await statfs(m.mount);
        out.push({ ...m, sizeBytes: s.blocks * s.bsize, availableBytes: s.bavail * s.bsize, freeBytes: s.bfree * s.bsize });
      } catch {
        // Unmounted between the two reads, or not ours to see: skip it.
      }
    }
    return out;
  }

  /** The hottest zone: on a Pi zone 0 is the SoC; on PCs several zones exist and the hottest throttles first. */
  private async temperature(): Promise<number | undefined> {
    const base = join(this.sys, 'class/thermal');
    let zones: string[];
    try {
      zones = (await readdir(base)).filter((z) => z.startsWith('thermal_zone'));
    } catch {
      return undefined;
    }
    let max: number | undefined;
    for (const z of zones) {
      try {
        const c = parseMilliCelsius(await readFile(join(base, z, 'temp'), 'utf8'));
        if (c !== undefined && (max === undefined || c > max)) max = c;
      } catch {
        // Some zones refuse reads (EINVAL/ENODATA) while their sensor sleeps.
      }
    }
    return max;
  }

  /**
   * Interfaces from /sys/class/net (every interface, with or without an
   * address: an unplugged Wi-Fi card still has the MAC enrollment may key
   * on) joined with os.networkInterfaces() for addresses. si.networkInterfaces
   * costs ~75 ms, spawns several tools and reports one address per family.
   */
  private async interfaces(): Promise<StaticFacts['interfaces']> {
    const base = join(this.sys, 'class/net');
    const addresses = os.networkInterfaces();
    const names = await readdir(base).catch(() => Object.keys(addresses));
    const out: StaticFacts['interfaces'] = [];
    for (const name of names.sort()) {
      const mac = fact(await readFile(join(base, name, 'address'), 'utf8').catch(() => undefined));
      const type = (await readFile(join(base, name, 'type'), 'utf8').catch(() => '')).trim();
      const info = addresses[name] ?? [];
      const entry: StaticFacts['interfaces'][number] = {
        name,
        addresses: info.map((a) => a.address),
        // ARPHRD_LOOPBACK is 772.
        internal: type === '772' || info.some((a) => a.internal),
        physical: existsSync(join(base, name, 'device')),
      };
      if (mac) entry.mac = mac;
      out.push(entry);
    }
    return out;
  }

  /** ARM boards have no DMI; the device tree names them ("Raspberry Pi 4 Model B Rev 1.4"). */
  private async deviceTreeModel(): Promise<string | undefined> {
    return fact(await readFile(join(this.proc, 'device-tree/model'), 'utf8').catch(() => undefined));
  }
}
