import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AccountStore } from '../../../provisioning/embedded/account-store.js';
import { answerControlRequest } from '../../../provisioning/embedded/control-topic.js';
import { hashPassword, verifyPassword } from '../../../provisioning/embedded/password-hash.js';

test('passwords are stored as salted scrypt hashes and verified in constant form', async () => {
  const a = await hashPassword('s3cret');
  const b = await hashPassword('s3cret');
  assert.match(a, /^scrypt\$16384\$8\$1\$[\w-]+\$[\w-]+$/);
  assert.notEqual(a, b);
  assert.ok(await verifyPassword('s3cret', a), "await verifyPassword('s3cret', a)");
  assert.ok(!(await verifyPassword('s3cret!', a)), "!(await verifyPassword('s3cret!', a))");
  assert.ok(!(await verifyPassword('s3cret', 'plain')), "!(await verifyPassword('s3cret', 'plain'))");
  assert.ok(!(await verifyPassword('s3cret', a.replace('$16384$', '$99999999$'))), "!(await verifyPassword('s3cret', a.replace('$16384$', '$99999999$')))");
});

const roleOf = (r: Awaited<ReturnType<AccountStore['authenticate']>>): string => ('account' in r ? r.account.role : r.refused);

test('the account store persists hashes only, binds devices to their client id, and writes only on change', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-accounts-'));
  try {
    const path = join(dir, 'broker-accounts.json');
    const store = AccountStore.open(path);
    // An account from before secret client ids: bound to its device id.
    await store.put('d-0123abcd', 'device', 'device-password');
    await store.put('d-4567cdef', 'device', 'new-device-password', 'dc-secretsecretsecret');
    await store.put('bootstrap-x', 'bootstrap', 'boot-password');
    const text = readFileSync(path, 'utf8');
    assert.ok(!text.includes('device-password') && !text.includes('boot-password'), "!text.includes('device-password') && !text.includes('boot-password')");
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const mtime = statSync(path).mtimeMs;
    await store.put('d-0123abcd', 'device', 'device-password');
    await store.put('d-4567cdef', 'device', 'new-device-password', 'dc-secretsecretsecret');
    assert.equal(statSync(path).mtimeMs, mtime, 'an unchanged account must not rewrite the file');

    const reopened = AccountStore.open(path);
    assert.equal(roleOf(await reopened.authenticate('d-0123abcd', 'device-password', 'd-0123abcd')), 'device');
    assert.equal(roleOf(await reopened.authenticate('d-0123abcd', 'device-password', 'other-client')), 'client-id-not-allowed');
    assert.equal(roleOf(await reopened.authenticate('d-0123abcd', 'wrong', 'd-0123abcd')), 'bad-password');
    assert.equal(roleOf(await reopened.authenticate('d-4567cdef', 'new-device-password', 'dc-secretsecretsecret')), 'device');
    assert.equal(roleOf(await reopened.authenticate('d-4567cdef', 'new-device-password', 'd-4567cdef')), 'client-id-not-allowed');
    assert.equal(roleOf(await reopened.authenticate('bootstrap-x', 'boot-password', 'any-client-id')), 'bootstrap');
    assert.equal(roleOf(await reopened.authenticate('nobody', 'x', 'any-client-id')), 'unknown-user');
    // The shared credential takes no device's session, under its public id or its secret one.
    for (const taken of ['d-0123abcd', 'd-4567cdef', 'dc-secretsecretsecret']) {
      assert.equal(roleOf(await reopened.authenticate('bootstrap-x', 'boot-password', taken)), 'client-id-not-allowed', taken);
    }
    assert.equal(roleOf(await reopened.authenticate('d-0123abcd', 'device-password', 'dc-secretsecretsecret')), 'client-id-not-allowed');
    // A rotation keeps the bound client id; a new grant moves it, and the old one is free again.
    assert.ok(await reopened.setPassword('d-4567cdef', 'rotated'), "await reopened.setPassword('d-4567cdef', 'rotated')");
    assert.equal(roleOf(await AccountStore.open(path).authenticate('d-4567cdef', 'rotated', 'dc-secretsecretsecret')), 'device');
    assert.ok(await reopened.setPassword('d-0123abcd', 'rotated'), "await reopened.setPassword('d-0123abcd', 'rotated')");
    assert.ok(!(await reopened.setPassword('d-unknown', 'x')), "!(await reopened.setPassword('d-unknown', 'x'))");
    assert.equal(roleOf(await AccountStore.open(path).authenticate('d-0123abcd', 'rotated', 'd-0123abcd')), 'device');
    await reopened.put('d-0123abcd', 'device', 'regranted', 'dc-anothersecretvalue');
    assert.equal(roleOf(await reopened.authenticate('d-0123abcd', 'regranted', 'dc-anothersecretvalue')), 'device');
    assert.equal(roleOf(await reopened.authenticate('d-0123abcd', 'regranted', 'd-0123abcd')), 'client-id-not-allowed');
    await assert.rejects(reopened.put('d-89abcdef', 'device', 'x', 'dc-anothersecretvalue'), /held by another account/);
    await assert.rejects(store.put('not a device/#', 'device', 'x'));
    await assert.rejects(store.put('d-89abcdef', 'device', 'x', 'dc-#'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deleteClient on the control topic removes a device account, disconnects it first, and leaves fleet accounts alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-accounts-'));
  try {
    const store = AccountStore.open(join(dir, 'broker-accounts.json'));
    await store.put('d-0123abcd', 'device', 'device-password');
    await store.put('fleet-x', 'fleet', 'fleet-password');
    const disconnected: string[] = [];
    const request = (username: string): Buffer => Buffer.from(JSON.stringify({ commands: [{ command: 'deleteClient', username, correlationData: 'c1' }] }));
    const onDeleted = (u: string): Promise<void> => { disconnected.push(u); return Promise.resolve(); };
    assert.deepEqual(await answerControlRequest(request('d-0123abcd'), store, onDeleted), { responses: [{ command: 'deleteClient', correlationData: 'c1' }] });
    assert.deepEqual(disconnected, ['d-0123abcd']);
    assert.equal(AccountStore.open(join(dir, 'broker-accounts.json')).get('d-0123abcd'), undefined);
    assert.match((await answerControlRequest(request('d-0123abcd'), store, onDeleted))?.responses[0]?.error ?? '', /not found/i);
    assert.match((await answerControlRequest(request('fleet-x'), store, onDeleted))?.responses[0]?.error ?? '', /device/);
    assert.equal(store.get('fleet-x')?.role, 'fleet');
    assert.deepEqual(disconnected, ['d-0123abcd']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
