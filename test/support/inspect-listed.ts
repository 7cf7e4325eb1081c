import type Docker from 'dockerode';
import type { ContainerInspectInfo } from 'dockerode';

/**
 * The containers carrying every one of `labels`, inspected. A listing is a
 * snapshot: the supervisor under test may remove a listed container before its
 * inspection (a replacement, a rollback), which the engine answers with 404.
 * Such a container is no longer there, so it is left out rather than failing
 * the test on a race the test did not mean to observe.
 */
export async function inspectListed(docker: Docker, labels: string[]): Promise<ContainerInspectInfo[]> {
  const list = await docker.listContainers({ all: true, filters: { label: labels } });
  const found = await Promise.all(list.map((c) => docker.getContainer(c.Id).inspect().catch((err: unknown) => {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  })));
  return found.filter((info): info is ContainerInspectInfo => info !== undefined);
}
