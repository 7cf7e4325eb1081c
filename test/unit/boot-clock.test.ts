import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bootClock } from '../../agent/boot-clock.js';

test('boot clock: the kernel boot id and /proc/uptime in ms, read again at each call', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-boot-'));
  try {
    const paths = { bootId: join(dir, 'boot_id'), uptime: join(dir, 'uptime') };
    writeFileSync(paths.bootId, '3f1c9e0a-8c52-4d43-9a2e-64c0d2a1b7e5\n');
    writeFileSync(paths.uptime, '12345.67 40000.01\n');
    const clock = bootClock(paths);
    assert.deepEqual(clock(), { boot: '3f1c9e0a-8c52-4d43-9a2e-64c0d2a1b7e5', ms: 12_345_670 });
    writeFileSync(paths.uptime, '12400.00 40100.00\n');
    assert.deepEqual(clock(), { boot: '3f1c9e0a-8c52-4d43-9a2e-64c0d2a1b7e5', ms: 12_400_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('boot clock without /proc: the agent process stands in for the boot', () => {
  const missing = { bootId: '/nonexistent/boot_id', uptime: '/nonexistent/uptime' };
  const a = bootClock(missing);
  const b = bootClock(missing);
  const first = a();
  assert.match(first.boot, /^process-/);
  assert.notEqual(first.boot, b().boot, 'each process is its own boot');
  assert.ok(a().ms >= first.ms, 'a().ms >= first.ms');
});

test('on this Linux machine the real boot clock reads', () => {
  const now = bootClock()();
  assert.match(now.boot, /^[0-9a-f-]{36}$/);
  assert.ok(now.ms > 0, 'now.ms > 0');
});
