import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestFleet, type TestFleet } from './fleet.js';
import { startMosquitto, type TestBroker } from './mosquitto.js';

/** The fleet side of a device test: a real Mosquitto, a fleet on it with its enrollment service running, a work directory. */
export interface FleetWorld {
  broker: TestBroker;
  tf: TestFleet;
  /** A fresh directory for the device's state, bootstrap file and compose files. */
  work: string;
}

/** Start a {@link FleetWorld}; `workPrefix` names the work directory in the temp dir (`tsunagu-<test>-`). */
export async function startFleetWorld(workPrefix: string): Promise<FleetWorld> {
  const broker = await startMosquitto();
  const tf = await createTestFleet(broker);
  await tf.startServer();
  return { broker, tf, work: mkdtempSync(join(tmpdir(), workPrefix)) };
}

/** Stop what {@link startFleetWorld} started; the parts a failed start left undefined are skipped. */
export async function closeFleetWorld(world: Partial<FleetWorld>): Promise<void> {
  await world.tf?.close();
  await world.broker?.close();
  if (world.work !== undefined) rmSync(world.work, { recursive: true, force: true });
}
