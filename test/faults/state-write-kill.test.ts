import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { build } from 'esbuild';
import * as z from 'zod';
import { loadJsonState } from '../../agent/state/json-state-file.js';

// Scenario 5: a process replacing a state file is SIGKILLed 1,000 times at random instants
// (inside the write, the fsync, the rename or the directory fsync); after each kill the file
// must load, and hold the last value the writer confirmed or the one it was writing.

// `npm run test:faults` runs the full 1,000; `npm test` a tenth of them: each round starts a
// node process, ~0.1 s on an idle machine but 0.5 s on a loaded CI runner.
const ROUNDS = process.env.TSUNAGU_FAULTS_FULL === '1' ? 1000 : 50;
const StateSchema = z.object({ v: z.literal(1), n: z.number().int(), pad: z.string() }).strict();

/** The writer as one plain JS file: node starts it in tens of ms where tsx would take ten times that. */
async function bundleWriter(dir: string): Promise<string> {
  const outfile = join(dir, 'state-writer.cjs');
  await build({ entryPoints: [join(import.meta.dirname, '../support/state-writer.ts')], outfile, bundle: true, platform: 'node', format: 'cjs', target: 'node18', logLevel: 'warning' });
  return outfile;
}

function runAndKill(writer: string, path: string, first: number, killAfterMs: number): Promise<number | undefined> {
  const child = spawn(process.execPath, [writer, path, String(first)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const ready = !out.includes('READY\n');
    out += chunk;
    if (ready && out.includes('READY\n')) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  });
  return new Promise((resolve) => child.on('exit', () => {
    assert.equal(child.signalCode, 'SIGKILL', 'the writer ran until killed');
    const confirmed = out.split('\n').filter((l) => l.startsWith('W ')).map((l) => Number(l.slice(2)));
    resolve(confirmed.at(-1));
  }));
}

test(`SIGKILL during state writes, ${ROUNDS} times: the state always loads, old or new`, { timeout: 600_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'state-kill-'));
  try {
    const writer = await bundleWriter(root);
    const path = join(root, 'state', 'backoff.json');
    let last: number | undefined;
    let first = 0;
    let killedMidWrite = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const confirmed = await runAndKill(writer, path, first, Math.floor(Math.random() * 12));
      const loaded = loadJsonState(path, StateSchema);
      assert.notEqual(loaded.status, 'corrupt', `round ${round}: ${loaded.status === 'corrupt' ? loaded.error.message : ''}`);
      const previous = confirmed ?? last;
      if (previous === undefined) {
        // Killed before its first write returned: nothing, or that first value.
        assert.ok(loaded.status === 'missing' || (loaded.status === 'ok' && loaded.value.n === first), `round ${round}`);
      } else {
        assert.equal(loaded.status, 'ok', `round ${round}`);
        const n = loaded.status === 'ok' ? loaded.value.n : NaN;
        // The confirmed write, or the next one, which may have reached the rename before the kill.
        const next = confirmed === undefined ? first : confirmed + 1;
        assert.ok(n === previous || n === next, `round ${round}: loaded ${n}, confirmed ${previous}`);
        if (n === next) killedMidWrite++;
      }
      if (loaded.status === 'ok') last = loaded.value.n;
      first = (last ?? first) + 1;
    }
    // Temp files of killed writers may stay behind; they are never loaded and each run uses its own pid.
    assert.equal(readdirSync(join(root, 'state')).filter((n) => n.endsWith('.bad')).length, 0, 'nothing was ever moved aside');
    assert.ok(last !== undefined && last > 0, `the writers made progress (last value ${last})`);
    process.stdout.write(`${killedMidWrite} of ${ROUNDS} kills fell after a write reached the disk and before it was confirmed\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
