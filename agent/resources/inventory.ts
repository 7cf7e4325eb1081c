import type { InventoryReport } from '../../protocol/reports.js';
import { normalizeArch } from './arch.js';
import { classifyDevices, findAccelerators } from './devices.js';
import type { FactsStore } from './facts-cache.js';
import { deriveLabels } from './device-labels.js';
import type { ResourceProbe, StaticFacts } from './probe.js';

/** Facts that identify a device at enrollment, before it has any fleet identity. */
export interface HardwareFacts {
  serial?: string;
  model?: string;
  arch: string;
  /** Lower-case MACs of the non-virtual interfaces, sorted, duplicates removed. */
  macs: string[];
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

/**
 * Interfaces that come and go with containers (one veth per container,
 * engine bridges) would make the inventory "change" on every deployment.
 */
const EPHEMERAL_INTERFACE = /^(veth|docker[0-9]|br-[0-9a-f]{12}$|cni|flannel|cali)/;

function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max);
}

function cleanMac(mac: string | undefined): string | undefined {
  const m = mac?.trim().toLowerCase();
  return m !== undefined && MAC.test(m) && m !== '00:00:00:00:00:00' ? m : undefined;
}

/** Pure: the inventory report for these facts. Strings are clipped to the wire limits rather than refused. */
export function buildInventory(facts: StaticFacts, at: number, containerRuntime?: string): InventoryReport {
  const hw = facts.hardware;
  const base: Omit<InventoryReport, 'labels'> = {
    v: 1,
    at,
    hardware: {
      ...(hw.manufacturer ? { manufacturer: clip(hw.manufacturer, 128) } : {}),
      ...(hw.model ? { model: clip(hw.model, 128) } : {}),
      ...(hw.serial ? { serial: clip(hw.serial, 128) } : {}),
    },
    os: {
      platform: clip(facts.os.platform, 32),
      distro: clip(facts.os.distro, 128),
      release: clip(facts.os.release, 64),
      kernel: clip(facts.os.kernel, 128),
    },
    arch: normalizeArch(facts.machine, facts.processArch),
    cpu: {
      model: clip(facts.cpu.model, 128),
      cores: Math.max(1, facts.cpu.cores),
      physicalCores: Math.max(1, facts.cpu.physicalCores),
    },
    memory: { totalBytes: Math.floor(facts.memoryTotalBytes) },
    disks: facts.disks.slice(0, 64).map((d) => ({
      name: clip(d.name, 64),
      sizeBytes: d.sizeBytes,
      removable: d.removable,
      ...(d.model ? { model: clip(d.model, 128) } : {}),
    })),
    filesystems: facts.filesystems
      .slice(0, 64)
      .map((f) => ({ mount: clip(f.mount, 256), device: clip(f.device, 256), type: clip(f.type, 32), sizeBytes: f.sizeBytes })),
    network: facts.interfaces
      .filter((i) => !i.internal && i.name !== 'lo' && !EPHEMERAL_INTERFACE.test(i.name))
      .slice(0, 64)
      .map((i) => {
        const mac = cleanMac(i.mac);
        return { name: clip(i.name, 64), ...(mac ? { mac } : {}), physical: i.physical, addresses: i.addresses.slice(0, 32).map((a) => clip(a, 64)) };
      }),
    accelerators: findAccelerators(facts.graphics, facts.devEntries)
      .slice(0, 32)
      .map((a) => ({ ...a, vendor: clip(a.vendor, 64), model: clip(a.model, 128) })),
    devices: classifyDevices(facts.devEntries).slice(0, 256),
    ...(containerRuntime ? { containerRuntime: clip(containerRuntime, 64) } : {}),
  };
  return { ...base, labels: deriveLabels(base) };
}

/** Pure: what enrollment needs to know about the hardware. */
export function hardwareFacts(inventory: InventoryReport): HardwareFacts {
  // Virtual interfaces get random or derived MACs that can change on reboot.
  const macs = [...new Set(inventory.network.flatMap((n) => (n.physical && n.mac ? [n.mac] : [])))].sort();
  return {
    ...(inventory.hardware.serial ? { serial: inventory.hardware.serial } : {}),
    ...(inventory.hardware.model ? { model: inventory.hardware.model } : {}),
    arch: inventory.arch,
    macs,
  };
}

export interface InventoryServiceOptions {
  probe: ResourceProbe;
  /** The facts of the last read, kept across restarts (see FileFactsStore). */
  store?: FactsStore;
  /** Epoch ms; injectable for tests. */
  now?: () => number;
}

/**
 * Reads the static facts once and keeps them: the real probe spends hundreds
 * of milliseconds of CPU and several child processes on them, so they are
 * re-read only on demand (a "report now" command, a hot-plug event).
 */
export class InventoryService {
  private facts: StaticFacts | undefined;
  private reading: Promise<StaticFacts> | undefined;
  /** The facts are the kept copy of an earlier run, not read from this machine yet. */
  private kept: boolean;
  private readonly probe: ResourceProbe;
  private readonly store: FactsStore | undefined;
  private readonly now: () => number;

  constructor(options: InventoryServiceOptions) {
    this.probe = options.probe;
    this.store = options.store;
    this.now = options.now ?? Date.now;
    this.facts = this.store?.load();
    this.kept = this.facts !== undefined;
  }

  /**
   * When the facts came from the kept copy, read the machine again (once).
   * Says whether the inventory (its time aside) or the device's labels changed:
   * hardware added or removed while the agent was down, a new address.
   */
  async revalidate(): Promise<{ inventoryChanged: boolean; labelsChanged: boolean }> {
    const before = this.facts;
    if (!this.kept || before === undefined) return { inventoryChanged: false, labelsChanged: false };
    const after = await this.read();
    const a = buildInventory(before, 0);
    const b = buildInventory(after, 0);
    return {
      inventoryChanged: JSON.stringify(a) !== JSON.stringify(b),
      labelsChanged: JSON.stringify(a.labels) !== JSON.stringify(b.labels),
    };
  }

  /** The inventory from cached facts; reads them on first use only. */
  async report(containerRuntime?: string): Promise<InventoryReport> {
    const facts = this.facts ?? (await this.read());
    return buildInventory(facts, this.now(), containerRuntime);
  }

  /** Re-read the facts from the machine, then report. */
  async refresh(containerRuntime?: string): Promise<InventoryReport> {
    this.facts = undefined;
    const facts = await this.read();
    return buildInventory(facts, this.now(), containerRuntime);
  }

  /**
   * Hot-plug check: re-list /dev only (microseconds, where a full re-read
   * costs about a second of CPU on a Pi) and keep the new listing. True when
   * the attached devices or accelerators changed, i.e. a new inventory
   * should be sent.
   */
  async refreshDevices(): Promise<boolean> {
    const facts = this.facts ?? (await this.read());
    const entries = await this.probe.listDevEntries();
    const key = (names: readonly string[]): string =>
      JSON.stringify([classifyDevices(names), findAccelerators(facts.graphics, names)]);
    const changed = key(entries) !== key(facts.devEntries);
    this.facts = { ...facts, devEntries: entries };
    if (changed) this.store?.save(this.facts);
    return changed;
  }

  async hardwareFacts(): Promise<HardwareFacts> {
    return hardwareFacts(await this.report());
  }

  /** Concurrent callers share one read instead of spawning the probe twice. */
  private read(): Promise<StaticFacts> {
    this.reading ??= this.probe.readStatic().then(
      (facts) => {
        this.facts = facts;
        this.kept = false;
        this.reading = undefined;
        this.store?.save(facts);
        return facts;
      },
      (err: unknown) => {
        this.reading = undefined;
        throw err;
      },
    );
    return this.reading;
  }
}
