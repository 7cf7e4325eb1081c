// Child process for the outbox crash test: enqueues numbered messages as fast
// as it can and prints each id once enqueue() has returned ("S <id>") and once
// an ack has returned ("A <id>"), until the parent SIGKILLs it.
// Usage: outbox-writer.ts <dir> <maxBytes> <class> <ackBatch>
import { writeSync } from 'node:fs';
import { Outbox } from '../../agent/link/outbox.js';
import type { MessageClass } from '../../agent/link/outbox.js';

const [dir, maxBytes, cls, ackBatch] = process.argv.slice(2);
const outbox = Outbox.open({ dir: dir!, maxBytes: Number(maxBytes), ackBatch: Number(ackBatch) });
const first = outbox.peek();
let id = first === undefined ? 0 : 1_000_000; // a restarted writer must not reuse ids
writeSync(1, 'READY\n');
for (;;) {
  outbox.enqueue({ topic: `t/${id % 3}`, payload: Buffer.from(`${id}:${'p'.repeat(id % 97)}`), qos: 1, retain: false, class: cls as MessageClass });
  writeSync(1, `S ${id}\n`);
  if (id % 5 === 4) {
    const head = outbox.peek();
    if (head) {
      outbox.ack(head.seq);
      writeSync(1, `A ${Buffer.from(head.payload).toString().split(':')[0]}\n`);
    }
  }
  id++;
}
