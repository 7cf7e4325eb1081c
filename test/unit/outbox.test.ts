import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { crc32 } from '../../agent/link/crc32.js';
import { encodeMessage } from '../../agent/link/frames.js';
import type { MessageClass, OutboxMessage, QueuedMessage } from '../../agent/link/outbox.js';
import { Outbox } from '../../agent/link/outbox.js';
import { isTsunaguError } from '../../protocol/errors.js';
import { tempDirs } from '../support/temp-dirs.js';

const newDir = tempDirs('outbox-');

function tempDir(): string {
  return join(newDir(), 'outbox'); // not created yet: the outbox creates it
}

function msg(cls: MessageClass, id: string, topic = `t/${cls}`, size = 0): OutboxMessage {
  return { topic, payload: Buffer.from(id.padEnd(size, '.')), qos: 1, retain: cls === 'state', class: cls };
}

async function drainAll(outbox: Outbox): Promise<QueuedMessage[]> {
  const got: QueuedMessage[] = [];
  await outbox.drain((m) => {
    got.push(m);
    return Promise.resolve();
  });
  return got;
}

const ids = (ms: QueuedMessage[]): string[] => ms.map((m) => Buffer.from(m.payload).toString().replace(/\.+$/, ''));

const logFiles = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.log')).sort() : []);

/** A fresh outbox dir holding `queued` (all of class `cls`), closed; returns the dir and its one log file's name. */
function closedOutbox(cls: MessageClass, queued: string[]): { dir: string; log: string } {
  const dir = tempDir();
  const outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  for (const id of queued) outbox.enqueue(msg(cls, id));
  outbox.close();
  const [log] = logFiles(dir);
  assert.ok(log !== undefined, 'log !== undefined');
  return { dir, log };
}

test('crc32 matches the IEEE check value', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32(Buffer.from('6789'), crc32(Buffer.from('12345'))), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test('order is kept across reopen, and a drained outbox leaves no files', async () => {
  const dir = tempDir();
  let outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  const classes: MessageClass[] = ['metrics', 'event', 'reply', 'state', 'metrics', 'event'];
  classes.forEach((c, i) => outbox.enqueue(msg(c, `m${i}`, `t/${i}`)));
  outbox.close();
  outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  assert.equal(outbox.pendingCount(), 6);
  const first = outbox.peek();
  assert.deepEqual({ topic: first?.topic, qos: first?.qos, retain: first?.retain, class: first?.class }, { topic: 't/0', qos: 1, retain: false, class: 'metrics' });
  // Deliver two, reopen, the rest follows in order.
  let n = 0;
  await assert.rejects(
    outbox.drain(() => (n++ < 2 ? Promise.resolve() : Promise.reject(new Error('offline again')))),
    /offline again/,
  );
  outbox.close();
  outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  outbox.enqueue(msg('event', 'm6'));
  assert.deepEqual(ids(await drainAll(outbox)), ['m2', 'm3', 'm4', 'm5', 'm6']);
  assert.equal(outbox.sizeBytes(), 0);
  assert.equal(existsSync(dir), false, 'a drained outbox removes its directory');
  outbox.close();
});

test('when full, the oldest metrics go first and the drops are counted, persisted and reset', async () => {
  const dir = tempDir();
  const maxBytes = 4096;
  let outbox = Outbox.open({ dir, maxBytes });
  outbox.enqueue(msg('reply', 'r0', 't/r', 200));
  for (let i = 0; i < 40; i++) {
    outbox.enqueue(msg('metrics', `x${i}`, 't/m', 200));
    assert.ok(outbox.sizeBytes() <= maxBytes, 'outbox.sizeBytes() <= maxBytes');
    assert.ok(statSync(join(dir, logFiles(dir)[0] ?? 'missing')).size <= maxBytes, "statSync(join(dir, logFiles(dir)[0] ?? 'missing')).size <= maxBytes");
  }
  outbox.enqueue(msg('event', 'e0', 't/e', 200));
  const dropped = outbox.dropped();
  assert.ok(dropped.metrics > 0, 'dropped.metrics > 0');
  assert.deepEqual({ ...dropped, metrics: 0 }, { reply: 0, event: 0, state: 0, metrics: 0 });
  outbox.close();

  outbox = Outbox.open({ dir, maxBytes });
  assert.deepEqual(outbox.dropped(), dropped, 'drop counts survive a restart');
  const got = ids(await drainAll(outbox));
  assert.equal(got[0], 'r0', 'the reply is kept');
  assert.equal(got.at(-1), 'e0');
  const metrics = got.filter((id) => id.startsWith('x'));
  assert.equal(metrics.length + dropped.metrics, 40, 'every metrics message is delivered or counted');
  assert.deepEqual(metrics, metrics.map((_, i) => `x${40 - metrics.length + i}`), 'the newest metrics survive');

  // A notice that carried fewer drops than happened (one more happened while it travelled) leaves the rest counted.
  outbox.acknowledgeDropped({ ...dropped, metrics: dropped.metrics - 1 });
  assert.deepEqual(outbox.dropped(), { reply: 0, event: 0, state: 0, metrics: 1 });
  assert.deepEqual(readdirSync(dir), ['outbox.idx'], 'the index remembers the unreported drop');
  outbox.close();
  outbox = Outbox.open({ dir, maxBytes });
  assert.equal(outbox.dropped().metrics, 1);
  outbox.acknowledgeDropped(outbox.dropped());
  assert.deepEqual(outbox.dropped(), { reply: 0, event: 0, state: 0, metrics: 0 });
  assert.equal(existsSync(dir), false, 'nothing left to remember: no directory');
  outbox.close();
});

test('replies and events are kept while metrics remain to drop; then the oldest of them go', async () => {
  const dir = tempDir();
  const outbox = Outbox.open({ dir, maxBytes: 4096 });
  for (let i = 0; i < 6; i++) outbox.enqueue(msg(i % 2 ? 'reply' : 'event', `k${i}`, 't/k', 300));
  for (let i = 0; i < 30; i++) outbox.enqueue(msg('metrics', `x${i}`, 't/m', 300));
  assert.equal(outbox.dropped().reply + outbox.dropped().event, 0);
  const kept = ids(await drainAll(outbox)).filter((id) => id.startsWith('k'));
  assert.deepEqual(kept, ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);

  // With no metrics left, the bound still holds: the oldest events/replies go.
  for (let i = 0; i < 30; i++) outbox.enqueue(msg('event', `e${i}`, 't/e', 300));
  assert.ok(outbox.sizeBytes() <= 4096, 'outbox.sizeBytes() <= 4096');
  assert.ok(outbox.dropped().event > 0, 'outbox.dropped().event > 0');
  const events = ids(await drainAll(outbox));
  assert.equal(events.at(-1), 'e29');
  outbox.close();
});

test('a newer state message replaces a pending one on the same topic, also across reopen', async () => {
  const dir = tempDir();
  let outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  outbox.enqueue(msg('state', 'a1', 'state/a'));
  outbox.enqueue(msg('event', 'e1'));
  outbox.enqueue(msg('state', 'b1', 'state/b'));
  outbox.enqueue(msg('state', 'a2', 'state/a'));
  assert.equal(outbox.pendingCount(), 3);
  outbox.close();
  outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  outbox.enqueue(msg('state', 'b2', 'state/b'));
  assert.deepEqual(ids(await drainAll(outbox)), ['e1', 'a2', 'b2']);
  assert.deepEqual(outbox.dropped(), { reply: 0, event: 0, state: 0, metrics: 0 }, 'coalescing is not dropping');
  outbox.close();
});

test('a torn tail is cut off and later appends stay readable', async () => {
  const { dir, log } = closedOutbox('event', ['e0', 'e1']);
  let outbox: Outbox;
  const torn = encodeMessage(99, 'event', 1, false, 't/x', Buffer.from('never finished'));
  appendFileSync(join(dir, log), torn.subarray(0, torn.length - 5));

  outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  assert.deepEqual(outbox.recovered, [], 'a torn append is expected after a power cut, not corruption');
  outbox.enqueue(msg('event', 'e2'));
  outbox.close();
  outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  assert.deepEqual(ids(await drainAll(outbox)), ['e0', 'e1', 'e2']);
  outbox.close();
});

test('garbage after valid frames is moved aside and the valid prefix kept', async () => {
  const { dir, log } = closedOutbox('reply', ['r0', 'r1']);
  const bytes = readFileSync(join(dir, log));
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 3) ^ 0xff, bytes.length - 3); // flipped bits inside the last frame
  writeFileSync(join(dir, log), Buffer.concat([bytes, Buffer.from('garbage garbage garbage')]));

  const outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  assert.equal(outbox.recovered.length, 1);
  assert.ok(isTsunaguError(outbox.recovered[0], 'STATE_CORRUPT'), "isTsunaguError(outbox.recovered[0], 'STATE_CORRUPT')");
  assert.ok(existsSync(join(dir, `${log}.bad`)), 'existsSync(join(dir, `${log}.bad`))');
  outbox.enqueue(msg('reply', 'r2'));
  assert.deepEqual(ids(await drainAll(outbox)), ['r0', 'r2']);
  outbox.close();
});

test('a log of NUL bytes and a NUL index are moved aside and the outbox recovers', async () => {
  const { dir, log } = closedOutbox('event', ['e0']);
  let outbox: Outbox;
  writeFileSync(join(dir, log), Buffer.alloc(4096));
  writeFileSync(join(dir, 'outbox.idx'), Buffer.alloc(512));

  outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  assert.equal(outbox.recovered.length, 2);
  assert.ok(outbox.recovered.every((e) => isTsunaguError(e, 'STATE_CORRUPT')), "outbox.recovered.every((e) => isTsunaguError(e, 'STATE_CORRUPT'))");
  assert.ok(existsSync(join(dir, 'outbox.idx.bad')), "existsSync(join(dir, 'outbox.idx.bad'))");
  assert.ok(existsSync(join(dir, `${log}.bad`)), 'existsSync(join(dir, `${log}.bad`))');
  assert.equal(outbox.pendingCount(), 0);
  outbox.enqueue(msg('event', 'e1'));
  outbox.close();
  outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  assert.deepEqual(ids(await drainAll(outbox)), ['e1']);
  outbox.close();
});

test('a crash in the middle of a compaction leaves one complete generation', async () => {
  const { dir, log } = closedOutbox('event', ['e0', 'e1']);
  let outbox: Outbox;
  // Before the index switched: a newer, possibly partial generation lies next to the named one.
  writeFileSync(join(dir, 'outbox-7.log'), Buffer.from([0xa7, 1, 0]));
  outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  assert.deepEqual(logFiles(dir), [log]);
  outbox.close();
  // After the switch, before the old one was deleted: the index names the new one.
  copyFileSync(join(dir, log), join(dir, 'outbox-0.log'));
  // And an index write cut short before its rename leaves a temp file.
  writeFileSync(join(dir, '.outbox.idx.4242.tmp'), '{"v":1,');
  outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  assert.deepEqual(logFiles(dir), [log]);
  assert.ok(!existsSync(join(dir, '.outbox.idx.4242.tmp')), "!existsSync(join(dir, '.outbox.idx.4242.tmp'))");
  assert.deepEqual(ids(await drainAll(outbox)), ['e0', 'e1']);
  outbox.close();
});

test('nothing is written to disk while nothing is enqueued', () => {
  const dir = tempDir();
  let outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  outbox.close();
  assert.equal(existsSync(dir), false, 'opening an empty outbox creates nothing');
  outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  outbox.enqueue(msg('metrics', 'x0'));
  outbox.close();
  const before = readdirSync(dir).map((n) => [n, statSync(join(dir, n)).mtimeMs, statSync(join(dir, n)).size]);
  const dirMtime = statSync(dir).mtimeMs;
  for (let i = 0; i < 3; i++) {
    outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
    assert.equal(outbox.peek()?.class, 'metrics'); // looking is not acknowledging
    outbox.close();
  }
  const after = readdirSync(dir).map((n) => [n, statSync(join(dir, n)).mtimeMs, statSync(join(dir, n)).size]);
  assert.deepEqual(after, before);
  assert.equal(statSync(dir).mtimeMs, dirMtime);
});

test('an empty directory an earlier version left after a drain is removed on open; one holding a file moved aside stays', () => {
  const empty = tempDir();
  mkdirSync(empty);
  Outbox.open({ dir: empty, maxBytes: 64 * 1024 }).close();
  assert.equal(existsSync(empty), false);

  const kept = tempDir();
  mkdirSync(kept);
  writeFileSync(join(kept, 'outbox-3.log.bad'), 'unreadable');
  writeFileSync(join(kept, '.outbox.idx.4242.tmp'), '{"v":1');
  Outbox.open({ dir: kept, maxBytes: 64 * 1024 }).close();
  assert.deepEqual(readdirSync(kept), ['outbox-3.log.bad'], 'the temp file of an interrupted index write goes, the evidence stays');
});

test('oversized and invalid messages are refused; a closed outbox refuses use', () => {
  const dir = tempDir();
  const outbox = Outbox.open({ dir, maxBytes: 4096 });
  assert.throws(() => outbox.enqueue(msg('event', 'big', 't', 1100)), (e) => isTsunaguError(e, 'TOO_LARGE'));
  assert.throws(() => outbox.enqueue({ ...msg('event', 'x'), topic: '' }), (e) => isTsunaguError(e, 'CONFIG'));
  assert.throws(() => outbox.enqueue({ ...msg('event', 'x'), class: 'other' as MessageClass }), (e) => isTsunaguError(e, 'CONFIG'));
  assert.equal(existsSync(dir), false);
  outbox.close();
  assert.throws(() => outbox.enqueue(msg('event', 'x')), (e) => isTsunaguError(e, 'OUTBOX_CLOSED'));
});

test('drain stops on abort and keeps the message whose send failed first', async () => {
  const dir = tempDir();
  const outbox = Outbox.open({ dir, maxBytes: 64 * 1024 });
  for (let i = 0; i < 5; i++) outbox.enqueue(msg('event', `e${i}`));
  const controller = new AbortController();
  const sent: string[] = [];
  const delivered = await outbox.drain((m) => {
    sent.push(ids([m])[0]!);
    if (sent.length === 2) controller.abort();
    return Promise.resolve();
  }, controller.signal);
  assert.equal(delivered, 2);
  await assert.rejects(outbox.drain(() => Promise.reject(new Error('broker gone'))), /broker gone/);
  assert.deepEqual(ids(await drainAll(outbox)), ['e2', 'e3', 'e4']);
  outbox.close();
});

test('a message in flight is not dropped by a compaction, and a superseded state in flight is not resent', async () => {
  const dir = tempDir();
  const outbox = Outbox.open({ dir, maxBytes: 4096 });
  outbox.enqueue(msg('metrics', 'x-first', 't/m', 200));
  outbox.enqueue(msg('state', 's1', 'state/a', 100));
  const sent: string[] = [];
  let failedOnce = false;
  await outbox.drain(async (m) => {
    const id = ids([m])[0]!;
    if (id === 'x-first') {
      // While the oldest metrics message is on its way, the outbox overflows.
      for (let i = 0; i < 40; i++) outbox.enqueue(msg('metrics', `x${i}`, 't/m', 200));
      assert.ok(outbox.dropped().metrics > 0, 'outbox.dropped().metrics > 0');
    }
    if (id === 's1' && !failedOnce) {
      outbox.enqueue(msg('state', 's2', 'state/a', 100));
      failedOnce = true;
      throw new Error('link dropped mid-send');
    }
    sent.push(id);
    await Promise.resolve();
  }).catch((err: unknown) => assert.match(String(err), /mid-send/));
  sent.push(...ids(await drainAll(outbox)));
  assert.equal(sent[0], 'x-first', 'the message in flight was delivered although it was the oldest metrics');
  const metricsSent = sent.filter((id) => id.startsWith('x')).length;
  assert.equal(metricsSent + outbox.dropped().metrics, 41, 'no message is both delivered and counted as dropped');
  assert.ok(!sent.includes('s1'), 's1 failed and was superseded by s2');
  assert.equal(sent.at(-1), 's2');
  assert.ok(outbox.sizeBytes() <= 4096, 'outbox.sizeBytes() <= 4096');
  outbox.close();
});

test('ack marks reach the disk in batches, and whenever a drain ends', async () => {
  const dir = tempDir();
  // What a SIGKILL would leave: the files as they are now, opened by a new process.
  const afterCrash = (): number => {
    const copy = tempDir();
    mkdirSync(copy);
    for (const name of readdirSync(dir)) copyFileSync(join(dir, name), join(copy, name));
    const reopened = Outbox.open({ dir: copy, maxBytes: 64 * 1024 });
    const n = reopened.pendingCount();
    reopened.close();
    return n;
  };
  const outbox = Outbox.open({ dir, maxBytes: 64 * 1024, ackBatch: 4 });
  for (let i = 0; i < 10; i++) outbox.enqueue(msg('event', `e${i}`));
  for (let i = 0; i < 3; i++) outbox.ack(outbox.peek()!.seq);
  assert.equal(outbox.pendingCount(), 7);
  assert.equal(afterCrash(), 10, 'three acks in memory only: redelivered after a crash');
  outbox.ack(outbox.peek()!.seq);
  assert.equal(afterCrash(), 6, 'the fourth ack wrote the mark');
  let n = 0;
  await assert.rejects(outbox.drain(() => (n++ < 2 ? Promise.resolve() : Promise.reject(new Error('down')))));
  assert.equal(afterCrash(), 4, 'a drain that stops marks what it delivered');
  outbox.ack(outbox.peek()!.seq);
  outbox.close();
  assert.equal(afterCrash(), 3, 'close marks the rest');
});
