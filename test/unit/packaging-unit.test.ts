import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

// The agent exits 78 when only a person can help (a bad config, no usable
// bootstrap file; test/faults/state-corruption.test.ts shows it with the real
// agent). The unit must not restart it into the same refusal every 5 s.
const EXIT_NEEDS_A_PERSON = 78;

function directives(unitText: string, key: string): string[] {
  return unitText.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1).trim());
}

test('the systemd unit restarts on failure, except on the exit that needs a person', () => {
  const unit = readFileSync(new URL('../../packaging/tsunagu-agent.service', import.meta.url), 'utf8');
  assert.deepEqual(directives(unit, 'Restart'), ['on-failure']);
  const prevented = directives(unit, 'RestartPreventExitStatus').flatMap((v) => v.split(/\s+/));
  assert.ok(prevented.includes(String(EXIT_NEEDS_A_PERSON)), `RestartPreventExitStatus lists ${prevented.join(' ') || 'nothing'}`);
});

test('the unit starts the agent with the node flags and environment the bench measures (scripts/agent-launch.mjs)', async () => {
  const { AGENT_ENVIRONMENT, AGENT_NODE_FLAGS } = await import('../../scripts/agent-launch.mjs');
  const unit = readFileSync(new URL('../../packaging/tsunagu-agent.service', import.meta.url), 'utf8');
  const [execStart] = directives(unit, 'ExecStart');
  const words = (execStart ?? '').split(/\s+/);
  assert.equal(words[0], '/usr/bin/node');
  const flags = words.slice(1, words.findIndex((w) => w.endsWith('tsunagu-agent.js')));
  assert.deepEqual(flags, AGENT_NODE_FLAGS);
  const environment = Object.fromEntries(directives(unit, 'Environment').map((e) => e.split('=', 2) as [string, string]));
  assert.deepEqual(environment, AGENT_ENVIRONMENT);
});
