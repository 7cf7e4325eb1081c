import assert from 'node:assert/strict';
import { test } from 'node:test';
import { supervisorHarness } from '../support/supervisor-harness.js';

// The agent starts from the facts it kept at its last start and reads the
// machine again in the background (agent/resources/facts-cache.ts). When the
// labels differ (an accelerator plugged in or removed while it was down),
// the supervisor places the services again.
test('device labels changed at run time: a service whose label appears starts, one whose label goes is taken down', async (t) => {
  const h = await supervisorHarness(t, 'labels', { deviceLabels: ['arch=amd64'] });
  const service = (requires: string[]): Record<string, unknown> => ({
    image: h.images.busybox1, restart: 'always', command: ['sleep', '1000000'], 'x-tsunagu': { requires },
  });
  const state = await h.settle(h.compose({ plain: service([]), npu: service(['accelerator.npu=true']) }), 'v1');
  assert.equal(state.services.find((s) => s.name === 'npu')?.state, 'not-deployed');
  assert.equal((await h.containers()).has('npu'), false);
  const plain = await h.only('plain');

  h.supervisor.setDeviceLabels(['arch=amd64', 'accelerator.npu=true']);
  await h.waitFor('the npu service to run', async () => (await h.containers()).get('npu')?.[0]?.State.Running === true);
  assert.equal((await h.only('plain')).Id, plain.Id, 'the other service is left alone');

  h.supervisor.setDeviceLabels(['arch=amd64']);
  await h.waitFor('the npu service to go', async () => !(await h.containers()).has('npu'));
  await h.supervisor.idle();
  assert.equal(h.supervisor.state().services.find((s) => s.name === 'npu')?.state, 'not-deployed');
  assert.equal((await h.only('plain')).Id, plain.Id);
});
