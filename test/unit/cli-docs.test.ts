import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderCliReference, withCliReference } from '../../provisioning/cli-reference.js';
import { buildFleetProgram } from '../../provisioning/fleet-program.js';

test('docs/cli.md holds the real --help output of every tsunagu-fleet command (npm run docs:cli)', () => {
  const doc = readFileSync('docs/cli.md', 'utf8');
  assert.equal(withCliReference(doc), doc, 'docs/cli.md is out of date: run npm run docs:cli');
});

test('every command has examples in its help, and every listing command offers --json', () => {
  const reference = renderCliReference();
  for (const command of buildFleetProgram().commands) {
    const section = reference.split(`### \`tsunagu-fleet ${command.name()} --help\``)[1]?.split('### ')[0] ?? '';
    assert.match(section, /Examples?:\n {2}tsunagu-fleet /, `${command.name()} --help has no example`);
  }
  for (const name of ['devices', 'status', 'watch', 'send', 'deploy']) {
    const command = buildFleetProgram().commands.find((c) => c.name() === name);
    assert.ok(command?.options.some((o) => o.long === '--json'), `${name} has no --json`);
  }
});
