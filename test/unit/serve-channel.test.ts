import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { callServe } from '../../provisioning/serve-channel/serve-channel-client.js';
import { ServeChannel, type ServeRequestHandler } from '../../provisioning/serve-channel/serve-channel-server.js';
import { SERVE_CHANNEL_VERSION, type ServeReply } from '../../provisioning/serve-channel/serve-channel-wire.js';
import { withDir } from '../support/temp-dirs.js';

const wake = { v: SERVE_CHANNEL_VERSION, verb: 'deployments-changed' } as const;

test('the socket is the owner\'s alone, a request is answered line by line, and a second serve leaves the socket to the first', withDir('serve-channel-', async (dir) => {
  const path = join(dir, 'serve.sock');
  const handled: string[] = [];
  const handler = (name: string): ServeRequestHandler => (request, reply) => {
    handled.push(`${name}:${request.verb}`);
    reply({ kind: 'done' });
    return Promise.resolve();
  };
  const first = new ServeChannel(path, handler('first'), silentLogger());
  const second = new ServeChannel(path, handler('second'), silentLogger());
  try {
    assert.equal(await first.start(), true);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(await second.start(), false);
    const replies: ServeReply[] = [];
    assert.equal(await callServe(path, wake, (r) => replies.push(r)).finished, 'answered');
    assert.deepEqual(replies, [{ kind: 'done' }]);
    assert.deepEqual(handled, ['first:deployments-changed']);
  } finally {
    await second.stop();
    await first.stop();
  }
}));

test('no serve, or a socket left by a dead one: the CLI is told to do the work itself, and a new serve replaces the stale socket', withDir('serve-channel-', async (dir) => {
  const path = join(dir, 'serve.sock');
  assert.equal(await callServe(path, wake, () => undefined).finished, 'unavailable');
  writeFileSync(path, '');
  assert.equal(await callServe(path, wake, () => undefined).finished, 'unavailable');
  const channel = new ServeChannel(path, (_r, reply) => { reply({ kind: 'done' }); return Promise.resolve(); }, silentLogger());
  try {
    assert.equal(await channel.start(), true);
    assert.equal(await callServe(path, wake, () => undefined).finished, 'answered');
  } finally {
    await channel.stop();
  }
}));

test('a malformed request is refused with a typed error, and a failing handler\'s error reaches the CLI', withDir('serve-channel-', async (dir) => {
  const path = join(dir, 'serve.sock');
  const channel = new ServeChannel(path, () => Promise.reject(new Error('boom')), silentLogger());
  try {
    await channel.start();
    const bad: ServeReply[] = [];
    await callServe(path, { v: 2, verb: 'deployments-changed' } as unknown as typeof wake, (r) => bad.push(r)).finished;
    assert.equal(bad[0]?.kind, 'error');
    assert.equal((bad[0] as { code: string }).code, 'MALFORMED');
    const failed: ServeReply[] = [];
    await callServe(path, wake, (r) => failed.push(r)).finished;
    assert.deepEqual(failed.map((r) => r.kind), ['error']);
    assert.match((failed[0] as { message: string }).message, /boom/);
  } finally {
    await channel.stop();
  }
}));
