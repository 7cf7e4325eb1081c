import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AccountStore } from '../../../provisioning/embedded/account-store.js';
import { answerControlRequest, CONTROL_RESPONSE_TOPIC, CONTROL_TOPIC } from '../../../provisioning/embedded/control-topic.js';

// docs/protocol.md §2.2 documents the embedded broker's control topic for a fleet of one's own.
const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'protocol.md'), 'utf8');

test('the documented control topic and response topic are the ones the embedded broker serves', () => {
  assert.ok(doc.includes(`\`${CONTROL_TOPIC}\``), CONTROL_TOPIC);
  assert.ok(doc.includes(`\`${CONTROL_RESPONSE_TOPIC}\``), CONTROL_RESPONSE_TOPIC);
});

test('setClientPassword and deleteClient of a device are answered per command with their correlationData; errors as documented; other input unanswered', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-control-'));
  try {
    const store = AccountStore.open(join(dir, 'broker-accounts.json'));
    await store.put('d-0123abcd', 'device', 'old-password-0123', 'dc-secretsecretsecret');
    await store.put('d-4567cdef', 'device', 'other-password-01', 'dc-othersecretsecret');
    const deleted: string[] = [];
    const onDeleted = (username: string): Promise<void> => { deleted.push(username); return Promise.resolve(); };
    const ask = (commands: unknown): ReturnType<typeof answerControlRequest> => answerControlRequest(Buffer.from(JSON.stringify({ commands })), store, onDeleted);
    const answer = await ask([
      { command: 'setClientPassword', username: 'd-0123abcd', password: 'new-password-4567', correlationData: 'c1' },
      { command: 'setClientPassword', username: 'd-nobody', password: 'new-password-4567', correlationData: 'c1' },
      { command: 'setClientPassword', username: 'd-0123abcd', password: '', correlationData: 'c1' },
      { command: 'deleteClient', username: 'd-4567cdef', correlationData: 'c2' },
      { command: 'deleteClient', username: 'd-nobody', correlationData: 'c2' },
      { command: 'createClient', username: 'd-new', correlationData: 'c3' },
    ]);
    assert.deepEqual(answer, { responses: [
      { command: 'setClientPassword', correlationData: 'c1' },
      { command: 'setClientPassword', correlationData: 'c1', error: 'Client not found' },
      { command: 'setClientPassword', correlationData: 'c1', error: 'Invalid/missing username or password' },
      { command: 'deleteClient', correlationData: 'c2' },
      { command: 'deleteClient', correlationData: 'c2', error: 'Client not found' },
      { command: 'createClient', correlationData: 'c3', error: 'not supported by the embedded broker' },
    ] });
    assert.deepEqual(deleted, ['d-4567cdef'], 'the broker is told to close the deleted account\'s connections');
    assert.equal(store.get('d-4567cdef'), undefined);
    for (const r of answer.responses) if (r.error !== undefined) assert.ok(doc.includes(`"${r.error}"`), r.error);
    assert.equal(roleOf(await store.authenticate('d-0123abcd', 'new-password-4567', 'dc-secretsecretsecret')), 'device');
    assert.equal(roleOf(await store.authenticate('d-0123abcd', 'old-password-0123', 'dc-secretsecretsecret')), 'bad-password');
    // Not JSON, or outside the request's shape (a password over 256 characters): no answer at all.
    assert.equal(await answerControlRequest(Buffer.from('{'), store, onDeleted), undefined);
    assert.equal(await ask([{ command: 'setClientPassword', username: 'd-0123abcd', password: 'x'.repeat(257) }]), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const roleOf = (r: Awaited<ReturnType<AccountStore['authenticate']>>): string => ('account' in r ? r.account.role : r.refused);
