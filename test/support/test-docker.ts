import Docker from 'dockerode';

/** The label scripts/test-services.mjs cleans up by; every test container carries it. */
export const TEST_LABEL = 'tsunagu.test';

/**
 * busybox1/2: idle, printing /VERSION (1 or 2); crash: exits 3 after 0.2 s; unhealthy: its healthcheck
 * fails; missing: a tag the registry lacks; local: busybox1's content under a tag only the engine has.
 */
export type TestImages = Record<'busybox1' | 'busybox2' | 'crash' | 'unhealthy' | 'missing' | 'local', string>;

/** The dockerd, registry and images started by `npm test` (scripts/test-services.mjs). */
export function dockerTestEnv(): { dockerHost: string; registry: string; images: TestImages } {
  const { DOCKER_HOST, TSUNAGU_TEST_REGISTRY, TSUNAGU_TEST_IMAGES } = process.env;
  if (!DOCKER_HOST?.startsWith('unix://') || !TSUNAGU_TEST_REGISTRY || !TSUNAGU_TEST_IMAGES) {
    throw new Error('DOCKER_HOST, TSUNAGU_TEST_REGISTRY and TSUNAGU_TEST_IMAGES are not set: run the integration tests through `npm test`');
  }
  return { dockerHost: DOCKER_HOST, registry: TSUNAGU_TEST_REGISTRY, images: JSON.parse(TSUNAGU_TEST_IMAGES) as TestImages };
}

/** The socket of the test dockerd that `npm test` names in DOCKER_HOST (`unix://…`). */
export function testDockerSocket(): string {
  return dockerTestEnv().dockerHost.slice('unix://'.length);
}

/** A client of the test dockerd, or of another engine's socket (a test that runs its own engine). */
export function testDocker(socketPath = testDockerSocket()): Docker {
  return new Docker({ socketPath });
}

/**
 * Remove every container carrying `label` (`key=value`: a test's scope or test label), running or
 * not, with its anonymous volumes. A clean-up: a container gone meanwhile is no error.
 */
export async function removeContainers(docker: Docker, label: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
}
