import Docker from 'dockerode';
import { defaultSocket } from './engine-errors.js';

/**
 * The agent's one connection settings to the container engine: main.ts builds
 * it once and hands it to every dockerode adapter (DockerRuntime,
 * DockerImages, the doctor's engine check), so they all talk to the same
 * socket. Requests are separate HTTP calls on it; nothing is shared but the
 * settings and the agent.
 */
export function dockerClient(socketPath: string = defaultSocket()): Docker {
  return new Docker({ socketPath });
}

/** An adapter's engine: the shared client, or (tests) a socket to open one on. */
export interface DockerClientChoice {
  /** The client main.ts built. */
  docker?: Docker;
  /** Unix socket of the engine, when no client is given; default: DOCKER_HOST when it names a unix socket, else /var/run/docker.sock. */
  socketPath?: string;
}

export function dockerOf(choice: DockerClientChoice): Docker {
  return choice.docker ?? dockerClient(choice.socketPath);
}
