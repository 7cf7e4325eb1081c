import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DockerRuntime } from '../../agent/supervisor/docker-runtime.js';
import { engineLink } from '../support/engine-link.js';
import { dockerTestEnv, supervisorHarness } from '../support/supervisor-harness.js';

test('an unreachable engine is reported as failed; when it comes back, the supervisor recovers and follows events again', async (t) => {
  const link = engineLink(dockerTestEnv().dockerHost.slice('unix://'.length));
  t.after(async () => { await link.down(); link.close(); });
  const h = await supervisorHarness(t, 'engine', { runtime: new DockerRuntime({ socketPath: link.path }) });
  const doc = h.compose({ web: { image: h.images.busybox1, restart: 'always' } });

  const down = await h.settle(doc, 'v1');
  assert.equal(down.status, 'failed');
  assert.equal(down.error?.code, 'RUNTIME_UNAVAILABLE');
  // Down since the start: every desired service is still listed, as unknown (protocol.md §9.8).
  assert.deepEqual(down.services.map((s) => [s.name, s.state, s.image, s.containerId]), [['web', 'unknown', h.images.busybox1, null]]);

  // Back up: the retry timer (1 s) brings the deployment without a new apply().
  await link.up();
  await h.waitFor('web to run', () => h.supervisor.state().services[0]?.state === 'running', 10_000);
  await h.supervisor.idle();
  assert.equal(h.supervisor.state().status, 'synced');
  assert.equal(h.supervisor.state().error, null);

  // The link drops (the event stream with it) and returns; a removal made meanwhile is noticed.
  const first = await h.only('web');
  await link.down();
  await h.docker.getContainer(first.Id).remove({ force: true });
  await link.up();
  await h.waitFor('web to be restored after the event stream reconnected', async () => {
    const web = (await h.containers()).get('web') ?? [];
    return web.length === 1 && web[0]?.Id !== first.Id && web[0]?.State.Running === true;
  }, 10_000);
});
