import type Docker from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';

/**
 * Inspect a container found in a listing, or undefined when it is gone. A
 * listing is a snapshot: the supervisor under test may remove a listed
 * container before its inspection (a replacement, a rollback), which the
 * engine answers with 404. Such a container is no longer there, so it is
 * left out rather than failing the test on a race the test did not mean to
 * observe.
 */
export async function inspectIfPresent(docker: Docker, id: string): Promise<ContainerInspectInfo | undefined> {
  return docker.getContainer(id).inspect().catch((err: unknown) => {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  });
}

/** The containers carrying every one of `labels`, inspected; those removed since the listing are left out. */
export async function inspectListed(docker: Docker, labels: string[]): Promise<ContainerInspectInfo[]> {
  const list = await docker.listContainers({ all: true, filters: { label: labels } });
  const found = await Promise.all(list.map((c) => inspectIfPresent(docker, c.Id)));
  return found.filter((info): info is ContainerInspectInfo => info !== undefined);
}
