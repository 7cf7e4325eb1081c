import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Outbox } from '../../agent/link/outbox.js';

// Regression: draining an empty outbox used to leave the drain marked as
// running for good (its clean-up ran before the marker was set), so every
// later drain joined the finished one and nothing was ever delivered again.
test('a drain of an empty outbox does not block later drains', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-outbox-'));
  try {
    const outbox = Outbox.open({ dir, maxBytes: 64 * 1024, fsync: false });
    const sent: string[] = [];
    const send = (m: { topic: string }): Promise<void> => { sent.push(m.topic); return Promise.resolve(); };
    assert.equal(await outbox.drain(send), 0);
    outbox.enqueue({ topic: 'a', payload: new Uint8Array([1]), qos: 1, retain: false, class: 'reply' });
    assert.equal(await outbox.drain(send), 1);
    outbox.enqueue({ topic: 'b', payload: new Uint8Array([2]), qos: 1, retain: false, class: 'event' });
    assert.equal(await outbox.drain(send), 1);
    assert.deepEqual(sent, ['a', 'b']);
    outbox.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
