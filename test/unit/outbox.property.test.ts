import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import type { DropCounts, MessageClass } from '../../agent/link/outbox.js';
import { Outbox } from '../../agent/link/outbox.js';

// Random enqueue / partial drain / reopen / drop-report sequences against a
// real directory. Invariants: delivery never reorders or duplicates, the log
// never exceeds its bound, and every message is accounted for (delivered,
// counted as dropped, or — for state — superseded by a newer one).

const MAX_BYTES = 1024;
const CLASSES: MessageClass[] = ['reply', 'event', 'state', 'metrics'];

type Op =
  | { op: 'enqueue'; cls: MessageClass; topic: number; size: number }
  | { op: 'drain'; upTo: number }
  | { op: 'reopen' }
  | { op: 'reportDrops' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('enqueue' as const), cls: fc.constantFrom(...CLASSES), topic: fc.integer({ min: 0, max: 2 }), size: fc.integer({ min: 0, max: 200 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('drain' as const), upTo: fc.integer({ min: 0, max: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reportDrops' as const }) },
);

function logBytesOnDisk(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .reduce((sum, n) => sum + statSync(join(dir, n)).size, 0);
}

test('random enqueue/drain/reopen sequences never reorder, duplicate, lose or exceed the bound', async () => {
  const root = mkdtempSync(join(tmpdir(), 'outbox-prop-'));
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 80 }), async (ops) => {
        const dir = join(root, String(run++));
        // fsync off: this property is about logic; durability has its own crash test.
        let outbox = Outbox.open({ dir, maxBytes: MAX_BYTES, fsync: false });
        const enqueued: { id: number; cls: MessageClass; topic: string }[] = [];
        const delivered: number[] = [];
        const reportedDrops: DropCounts = { reply: 0, event: 0, state: 0, metrics: 0 };

        const deliver = async (upTo: number): Promise<void> => {
          let n = 0;
          await outbox
            .drain((m) => {
              if (n++ >= upTo) return Promise.reject(new Error('link down'));
              delivered.push(Number(Buffer.from(m.payload).toString('utf8').split(':')[0]));
              return Promise.resolve();
            })
            .catch((err: unknown) => assert.match(String(err), /link down/));
        };

        for (const op of ops) {
          if (op.op === 'enqueue') {
            const id = enqueued.length;
            const topic = `t/${op.cls}/${op.topic}`;
            enqueued.push({ id, cls: op.cls, topic });
            outbox.enqueue({ topic, payload: Buffer.from(`${id}:${'x'.repeat(op.size)}`), qos: 1, retain: false, class: op.cls });
          } else if (op.op === 'drain') {
            await deliver(op.upTo);
          } else if (op.op === 'reopen') {
            outbox.close();
            outbox = Outbox.open({ dir, maxBytes: MAX_BYTES, fsync: false });
          } else {
            const d = outbox.dropped();
            for (const c of CLASSES) reportedDrops[c] += d[c];
            outbox.acknowledgeDropped(d);
          }
          assert.ok(outbox.sizeBytes() <= MAX_BYTES, `size ${outbox.sizeBytes()}`);
          assert.ok(logBytesOnDisk(dir) <= MAX_BYTES, `on disk ${logBytesOnDisk(dir)}`);
          for (let i = 1; i < delivered.length; i++) assert.ok(delivered[i]! > delivered[i - 1]!, `order: ${delivered.join(',')}`);
        }

        outbox.close();
        outbox = Outbox.open({ dir, maxBytes: MAX_BYTES, fsync: false });
        await deliver(Infinity);
        assert.equal(outbox.pendingCount(), 0);
        const drops = outbox.dropped();
        outbox.close();
        assert.deepEqual(existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.log')) : [], [], 'a drained outbox keeps no log');

        const deliveredSet = new Set(delivered);
        assert.equal(deliveredSet.size, delivered.length, 'no duplicates');
        for (const c of CLASSES) {
          const ofClass = enqueued.filter((e) => e.cls === c);
          const deliveredOfClass = ofClass.filter((e) => deliveredSet.has(e.id)).length;
          const droppedOfClass = reportedDrops[c] + drops[c];
          if (c === 'state') {
            assert.ok(deliveredOfClass + droppedOfClass <= ofClass.length, 'deliveredOfClass + droppedOfClass <= ofClass.length');
            if (droppedOfClass === 0) {
              // Without drops, the newest state of every topic reaches the broker.
              const newest = new Map(ofClass.map((e) => [e.topic, e.id]));
              for (const id of newest.values()) assert.ok(deliveredSet.has(id), `newest state ${id} delivered`);
            }
          } else {
            assert.equal(deliveredOfClass + droppedOfClass, ofClass.length, `${c}: every message delivered or counted as dropped`);
          }
        }
      }),
      { numRuns: 1000 },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
