import type Docker from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { DockerRuntime } from '../../agent/supervisor/docker-runtime.js';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { inspectListed } from './inspect-listed.js';
import { dockerTestEnv, removeContainers, TEST_LABEL, testDocker, testDockerSocket, type TestImages } from './test-docker.js';
import { waitFor } from './wait-for.js';
import { Supervisor, type SupervisorEvent, type SupervisorOptions, type SupervisorState } from '../../agent/supervisor/supervisor.js';

export { dockerTestEnv, TEST_LABEL, type TestImages } from './test-docker.js';

export interface SupervisorHarness {
  scope: string;
  images: TestImages;
  docker: Docker;
  events: SupervisorEvent[];
  states: SupervisorState[];
  supervisor: Supervisor;
  /** apply(), then wait until idle (pulls done): the state the device settles in. */
  settle(doc: object, version: string): Promise<SupervisorState>;
  /** Stop the current supervisor (containers keep running) and start a fresh one on the same scope. */
  restartSupervisor(): Promise<Supervisor>;
  /** A desired-state document: every service gets network mode `none` and the per-test label unless given. */
  compose(services: Record<string, Record<string, unknown>>): { services: Record<string, Record<string, unknown>> };
  /** This test's containers, inspected, keyed by service. */
  containers(): Promise<Map<string, ContainerInspectInfo[]>>;
  /** The one container of `service`; fails if there are none or several. */
  only(service: string): Promise<ContainerInspectInfo>;
  waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;
  logs(id: string): Promise<string>;
}

/**
 * A supervisor on the real test engine, with a scope of its own (so tests
 * never see each other's containers) and fast back-off for test time.
 * Cleanup, registered on `t`, removes the test's containers by label.
 */
export async function supervisorHarness(
  t: TestContext, name: string, overrides: Partial<SupervisorOptions> = {}, engine: { socketPath?: string } = {},
): Promise<SupervisorHarness> {
  const env = dockerTestEnv();
  // Another engine than the shared one: a test that restarts its engine runs one of its own.
  const socketPath = engine.socketPath ?? testDockerSocket();
  const docker = testDocker(socketPath);
  const scope = `t-${name}-${randomBytes(3).toString('hex')}`;
  // Each test pulls for real: drop the registry tags a previous test pulled (the layers stay, so it is quick).
  for (const ref of Object.values(env.images).filter((r) => r.startsWith(`${env.registry}/`))) {
    await docker.getImage(ref).remove({ noprune: true }).catch(() => undefined);
  }
  const events: SupervisorEvent[] = [];
  const states: SupervisorState[] = [];
  const make = (): Supervisor => {
    const s = new Supervisor({
      runtime: new DockerRuntime({ socketPath }),
      scope,
      onEvent: (e) => events.push(e),
      onState: (st) => states.push(st),
      restartBackoff: { initialDelayMs: 1000, maxDelayMs: 4000, resetAfterMs: 60_000 },
      pullBackoff: { initialDelayMs: 500, maxDelayMs: 2000, resetAfterMs: 0 },
      ...overrides,
    });
    s.start();
    return s;
  };
  const harness: SupervisorHarness = {
    scope,
    images: env.images,
    docker,
    events,
    states,
    supervisor: make(),
    settle: async (doc, version) => {
      await harness.supervisor.apply(doc, version);
      await harness.supervisor.idle();
      return harness.supervisor.state();
    },
    restartSupervisor: async () => {
      await harness.supervisor.stop();
      harness.supervisor = make();
      return harness.supervisor;
    },
    compose: (services) => ({
      services: Object.fromEntries(Object.entries(services).map(([k, v]) => [k, {
        network_mode: 'none', ...v, labels: { [TEST_LABEL]: scope, ...(v.labels as Record<string, string> | undefined) },
      }])),
    }),
    containers: async () => {
      const out = new Map<string, ContainerInspectInfo[]>();
      for (const info of await inspectListed(docker, [`${TEST_LABEL}=${scope}`])) {
        const service = info.Config.Labels[LABELS.service] ?? '';
        out.set(service, [...(out.get(service) ?? []), info]);
      }
      return out;
    },
    only: async (service) => {
      const found = (await harness.containers()).get(service) ?? [];
      if (found.length !== 1) throw new Error(`expected one container of ${service}, found ${found.length}`);
      return found[0] as ContainerInspectInfo;
    },
    waitFor: async (what, check, timeoutMs = 15_000) => { await waitFor(what, check, timeoutMs); },
    logs: async (id) => {
      // Without a TTY the engine frames each chunk: 1 byte stream, 3 zero bytes, 4 bytes length.
      const buf = Buffer.from(await docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false }));
      let out = '';
      for (let i = 0; i + 8 <= buf.length; i += 8 + buf.readUInt32BE(i + 4)) out += buf.subarray(i + 8, i + 8 + buf.readUInt32BE(i + 4)).toString('utf8');
      return out;
    },
  };
  t.after(async () => {
    await harness.supervisor.stop();
    await removeContainers(docker, `${TEST_LABEL}=${scope}`);
  });
  return harness;
}
