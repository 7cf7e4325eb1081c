// Child process for the state-write crash test: replaces one JSON state file
// through saveJsonState as fast as it can, printing "W <n>" once write n has
// returned, until the parent SIGKILLs it. Each value has its own size, so a
// torn write cannot pass for a whole one.
// Usage: state-writer <path> <first n>
import { writeSync } from 'node:fs';
import { saveJsonState } from '../../agent/state/json-state-file.js';

const [path, first] = process.argv.slice(2);
writeSync(1, 'READY\n');
for (let n = Number(first); ; n++) {
  saveJsonState(path!, { v: 1, n, pad: 'x'.repeat((n * 7919) % 6000) });
  writeSync(1, `W ${n}\n`);
}
