import assert from 'node:assert/strict';
import { test } from 'node:test';
import { supervisorServiceControl, type ServiceOperations } from '../../../agent/commands/service-control.js';
import { engineUnknown } from '../../../agent/supervisor/service-report.js';
import { parseDesiredState } from '../../../protocol/compose/compose-schema.js';
import type { SupervisorState } from '../../../agent/supervisor/supervisor.js';
import { TsunaguError } from '../../../protocol/errors.js';

// docs/protocol.md §9.9: the order of the service commands' refusals.
const desired = parseDesiredState({ services: { web: { image: 'web:1' } } }).services;

function control(state: SupervisorState): { ops: string[]; control: ReturnType<typeof supervisorServiceControl> } {
  const ops: string[] = [];
  const desiredOnly = async (op: string, service: string): Promise<void> => {
    ops.push(`${op} ${service}`);
    if (!desired.some((s) => s.name === service)) throw new TsunaguError('UNKNOWN_SERVICE', service);
    await Promise.resolve();
  };
  const operations: ServiceOperations = {
    stopService: (s) => desiredOnly('stop', s), startService: (s) => desiredOnly('start', s), restartService: (s) => desiredOnly('restart', s),
    state: () => state,
  };
  return { ops, control: supervisorServiceControl(operations, () => Promise.resolve(Buffer.from('line\n'))) };
}

const engineDown: SupervisorState = {
  version: '1', status: 'failed', services: engineUnknown([], desired), error: { code: 'RUNTIME_UNAVAILABLE', message: 'down' },
};

test('engine unreadable: a service outside the desired state is UNKNOWN_SERVICE, a desired one RUNTIME_UNAVAILABLE', async () => {
  const { ops, control: c } = control(engineDown);
  for (const run of [(s: string) => c.logs(s, 10, 1000), (s: string) => c.restart(s), (s: string) => c.start(s)]) {
    await assert.rejects(run('nope'), { code: 'UNKNOWN_SERVICE' });
    await assert.rejects(run('web'), { code: 'RUNTIME_UNAVAILABLE' });
  }
  assert.deepEqual(ops, ['restart nope', 'start nope'], 'a desired service is not handed to the supervisor while the engine is unreadable');
});

test('engine readable: a desired service without a container has empty logs; its restart reaches the supervisor', async () => {
  const { ops, control: c } = control({ ...engineDown, status: 'applying', error: null, services: engineDown.services.map((r) => ({ ...r, state: 'pending' })) });
  assert.equal(await c.logs('web', 10, 1000), '');
  await c.restart('web');
  assert.deepEqual(ops, ['restart web']);
});
