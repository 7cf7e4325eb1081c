import { join } from 'node:path';
import * as z from 'zod/mini';
import type { Logger } from '../../common/logger.js';
import { loadJsonState, saveJsonState, serializedJsonState } from '../state/json-state-file.js';
import type { StaticFacts } from './probe.js';
import { StaticFactsSchema } from './static-facts-schema.js';

const FactsFileSchema = z.object({ v: z.literal(1), facts: StaticFactsSchema });

/** What a store of the last facts read offers the inventory. */
export interface FactsStore {
  load(): StaticFacts | undefined;
  save(facts: StaticFacts): void;
}

/**
 * The static facts of the last read, kept in the state dir (`facts.json`).
 * Reading them costs over half a second and several child processes
 * (dmidecode, lsblk, lspci…): a starting agent takes the kept copy, so that
 * neither going online nor starting the services waits for that, and reads
 * the machine again in the background (the inventory revalidates). Written
 * only when the facts changed: on flash, the same bytes are not written twice.
 */
export class FileFactsStore implements FactsStore {
  private readonly path: string;
  private lastWritten: string | undefined;

  constructor(stateDir: string, private readonly logger: Logger) {
    this.path = join(stateDir, 'facts.json');
  }

  load(): StaticFacts | undefined {
    const loaded = loadJsonState(this.path, FactsFileSchema);
    if (loaded.status === 'corrupt') {
      // Only a cache: the facts are read again from the machine.
      this.logger.warn({ code: loaded.error.code, movedTo: loaded.movedTo }, loaded.error.message);
      return undefined;
    }
    if (loaded.status === 'missing') return undefined;
    this.lastWritten = serializedJsonState(loaded.value);
    return loaded.value.facts;
  }

  save(facts: StaticFacts): void {
    const file = { v: 1 as const, facts };
    const text = serializedJsonState(file);
    if (text === this.lastWritten) return;
    try {
      saveJsonState(this.path, file);
      this.lastWritten = text;
    } catch (err) {
      // A full disk must not cost the inventory: the next start reads the machine.
      this.logger.warn({ err: (err as Error).message }, 'could not keep the static facts');
    }
  }
}
