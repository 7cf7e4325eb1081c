import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_CODES } from '../../protocol/errors.js';

/** Codes are part of the protocol: each one has its section in docs/errors.md, and no section names a code that does not exist. */
const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8');
const sections = [...doc.matchAll(/^### `([A-Z_]+)`$/gm)].map((m) => m[1]!);

test('every error code has a section in docs/errors.md', () => {
  const missing = Object.keys(ERROR_CODES).filter((code) => !sections.includes(code));
  assert.deepEqual(missing, [], `document these codes in docs/errors.md: ${missing.join(', ')}`);
});

test('docs/errors.md documents no code that does not exist, and each once', () => {
  assert.deepEqual(sections.filter((code) => !(code in ERROR_CODES)), []);
  assert.equal(new Set(sections).size, sections.length);
});

test('every section says something beyond its heading', () => {
  const bodies = doc.split(/^### /m).slice(1);
  for (const body of bodies) {
    const [heading, ...rest] = body.split('\n');
    assert.ok(rest.join(' ').trim().length > 20, `the section ${heading} is empty`);
  }
});

test('a code marked reserved in docs/errors.md is raised nowhere in the code', () => {
  const reserved = doc.split(/^### /m).slice(1).filter((body) => /^\*Reserved\.\*/m.test(body)).map((body) => body.slice(1, body.indexOf('`', 1)));
  const sources = ['agent', 'provisioning', 'protocol', 'common'].flatMap((dir) => readdirSync(join(import.meta.dirname, '..', '..', dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(import.meta.dirname, '..', '..', dir, f), 'utf8')));
  for (const code of reserved) {
    assert.ok(code in ERROR_CODES, `reserved section ${code} names no code`);
    const raised = sources.filter((text) => new RegExp(`TsunaguError\\('${code}'|: '${code}'|code: '${code}'`).test(text));
    assert.deepEqual(raised.length, 0, `${code} is marked reserved in docs/errors.md but the code raises it`);
  }
});
