import * as z from 'zod/mini';

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

const text = (max: number) => z.string().check(z.maxLength(max));
const bytes = z.int().check(z.nonnegative());
const fraction = z.number().check(z.minimum(0), z.maximum(1));
const rate = z.number().check(z.nonnegative());
/** Epoch milliseconds as the device's clock sees it (may be 1970 without an RTC). */
const timestamp = z.int().check(z.nonnegative());

/** Go/OCI platform names: `amd64`, `arm64`, `arm/v7`, `arm/v6`, `386`, `riscv64`, … or `unknown`. */
export const ArchSchema = z.string().check(z.regex(/^[a-z0-9]+(\/v[0-9]+)?$/), z.maxLength(16));

/** Label keys and values follow the same shape as the fleet's label selectors; values may hold `/` for `arch=arm/v7`. */
export const LabelsSchema = z
  .record(z.string().check(z.regex(/^[a-z0-9][a-z0-9._/-]{0,62}$/)), z.string().check(z.regex(/^[A-Za-z0-9._/-]{0,63}$/)))
  .check(z.refine((labels) => Object.keys(labels).length <= 64, 'at most 64 labels'));

export const AttachedDeviceSchema = z.object({
  /** Absolute path under /dev. */
  path: z.string().check(z.regex(/^\/dev\/[A-Za-z0-9._/-]{1,64}$/)),
  kind: z.enum(['serial', 'video', 'gpio']),
});

export const AcceleratorSchema = z.object({
  kind: z.enum(['gpu', 'npu', 'tpu']),
  vendor: text(64),
  model: text(128),
  /** Dedicated memory when known. */
  memoryBytes: z.optional(bytes),
});

export const InventoryReportSchema = z.object({
  v: z.literal(1),
  at: timestamp,
  hardware: z.object({
    manufacturer: z.optional(text(128)),
    model: z.optional(text(128)),
    serial: z.optional(text(128)),
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
    cores: z.int().check(z.positive()),
    physicalCores: z.int().check(z.positive()),
  }),
  memory: z.object({ totalBytes: bytes }),
  disks: z
    .array(z.object({ name: text(64), sizeBytes: bytes, removable: z.boolean(), model: z.optional(text(128)) }))
    .check(z.maxLength(64)),
  filesystems: z.array(z.object({ mount: text(256), device: text(256), type: text(32), sizeBytes: bytes })).check(z.maxLength(64)),
  network: z
    .array(
      z.object({
        name: text(64),
        mac: z.optional(z.string().check(z.regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/))),
        /** Backed by a hardware device (not a bridge, tunnel or dummy). */
        physical: z.boolean(),
        addresses: z.array(text(64)).check(z.maxLength(32)),
      }),
    )
    .check(z.maxLength(64)),
  accelerators: z.array(AcceleratorSchema).check(z.maxLength(32)),
  devices: z.array(AttachedDeviceSchema).check(z.maxLength(256)),
  /** e.g. "docker 27.3.1", supplied by the container adapter when it is reachable. */
  containerRuntime: z.optional(text(64)),
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
  rxBytesPerSec: rate,
  txBytesPerSec: rate,
});

export const ServiceUsageSchema = z.object({
  name: text(128),
  /** Fraction of ONE core (can exceed 1 on multi-core devices). */
  cpu: rate,
  memoryBytes: bytes,
});

export const MetricsReportSchema = z.object({
  v: z.literal(1),
  at: timestamp,
  uptimeSec: rate,
  cpu: z.object({
    /** Busy fraction of all cores since the previous sample (since boot for the first one). */
    load: fraction,
    loadAvg: z.tuple([rate, rate, rate]),
  }),
  memory: z.object({ totalBytes: bytes, usedBytes: bytes, availableBytes: bytes }),
  filesystems: z.array(FilesystemUsageSchema).check(z.maxLength(64)),
  /** Hottest thermal zone; absent on machines without one (VMs, some boards). */
  temperatureC: z.optional(z.number().check(z.minimum(-100), z.maximum(250))),
  network: z.array(InterfaceThroughputSchema).check(z.maxLength(64)),
  services: z.optional(z.array(ServiceUsageSchema).check(z.maxLength(256))),
  /**
   * Messages the device refused since its agent started, by error code (TOO_LARGE,
   * BAD_SIGNATURE…; each also sent as a `message-refused` event); absent while there are none.
   */
  refused: z.optional(z.record(z.string().check(z.regex(/^[A-Z_]{1,40}$/)), z.int().check(z.nonnegative()))),
});
export type MetricsReport = z.infer<typeof MetricsReportSchema>;
export type FilesystemUsage = z.infer<typeof FilesystemUsageSchema>;
export type InterfaceThroughput = z.infer<typeof InterfaceThroughputSchema>;
export type ServiceUsage = z.infer<typeof ServiceUsageSchema>;
export type AttachedDevice = z.infer<typeof AttachedDeviceSchema>;
export type Accelerator = z.infer<typeof AcceleratorSchema>;
export type Labels = z.infer<typeof LabelsSchema>;
