import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { test } from 'node:test';
import { supervisorHarness } from '../support/supervisor-harness.js';

/**
 * A registry front on loopback that holds every manifest request for
 * `delayMs` before passing it to the real registry: a slow pull, for real.
 */
async function slowRegistry(upstream: string, delayMs: number): Promise<{ host: string; server: Server }> {
  const [upHost = '', upPort = ''] = upstream.split(':');
  const server = createServer((req, res) => {
    const forward = (): void => {
      const up = request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (process.env.TSUNAGU_TEST_VERBOSE) console.log(Date.now(), req.method, req.url);
    if (req.url?.includes('/manifests/')) setTimeout(forward, delayMs);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { host: `127.0.0.1:${port}`, server };
}

test('a slow pull neither delays apply() nor blocks restoring another service', async (t) => {
  // A hand-removed container's kill counts as a crash: keep that back-off short here.
  const h = await supervisorHarness(t, 'slowpull', { restartBackoff: { initialDelayMs: 200, maxDelayMs: 1000, resetAfterMs: 60_000 } });
  const { host, server } = await slowRegistry(h.images.busybox2.split('/')[0] ?? '', 4000);
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const slowRef = h.images.busybox2.replace(/^[^/]+/, host);
  t.after(() => h.docker.getImage(slowRef).remove({ noprune: true }).catch(() => undefined));

  await h.settle(h.compose({ a: { image: h.images.busybox1, restart: 'always' }, b: { image: h.images.busybox1, restart: 'always' } }), 'v1');
  const oldA = await h.only('a');
  const oldB = await h.only('b');

  const began = Date.now();
  const state = await h.supervisor.apply(h.compose({ a: { image: slowRef, restart: 'always' }, b: { image: h.images.busybox1, restart: 'always' } }), 'v2');
  assert.ok(Date.now() - began < 2000, 'apply() returned before the pull finished');
  const a = state.services.find((s) => s.name === 'a');
  assert.deepEqual(a && [a.state, a.outdated, a.containerId], ['pulling', true, oldA.Id]);
  assert.equal(state.status, 'applying');

  // While a's image downloads, b is removed by hand and comes back.
  await h.docker.getContainer(oldB.Id).remove({ force: true });
  await h.waitFor('b restored', async () => ((await h.containers()).get('b') ?? []).some((c) => c.State.Running && c.Id !== oldB.Id), 3000);
  assert.equal(h.supervisor.state().services.find((s) => s.name === 'a')?.state, 'pulling', 'the pull was still running');
  assert.equal((await h.only('a')).Id, oldA.Id, 'the old a kept running during the pull');

  await h.supervisor.idle();
  const newA = await h.only('a');
  assert.notEqual(newA.Id, oldA.Id);
  assert.equal(newA.Config.Image, slowRef);
  assert.equal(h.supervisor.state().status, 'synced');
});
