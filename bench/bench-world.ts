import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { createTestFleet, type TestFleet } from '../test/support/fleet.js';
import { startMosquitto, type TestBroker } from '../test/support/mosquitto.js';
import { dockerTestEnv, TEST_LABEL, type TestImages } from '../test/support/supervisor-harness.js';
import { whenInterrupted } from './interrupts.js';

/**
 * What every figure runs against: the same real services as the
 * integration tests (a Mosquitto 2 with dynamic security, the private
 * dockerd and local registry started by scripts/bench.mjs), one fleet with
 * its enrollment service, and a work directory. Every container a figure
 * makes carries the test label with this run's value, so that the run
 * removes exactly its own containers.
 */
export interface BenchWorld {
  docker: Docker;
  dockerHost: string;
  images: TestImages;
  broker: TestBroker;
  fleet: TestFleet;
  work: string;
  bootstrapPath: string;
  /** Value of the test label on this run's containers. */
  runLabel: string;
  close(): Promise<void>;
}

export async function openBenchWorld(): Promise<BenchWorld> {
  const env = dockerTestEnv();
  const docker = new Docker({ socketPath: env.dockerHost.replace(/^unix:\/\//, '') });
  const work = mkdtempSync(join(tmpdir(), 'tsunagu-bench-'));
  const broker = await startMosquitto();
  const fleet = await createTestFleet(broker, { fleetId: 'bench' });
  await fleet.startServer();
  const bootstrapPath = join(work, 'bootstrap.json');
  writeFileSync(bootstrapPath, JSON.stringify(fleet.bootstrap));
  const runLabel = `bench-${randomBytes(3).toString('hex')}`;
  const world: BenchWorld = {
    docker, dockerHost: env.dockerHost, images: env.images, broker, fleet, work, bootstrapPath, runLabel,
    close: async () => {
      forget();
      const mine = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${runLabel}`] } });
      await Promise.all(mine.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
      await fleet.close();
      await broker.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
  const forget = whenInterrupted(() => world.close());
  return world;
}
