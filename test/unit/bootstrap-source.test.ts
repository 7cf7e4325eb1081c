import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { takeBootstrap } from '../../agent/enrollment/bootstrap-source.js';
import { statePaths } from '../../agent/identity.js';

const dir = mkdtempSync(join(tmpdir(), 'bootstrap-source-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const file = (password: string): string => JSON.stringify({
  v: 1, fleetId: 'acme', broker: { url: 'mqtt://127.0.0.1:1883', username: 'bootstrap', password, protocolVersion: 5 },
  fleetKeys: { signPublicKey: 'AAAA', boxPublicKey: 'BBBB' }, claim: { token: 't' },
});

test('the bootstrap file found again at every start is copied into the state dir only when it changed', () => {
  const stateDir = join(dir, 'state');
  const source = join(dir, 'bootstrap.json');
  writeFileSync(source, file('first-password'));
  assert.equal(takeBootstrap(stateDir, source, silentLogger()).broker.password, 'first-password');
  const own = statePaths(stateDir).bootstrap;
  const written = statSync(own);
  // A write replaces the file (new inode): the same content must leave it alone.
  assert.equal(takeBootstrap(stateDir, source, silentLogger()).broker.password, 'first-password');
  assert.equal(statSync(own).ino, written.ino);
  writeFileSync(source, file('second-password'));
  assert.equal(takeBootstrap(stateDir, source, silentLogger()).broker.password, 'second-password');
  assert.notEqual(statSync(own).ino, written.ino);
});
