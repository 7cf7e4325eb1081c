import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AGENT_BUNDLE } from '../support/agent-process.js';

// The shipped agent never generates code: zod would compile each object
// schema into a function (source and bytecode kept for the process's life)
// unless told not to before the schema is built (agent/zod-jitless.ts).
// A preload counts every function made from a string, through the global
// Function constructor, which zod's code generator uses.
const COUNTER = `
const F = globalThis.Function; let made = 0;
globalThis.Function = new Proxy(F, {
  construct(t, a, nt) { made++; return Reflect.construct(t, a, nt); },
  apply(t, self, a) { made++; return Reflect.apply(t, self, a); },
});
process.on('exit', () => process.stderr.write('GENERATED_FUNCTIONS=' + made + '\\n'));
`;

let work: string;
let counter: string;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'tsunagu-jitless-'));
  counter = join(work, 'count-generated.cjs');
  writeFileSync(counter, COUNTER);
});

after(() => rmSync(work, { recursive: true, force: true }));

function generated(args: string[], cwd?: string): number {
  const r = spawnSync(process.execPath, ['--require', counter, ...args], { encoding: 'utf8', cwd });
  const m = /GENERATED_FUNCTIONS=(\d+)/.exec(r.stderr);
  assert.ok(m, `no count in stderr: ${r.stderr}`);
  return Number(m[1]);
}

test('the counter sees zod generating a parser when nothing tells it not to', () => {
  const script = "const z = require('zod'); z.object({ a: z.string(), b: z.number() }).parse({ a: 'x', b: 1 });";
  assert.ok(generated(['-e', script], process.cwd()) > 0, "generated(['-e', script], process.cwd()) > 0");
});

test('the agent bundle parses its config (an object schema) without generating a function', () => {
  const config = join(work, 'agent.yaml');
  writeFileSync(config, `stateDir: ${join(work, 'state')}\nlogLevel: warn\nreports: { metricsIntervalMs: 30000 }\n`);
  const r = spawnSync(process.execPath, ['--require', counter, AGENT_BUNDLE, 'status', '--json', '--config', config], { encoding: 'utf8' });
  assert.match(r.stdout, /"running":false/, r.stderr);
  assert.equal(Number(/GENERATED_FUNCTIONS=(\d+)/.exec(r.stderr)?.[1]), 0, r.stderr);
});
