import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type * as z from 'zod/mini';
import { AgentConfigSchema, loadAgentConfig } from '../../agent/config.js';

// The release archive's default /etc/tsunagu/agent.yaml (packaging/agent.yaml)
// must stay in step with the schema (agent/config.ts) and with docs/agent.md.

const DEFAULT_FILE = 'packaging/agent.yaml';

/** Every key path of an object schema, through defaults, optionals and nullables. */
function keyPaths(schema: z.core.$ZodType, prefix = ''): string[] {
  const def = (schema as unknown as { _zod: { def: { type: string; innerType?: z.core.$ZodType; shape?: Record<string, z.core.$ZodType>; in?: z.core.$ZodType; out?: z.core.$ZodType } } })._zod.def;
  if (def.type === 'default' || def.type === 'optional' || def.type === 'nullable' || def.type === 'prefault') return keyPaths(def.innerType!, prefix);
  if (def.type === 'pipe') return keyPaths(def.out!._zod.def.type === 'transform' ? def.in! : def.out!, prefix);
  if (def.type !== 'object') return [];
  return Object.entries(def.shape!).flatMap(([key, child]) => [`${prefix}${key}`, ...keyPaths(child, `${prefix}${key}.`)]);
}

/** Key paths a YAML text names, as keys or as commented-out `# key: value` lines, by indentation. */
function namedPaths(yaml: string): Set<string> {
  const found = new Set<string>();
  const stack: { indent: number; key: string }[] = [];
  for (const line of yaml.split('\n')) {
    const m = /^(\s*)(#\s*)?([a-zA-Z][a-zA-Z0-9]*):(\s|$)/.exec(line);
    if (m === null) continue;
    const indent = m[1]!.length;
    while (stack.length > 0 && stack.at(-1)!.indent >= indent) stack.pop();
    const path = [...stack.map((s) => s.key), m[3]!].join('.');
    found.add(path);
    if (m[2] === undefined) stack.push({ indent, key: m[3]! });
  }
  return found;
}

function yamlBlockOf(markdown: string): string {
  const block = /```yaml\n([\s\S]*?)```/.exec(markdown);
  assert.ok(block, 'docs/agent.md has a yaml block');
  return block[1]!;
}

test('the default config file parses and changes nothing: every value in it is the default', () => {
  assert.deepEqual(loadAgentConfig(DEFAULT_FILE, {}), AgentConfigSchema.parse({}));
});

test('the default config file names every key of the schema (optional ones commented out)', () => {
  const named = namedPaths(readFileSync(DEFAULT_FILE, 'utf8'));
  const missing = keyPaths(AgentConfigSchema).filter((p) => !named.has(p));
  assert.deepEqual(missing, [], `${DEFAULT_FILE} does not mention these keys`);
});

test('docs/agent.md names every key the default config file sets', () => {
  const documented = namedPaths(yamlBlockOf(readFileSync('docs/agent.md', 'utf8')));
  const missing = [...namedPaths(readFileSync(DEFAULT_FILE, 'utf8'))].filter((p) => keyPaths(AgentConfigSchema).includes(p) && !documented.has(p));
  assert.deepEqual(missing, [], 'docs/agent.md does not mention these keys');
});

test('the key-path extractor sees nesting and commented keys, and the schema walker sees optional keys', () => {
  assert.deepEqual([...namedPaths('a:\n  b: 1\n  # c: 2\nd: 3\n')], ['a', 'a.b', 'a.c', 'd']);
  const paths = keyPaths(AgentConfigSchema);
  for (const p of ['bootstrapFile', 'enrollment.serial', 'runtime.socket', 'pressure.memory.evictBelowBytes', 'watchdog.maxStallMs']) assert.ok(paths.includes(p), p);
});
