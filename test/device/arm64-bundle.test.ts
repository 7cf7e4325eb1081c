import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InventoryReportSchema } from '../../protocol/reports.js';
import { AGENT_BUNDLE, AgentProcess, FAST_TEST_CONFIG } from '../support/agent-process.js';
import { chrootCommand, debianRoot, debianRootTools } from '../support/debian-root.js';
import { createTestFleet, type TestFleet } from '../support/fleet.js';
import { fleetSession } from '../support/fleet-session.js';
import { startMosquitto, type TestBroker } from '../support/mosquitto.js';

// The same bundle on an arm64 Debian 12 (Raspberry Pi OS 12's base) with its
// own nodejs 18, under qemu-user-static: it enrolls against the host's broker
// (the chroot shares the host's network, so 127.0.0.1 is the host) and
// reports arm64. Slow under emulation: `npm run test:device`.

const problem = debianRootTools('arm64');
const skip = problem === null ? false : `cannot run arm64 here: ${problem.missing}`;

let root: string;
let work: string;
let broker: TestBroker;
let tf: TestFleet;

before(async () => {
  if (skip !== false) return;
  root = debianRoot('arm64');
  work = mkdtempSync(join(root, 'tmp', 'tsunagu-arm64-'));
  broker = await startMosquitto();
  tf = await createTestFleet(broker);
  await tf.startServer();
});

after(async () => {
  if (skip !== false) return;
  rmSync(work, { recursive: true, force: true });
  await tf?.close();
  await broker?.close();
});

// Its own limit stays below the file's (180 s, scripts/run-tests.mjs): a timeout names this test.
test('the agent bundle on arm64 Debian 12 with its nodejs 18 enrolls against the host broker and reports arm64', { skip, timeout: 170_000 }, async () => {
  const dir = work.slice(root.length);
  copyFileSync(AGENT_BUNDLE, join(work, 'tsunagu-agent.js'));
  writeFileSync(join(work, 'bootstrap.json'), JSON.stringify(tf.bootstrap));
  writeFileSync(join(work, 'agent.yaml'), FAST_TEST_CONFIG);
  const { command, args } = chrootCommand(root, ['node', `${dir}/tsunagu-agent.js`, 'run', '--state-dir', `${dir}/state`, '--config', `${dir}/agent.yaml`,
    '--bootstrap', `${dir}/bootstrap.json`, '--startup-jitter', '0', '--serial', 'arm64-test-board', '--log-level', 'debug']);
  const agent = new AgentProcess({ stateDir: `${dir}/state`, launch: { command, args } });
  try {
    const starting = await agent.waitForMsg('starting', 90_000);
    assert.match(String(starting.node), /^v18\./);
    const deviceId = String((await agent.waitForMsg('enrolled', 90_000)).deviceId);
    const fleet = await fleetSession(tf, broker.url);
    try {
      let inventory: unknown;
      // The inventory is retained: whenever the agent sent it, the watch sees it.
      await fleet.link.watch(deviceId, ['inventory'], (r) => { inventory = JSON.parse(r.payload.toString()); });
      await agent.waitForMsg(/→ online/, 60_000);
      const deadline = Date.now() + 60_000;
      while (inventory === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      assert.ok(inventory !== undefined, 'no inventory report within 60 s of going online');
      assert.equal(InventoryReportSchema.parse(inventory).arch, 'arm64');
    } finally {
      await fleet.close();
    }
  } finally {
    await agent.stop();
  }
});
