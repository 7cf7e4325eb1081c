// `npm run docs:cli`: rewrite the reference part of docs/cli.md from the
// real `tsunagu-fleet --help` output (test/unit/cli-docs.test.ts checks it).
import { readFileSync, writeFileSync } from 'node:fs';
import { withCliReference } from '../provisioning/cli-reference.js';

const path = 'docs/cli.md';
const before = readFileSync(path, 'utf8');
const after = withCliReference(before);
if (after !== before) writeFileSync(path, after);
process.stdout.write(after === before ? `${path} is up to date\n` : `rewrote ${path}\n`);
