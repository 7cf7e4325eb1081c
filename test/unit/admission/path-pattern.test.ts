import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isWithin, matchesPathPattern, pathPatternProblem } from '../../../agent/admission/path-pattern.js';

test('* matches within one segment, a leading dot included, never across /', () => {
  const cases: [string, string, boolean][] = [
    ['/dev/ttyUSB*', '/dev/ttyUSB0', true],
    ['/dev/ttyUSB*', '/dev/ttyUSB', true],
    ['/dev/ttyUSB*', '/dev/ttyACM0', false],
    ['/dev/ttyUSB*', '/dev/ttyUSB0/x', false],
    ['/srv/*/data', '/srv/app/data', true],
    ['/srv/*/data', '/srv/.hidden/data', true],
    ['/srv/*/data', '/srv/a/b/data', false],
    ['/srv/*', '/srv', false],
    ['/dev/video*', '/dev/video10', true],
    ['/srv/app', '/srv/app', true],
    ['/srv/app', '/srv/app/x', false],
    ['/srv/app', '/srv/apple', false],
  ];
  for (const [pattern, path, expected] of cases) assert.equal(matchesPathPattern(pattern, path), expected, `${pattern} ~ ${path}`);
});

test('** as a segment matches any number of segments, none included', () => {
  const cases: [string, string, boolean][] = [
    ['/srv/app/**', '/srv/app', true],
    ['/srv/app/**', '/srv/app/a', true],
    ['/srv/app/**', '/srv/app/a/b/c', true],
    ['/srv/app/**', '/srv/apple', false],
    ['/srv/app/**', '/srv', false],
    ['/srv/**/conf', '/srv/conf', true],
    ['/srv/**/conf', '/srv/a/b/conf', true],
    ['/srv/**/conf', '/srv/a/b/conf/x', false],
    ['/**', '/', true],
    ['/**', '/etc/shadow', true],
    ['/dev/bus/usb/**', '/dev/bus/usb/001/002', true],
  ];
  for (const [pattern, path, expected] of cases) assert.equal(matchesPathPattern(pattern, path), expected, `${pattern} ~ ${path}`);
});

test('regular-expression characters in a pattern are literal', () => {
  assert.equal(matchesPathPattern('/srv/a.b', '/srv/aXb'), false);
  assert.equal(matchesPathPattern('/srv/a+(b)', '/srv/a+(b)'), true);
  assert.equal(matchesPathPattern('/srv/[ab]', '/srv/a'), false);
  assert.equal(matchesPathPattern('/srv/[ab]', '/srv/[ab]'), true);
});

test('a pattern must be absolute and normalised, with ** only as a whole segment', () => {
  const cases: [string, string | null][] = [
    ['/dev/ttyUSB*', null],
    ['/srv/app/**', null],
    ['/', null],
    ['dev/ttyUSB*', 'must be an absolute path'],
    ['/srv/app/', 'must not end with /'],
    ['/srv/../etc', 'must be normalised (no ., .. or //)'],
    ['/srv//app', 'must be normalised (no ., .. or //)'],
    ['/srv/./app', 'must be normalised (no ., .. or //)'],
    ['/srv/app**', '** must be a whole path segment'],
  ];
  for (const [pattern, problem] of cases) assert.equal(pathPatternProblem(pattern), problem, pattern);
});

test('isWithin: the path itself or below it, never a sibling with the same prefix', () => {
  assert.equal(isWithin('/run/docker.sock', '/run'), true);
  assert.equal(isWithin('/run', '/run'), true);
  assert.equal(isWithin('/running', '/run'), false);
  assert.equal(isWithin('/etc', '/'), true);
  assert.equal(isWithin('/', '/run'), false);
});
