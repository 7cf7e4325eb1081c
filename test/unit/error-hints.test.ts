import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_CODES, TsunaguError, type ErrorCode } from '../../protocol/errors.js';
import { hintFor } from '../../provisioning/error-hints.js';

/** A hint that sends the operator to a page must send them where the answer is. */
const root = join(import.meta.dirname, '..', '..');

test('every docs page and section a hint names exists, and holds what the hint promises', () => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    const hint = hintFor(new TsunaguError(code));
    if (hint === undefined) continue;
    for (const [, page, section] of hint.matchAll(/docs\/([a-z-]+\.md)(?: §([0-9.]+))?/g)) {
      const text = readFileSync(join(root, 'docs', page!), 'utf8');
      if (section !== undefined) assert.match(text, new RegExp(`^#+ ${section.replace('.', '\\.')}[. ]`, 'm'), `${code}: docs/${page} has no section ${section}`);
      const quoted = /\("([^"]+)"\)/.exec(hint)?.[1];
      if (quoted !== undefined && section !== undefined) {
        const body = text.slice(text.search(new RegExp(`^#+ ${section.replace('.', '\\.')}[. ]`, 'm')));
        const headingEnd = body.indexOf('\n');
        const next = body.slice(headingEnd).search(/^#+ /m);
        assert.ok((next === -1 ? body : body.slice(0, headingEnd + next)).includes(quoted), `${code}: docs/${page} §${section} does not hold "${quoted}"`);
      }
    }
  }
});

test('the hint for UNSUPPORTED points at the supported Compose subset', () => {
  assert.match(hintFor(new TsunaguError('UNSUPPORTED')) ?? '', /docs\/protocol\.md §9\.7 \("The Compose subset"\)/);
});
