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
