// `npm run docs:schemas`: write docs/schemas/ from the code's zod schemas
// (scripts/wire-schemas.ts); test/unit/json-schemas.test.ts checks the files.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSchemaFiles } from './wire-schemas.js';

const dir = join(import.meta.dirname, '..', 'docs', 'schemas');
mkdirSync(dir, { recursive: true });
const files = renderSchemaFiles();
for (const stale of readdirSync(dir).filter((name) => !(name in files))) {
  rmSync(join(dir, stale));
  process.stdout.write(`removed docs/schemas/${stale}\n`);
}
for (const [name, text] of Object.entries(files)) {
  const before = (() => { try { return readFileSync(join(dir, name), 'utf8'); } catch { return undefined; } })();
  if (before === text) continue;
  writeFileSync(join(dir, name), text);
  process.stdout.write(`wrote docs/schemas/${name}\n`);
}
