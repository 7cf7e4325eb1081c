import { statfs } from 'node:fs/promises';
import { TsunaguError } from '../../protocol/errors.js';
import type { DiskReading } from './disk-fit.js';

/** Reads how full the filesystem of the engine's data is. */
export interface DiskGauge {
  read(): Promise<DiskReading>;
}

/**
 * statfs of the engine's data root (or of the configured `disk.path`): the
 * filesystem that holds images, container layers and json-file logs. The
 * engine is asked for its data root once; the agent must see that path
 * (it runs on the host, beside the engine).
 */
export class DataRootGauge implements DiskGauge {
  private path: string | undefined;

  constructor(configured: string | undefined, private readonly dataRoot: () => Promise<string>) {
    this.path = configured;
  }

  async read(): Promise<DiskReading> {
    this.path ??= await this.dataRoot();
    const path = this.path;
    try {
      const s = await statfs(path);
      return {
        path,
        totalBytes: s.blocks * s.bsize,
        availableBytes: s.bavail * s.bsize,
        usedBytes: (s.blocks - s.bfree) * s.bsize,
      };
    } catch (err) {
      throw new TsunaguError('RUNTIME_FAILED', `cannot measure the disk at ${path}: ${(err as Error).message} (set disk.path when the agent does not see the engine's data root)`, undefined, { cause: err });
    }
  }
}
