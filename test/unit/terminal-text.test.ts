import assert from 'node:assert/strict';
import { test } from 'node:test';
import { printable } from '../../provisioning/terminal-text.js';

test('escape sequences from a device are shown, not obeyed; newlines, tabs and non-ASCII text stay', () => {
  assert.equal(printable('ok\x1b[2J\x1b]0;owned\x07done'), 'ok\\x1b[2J\\x1b]0;owned\\x07done');
  assert.equal(printable('line 1\nline\t2 — ümlaut 日本'), 'line 1\nline\t2 — ümlaut 日本');
  assert.equal(printable('\r\x9b31m\x7f'), '\\x0d\\x9b31m\\x7f');
  assert.equal(printable('a\u2028b'), 'a\\u2028b');
});
