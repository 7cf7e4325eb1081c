// Writes protocol/vectors/*.json from fixed seeds: `node --import tsx scripts/make-vectors.ts`.
// test/unit/vectors.test.ts fails until the files are regenerated after a protocol change.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tweetnaclEd25519 } from '../protocol/ed25519.js';
import { deriveVectors, vectorFileText } from './vectors.js';

const dir = join(import.meta.dirname, '..', 'protocol', 'vectors');
mkdirSync(dir, { recursive: true });
for (const [name, value] of Object.entries(deriveVectors(tweetnaclEd25519))) {
  writeFileSync(join(dir, name), vectorFileText(value));
  console.log(`wrote protocol/vectors/${name}`);
}
