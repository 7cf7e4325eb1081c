import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTsunaguError } from '../../../protocol/errors.js';
import { parseEnvFile } from '../../../provisioning/deploy/env-file.js';

test('dotenv lines: comments, blanks, export, trimming, inline comments, later wins', () => {
  const text = [
    '# a comment',
    '',
    'PLAIN=value',
    '  SPACED =  padded value  ',
    'export EXPORTED=yes',
    'INLINE=abc # a comment',
    'HASH=abc#not-a-comment',
    'EMPTY=',
    'EQUALS=a=b=c',
    'DOLLAR=$HOME',
    'DUP=first',
    'DUP=second',
  ].join('\n');
  assert.deepEqual(parseEnvFile(text), {
    PLAIN: 'value', SPACED: 'padded value', EXPORTED: 'yes', INLINE: 'abc', HASH: 'abc#not-a-comment',
    EMPTY: '', EQUALS: 'a=b=c', DOLLAR: '$HOME', DUP: 'second',
  });
});

test('quoted values: single literal, double with escapes, multi-line, comment after the quote', () => {
  const text = [
    "SINGLE='a \\n # b'",
    'DOUBLE="line1\\nline2\\t\\"q\\" \\\\ end"',
    'MULTI="first',
    'second"',
    'BACK=`x y`',
    'AFTER="v" # trailing comment',
    'CRLF=1\r',
  ].join('\n');
  assert.deepEqual(parseEnvFile(text), {
    SINGLE: 'a \\n # b', DOUBLE: 'line1\nline2\t"q" \\ end', MULTI: 'first\nsecond', BACK: 'x y', AFTER: 'v', CRLF: '1',
  });
  assert.deepEqual(parseEnvFile('\uFEFFBOM=1\r\nNEXT=2\r\n'), { BOM: '1', NEXT: '2' });
});

test('malformed lines are refused with their line number, not skipped', () => {
  const cases: [string, RegExp][] = [
    ['OK=1\nNOEQUALS', /prod\.env:2: expected KEY=VALUE/],
    ['1BAD=x', /prod\.env:1: "1BAD" is not a variable name/],
    ['A="open\nB=2', /prod\.env:1: unterminated " quote/],
    ["A='x' junk", /prod\.env:1: unexpected text after the closing quote/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseEnvFile(text, 'prod.env'), (err) => isTsunaguError(err, 'CONFIG') && message.test(err.message), text);
  }
});
