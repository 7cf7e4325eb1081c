import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { silentLogger } from '../../../common/logger.js';
import { SystemdNotifier } from '../../../agent/watchdog/systemd-notifier.js';

// The adapter's own logic — arguments, merging behind a slow send, a missing
// binary — with a stand-in script for systemd-notify that records its argv
// and environment. The real binary and a real socket: test/integration/systemd-watchdog.test.ts.
let dir: string;
let binary: string;
let log: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'notifier-'));
  binary = join(dir, 'systemd-notify');
  log = join(dir, 'calls');
  writeFileSync(binary, `#!/bin/sh\nprintf '%s|' "$NOTIFY_SOCKET" "$@" >> '${log}'\necho >> '${log}'\nsleep 0.2\n`);
  chmodSync(binary, 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const calls = (): string[] => readFileSync(log, 'utf8').trim().split('\n');

test('root sends with --no-block; one process per message; a newline cannot forge a field', async () => {
  const n = new SystemdNotifier({ socket: '/run/n.sock', asRoot: true, logger: silentLogger(), binary });
  await n.send({ READY: '1', STATUS: 'line one\nWATCHDOG=1' });
  assert.deepEqual(calls(), ['/run/n.sock|--no-block|READY=1|STATUS=line one WATCHDOG=1|']);
});

test('not root: the blocking form (barrier)', async () => {
  const n = new SystemdNotifier({ socket: '/run/n.sock', asRoot: false, logger: silentLogger(), binary });
  await n.send({ WATCHDOG: '1' });
  assert.deepEqual(calls(), ['/run/n.sock|WATCHDOG=1|']);
});

test('messages sent while one runs are merged into one, the newest value winning', async () => {
  const n = new SystemdNotifier({ socket: '/s', asRoot: true, logger: silentLogger(), binary });
  const first = n.send({ WATCHDOG: '1', STATUS: 'a' });
  const second = n.send({ STATUS: 'b' });
  const third = n.send({ WATCHDOG: '1', STATUS: 'c' });
  await Promise.all([first, second, third]);
  assert.deepEqual(calls(), ['/s|--no-block|WATCHDOG=1|STATUS=a|', '/s|--no-block|STATUS=c|WATCHDOG=1|']);
});

test('a missing binary turns notifications off instead of failing every few seconds', async () => {
  const warnings: string[] = [];
  const logger = { ...silentLogger(), warn: (_o: unknown, msg?: string) => { warnings.push(String(msg)); } } as unknown as ReturnType<typeof silentLogger>;
  const n = new SystemdNotifier({ socket: '/s', asRoot: true, logger, binary: join(dir, 'absent') });
  await n.send({ READY: '1' });
  await n.send({ WATCHDOG: '1' });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /systemd-notify is not installed/);
});
