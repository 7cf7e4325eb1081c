import * as z from 'zod/mini';
import type { StaticFacts } from './probe.js';

/** The static facts as a document: the kept copy (facts-cache.ts) and a child's answer (static-facts-child.ts). */
export const StaticFactsSchema: z.ZodMiniType<StaticFacts> = z.object({
  hardware: z.object({ manufacturer: z.optional(z.string()), model: z.optional(z.string()), serial: z.optional(z.string()) }),
  os: z.object({ platform: z.string(), distro: z.string(), release: z.string(), kernel: z.string() }),
  machine: z.string(),
  processArch: z.string(),
  cpu: z.object({ model: z.string(), cores: z.number(), physicalCores: z.number() }),
  memoryTotalBytes: z.number(),
  disks: z.array(z.object({ name: z.string(), sizeBytes: z.number(), removable: z.boolean(), model: z.optional(z.string()) })),
  filesystems: z.array(z.object({ mount: z.string(), device: z.string(), type: z.string(), sizeBytes: z.number() })),
  interfaces: z.array(z.object({ name: z.string(), mac: z.optional(z.string()), addresses: z.array(z.string()), internal: z.boolean(), physical: z.boolean() })),
  graphics: z.array(z.object({ vendor: z.string(), model: z.string(), memoryBytes: z.optional(z.number()) })),
  devEntries: z.array(z.string()),
});

