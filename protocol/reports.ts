import * as z from 'zod';

/*
 * Wire format of the two periodic reports a device sends: the inventory
 * (static facts, sent on enrollment, on change and on request) and the
 * metrics (sent periodically and early on a significant change). The agent
 * builds them and the fleet side validates them with these same schemas.
 *
 * Every string that a device owner or a neighbour can influence (hostnames,
 * interface names, model strings) is length-bounded so that one report cannot
 * bloat the fleet's storage. Byte counts are plain numbers: 2^53 bytes is far
 * beyond any disk an edge device will carry.
 */

const text = (max: number) => z.string().max(max);
const bytes = z.number().int().nonnegative();
const fraction = z.number().min(0).max(1);
/** Epoch milliseconds as the device's clock sees it (may be 1970 without an RTC). */
const timestamp = z.number().int().nonnegative();

/** Go/OCI platform names: `amd64`, `arm64`, `arm/v7`, `arm/v6`, `386`, `riscv64`, … or `unknown`. */
export const ArchSchema = z.string().regex(/^[a-z0-9]+(\/v[0-9]+)?$/).max(16);

/** Label keys and values follow the same shape as the fleet's label selectors; values may hold `/` for `arch=arm/v7`. */
export const LabelsSchema = z
  .record(z.string().regex(/^[a-z0-9][a-z0-9._/-]{0,62}$/), z.string().regex(/^[A-Za-z0-9._/-]{0,63}$/))
  .refine((labels) => Object.keys(labels).length <= 64, 'at most 64 labels');

export const AttachedDeviceSchema = z.object({
  /** Absolute path under /dev. */
  path: z.string().regex(/^\/dev\/[A-Za-z0-9._/-]{1,64}$/),
  kind: z.enum(['serial', 'video', 'gpio']),
});

export const AcceleratorSchema = z.object({
  kind: z.enum(['gpu', 'npu', 'tpu']),
  vendor: text(64),
  model: text(128),
  /** Dedicated memory when known. */
  memoryBytes: bytes.optional(),
});

export const InventoryReportSchema = z.object({
  v: z.literal(1),
  at: timestamp,
  hardware: z.object({
    manufacturer: text(128).optional(),
    model: text(128).optional(),
    serial: text(128).optional(),
  }),
  os: z.object({
    platform: text(32),
    distro: text(128),
    release: text(64),
    kernel: text(128),
  }),
  arch: ArchSchema,
  cpu: z.object({
    model: text(128),
    cores: z.number().int().positive(),
    physicalCores: z.number().int().positive(),
  }),
  memory: z.object({ totalBytes: bytes }),
  disks: z
    .array(z.object({ name: text(64), sizeBytes: bytes, removable: z.boolean(), model: text(128).optional() }))
    .max(64),
  filesystems: z.array(z.object({ mount: text(256), device: text(256), type: text(32), sizeBytes: bytes })).max(64),
  network: z
    .array(
      z.object({
        name: text(64),
        mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/).optional(),
        /** Backed by a hardware device (not a bridge, tunnel or dummy). */
        physical: z.boolean(),
        addresses: z.array(text(64)).max(32),
      }),
    )
    .max(64),
  accelerators: z.array(AcceleratorSchema).max(32),
  devices: z.array(AttachedDeviceSchema).max(256),
  /** e.g. "docker 27.3.1", supplied by the container adapter when it is reachable. */
  containerRuntime: text(64).optional(),
  labels: LabelsSchema,
});
export type InventoryReport = z.infer<typeof InventoryReportSchema>;

export const FilesystemUsageSchema = z.object({
  mount: text(256),
  sizeBytes: bytes,
  usedBytes: bytes,
  availableBytes: bytes,
});

export const InterfaceThroughputSchema = z.object({
  name: text(64),
  rxBytesPerSec: z.number().nonnegative(),
  txBytesPerSec: z.number().nonnegative(),
});

export const ServiceUsageSchema = z.object({
  name: text(128),
  /** Fraction of ONE core (can exceed 1 on multi-core devices). */
  cpu: z.number().nonnegative(),
  memoryBytes: bytes,
});

export const MetricsReportSchema = z.object({
  v: z.literal(1),
  at: timestamp,
  uptimeSec: z.number().nonnegative(),
  cpu: z.object({
    /** Busy fraction of all cores since the previous sample (since boot for the first one). */
    load: fraction,
    loadAvg: z.tuple([z.number().nonnegative(), z.number().nonnegative(), z.number().nonnegative()]),
  }),
  memory: z.object({ totalBytes: bytes, usedBytes: bytes, availableBytes: bytes }),
  filesystems: z.array(FilesystemUsageSchema).max(64),
  /** Hottest thermal zone; absent on machines without one (VMs, some boards). */
  temperatureC: z.number().min(-100).max(250).optional(),
  network: z.array(InterfaceThroughputSchema).max(64),
  services: z.array(ServiceUsageSchema).max(256).optional(),
});
export type MetricsReport = z.infer<typeof MetricsReportSchema>;
export type FilesystemUsage = z.infer<typeof FilesystemUsageSchema>;
export type InterfaceThroughput = z.infer<typeof InterfaceThroughputSchema>;
export type ServiceUsage = z.infer<typeof ServiceUsageSchema>;
export type AttachedDevice = z.infer<typeof AttachedDeviceSchema>;
export type Accelerator = z.infer<typeof AcceleratorSchema>;
export type Labels = z.infer<typeof LabelsSchema>;
