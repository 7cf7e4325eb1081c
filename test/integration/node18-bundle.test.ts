import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InventoryReportSchema } from '../../protocol/reports.js';
import { AGENT_BUNDLE, AgentProcess } from '../support/agent-process.js';
import { debianNode18 } from '../support/debian-node18.js';
import { fleetSession } from '../support/fleet-session.js';
import { waitFor } from '../support/wait-for.js';
import { closeFleetWorld, startFleetWorld, type FleetWorld } from '../support/fleet-world.js';

// The agent bundle on the Node.js a Debian 12 / Raspberry Pi OS 12 device
// has out of the box: nodejs 18 from Debian's own packages.
let world: FleetWorld;

before(async () => {
  world = await startFleetWorld('tsunagu-node18-');
});

after(async () => {
  await closeFleetWorld(world);
});

test('the agent bundle, alone in a directory, enrolls, answers a signed command and reports on Debian 12\'s nodejs 18', async () => {
  const node = debianNode18();
  const { bootstrapPath } = world;
  // One file and nothing beside it: no node_modules up the tree from here.
  const bundle = join(world.work, 'tsunagu-agent.js');
  copyFileSync(AGENT_BUNDLE, bundle);
  const agent = new AgentProcess({ stateDir: join(world.work, 'device'), bootstrapPath, node, bundle });
  try {
    const starting = await agent.waitForMsg('starting', 20_000);
    assert.match(String(starting.node), /^v18\./);
    const deviceId = await agent.enrolledAndOnline(20_000);
    const fleet = await fleetSession(world.tf, world.broker.url);
    try {
      let inventory: unknown;
      await fleet.link.watch(deviceId, ['inventory'], (r) => { inventory = JSON.parse(r.payload.toString()); });
      const reply = await fleet.link.send(deviceId, { name: 'ping', args: {} }, { timeoutMs: 10_000 });
      assert.equal(reply.data.ok, true);
      assert.equal(InventoryReportSchema.parse(await waitFor('the inventory report', () => inventory, 10_000)).arch, 'amd64');
    } finally {
      await fleet.close();
    }
  } finally {
    await agent.stop();
  }
});
