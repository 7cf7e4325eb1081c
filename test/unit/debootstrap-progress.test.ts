import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DebootstrapProgress } from '../support/debian-root-build.js';

function progress(): { p: DebootstrapProgress; out: string[]; at: (ms: number) => void } {
  let now = 0;
  const out: string[] = [];
  const p = new DebootstrapProgress('debian12-arm64', (l) => out.push(l), 0, () => now);
  return { p, out, at: (ms) => { now = ms; } };
}

test('one line per phase; Retrieving and Validating are one phase', () => {
  const { p, out, at } = progress();
  at(1_000);
  p.line('I: Retrieving adduser 3.134');
  p.line('I: Validating adduser 3.134');
  p.line('I: Retrieving apt 2.6.1');
  at(65_000);
  p.line('I: Extracting adduser...');
  p.line('I: Extracting apt...');
  assert.deepEqual(out, ['[debian12-arm64 0:01] Retrieving adduser 3.134', '[debian12-arm64 1:05] Extracting adduser...']);
});

test('a long phase says how far it is every 15 s, also when debootstrap is silent', () => {
  const { p, out, at } = progress();
  p.line('I: Configuring required packages...');
  p.line('I: Configuring libc6...');
  at(14_999);
  p.tick();
  assert.equal(out.length, 1);
  at(15_000);
  p.tick();
  assert.deepEqual(out.slice(1), ['[debian12-arm64 0:15] … 2 step(s) so far, last: Configuring libc6...']);
  at(20_000);
  p.line('I: Configuring nodejs...');
  assert.equal(out.length, 2);
});

test('warnings and errors always show; other output (dpkg\'s) only goes to the log', () => {
  const { p, out } = progress();
  p.line('Selecting previously unselected package libc6.');
  p.line('W: Failure trying to run: chroot "/x" mount -t proc proc /proc');
  p.line('E: Couldn\'t download packages: nodejs');
  p.line('   ');
  assert.deepEqual(out, ['[debian12-arm64 0:00] W: Failure trying to run: chroot "/x" mount -t proc proc /proc', '[debian12-arm64 0:00] E: Couldn\'t download packages: nodejs']);
});

test('nothing is said between phases: no heartbeat before the first phase or after a stage line', () => {
  const { p, out, at } = progress();
  at(60_000);
  p.tick();
  p.stage('stage 2 of 2');
  at(120_000);
  p.tick();
  assert.deepEqual(out, ['[debian12-arm64 1:00] stage 2 of 2']);
});
