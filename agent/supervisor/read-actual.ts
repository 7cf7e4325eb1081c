import type { ActualState } from './actual-state.js';
import type { ContainerRuntime } from './container-runtime.js';

/** The scope's containers and the images that matter: those desired and those the containers run. */
export async function readActualState(runtime: ContainerRuntime, scope: string, desiredImages: readonly string[], signal: AbortSignal): Promise<ActualState> {
  const containers = await runtime.listOwnedContainers(scope, signal);
  const refs = new Set([...desiredImages, ...containers.map((c) => c.image)]);
  const images: ActualState['images'] = {};
  for (const ref of refs) {
    const info = await runtime.inspectImage(ref, signal);
    if (info) images[ref] = info;
  }
  return { containers, images };
}
