import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { DockerRuntime } from '../../agent/supervisor/docker-runtime.js';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { CONTRACT_LABEL, containerRuntimeContract, type RuntimeWorld } from '../contract/container-runtime.contract.js';
import { engineLink } from '../support/engine-link.js';
import { dockerTestEnv, removeContainers, testDocker, testDockerSocket } from '../support/test-docker.js';

// The ContainerRuntime contract, run against its one real adapter on the test dockerd.

const env = dockerTestEnv();
const docker = testDocker();
const registryImages = [env.images.busybox1, env.images.crash, env.images.unhealthy];

const forgetImage = async (ref: string): Promise<void> => {
  await docker.getImage(ref).remove({ noprune: true }).catch((err: unknown) => {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  });
};

// The files after this one expect the registry's tags absent, as `npm test` leaves them (a supervisor under test really pulls).
after(async () => { for (const ref of registryImages) await forgetImage(ref); });

const world: RuntimeWorld = {
  runtime: new DockerRuntime({ socketPath: testDockerSocket() }),
  images: { idle: env.images.busybox1, crash: env.images.crash, unhealthy: env.images.unhealthy, missing: env.images.missing },
  forgetImage,
  held: async (id) => {
    const info = await docker.getContainer(id).inspect();
    return { restartPolicy: info.HostConfig.RestartPolicy?.Name ?? '', logConfig: info.HostConfig.LogConfig as { Type: string; Config: Record<string, string> } };
  },
  unreachable: () => new DockerRuntime({ socketPath: join(tmpdir(), `tsunagu-no-engine-${randomBytes(4).toString('hex')}.sock`) }),
  severable: async () => {
    const link = engineLink(testDockerSocket());
    await link.up();
    return {
      runtime: new DockerRuntime({ socketPath: link.path }),
      cut: () => link.down(),
      close: async () => { await link.down(); link.close(); },
    };
  },
  cleanUp: async (scope) => {
    await removeContainers(docker, `${CONTRACT_LABEL}=${scope}`);
    const { Volumes } = await docker.listVolumes({ filters: { label: [`${LABELS.scope}=${scope}`] } });
    for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove();
  },
};

containerRuntimeContract('DockerRuntime', () => Promise.resolve(world));
