import { TsunaguError } from '../../protocol/errors.js';
import type { ServiceControl } from './handlers.js';
import type { SupervisorState } from '../supervisor/supervisor.js';

/** The supervisor's operator controls, as the service commands use them. */
export interface ServiceOperations {
  stopService(service: string): Promise<void>;
  startService(service: string): Promise<void>;
  restartService(service: string): Promise<void>;
  state(): SupervisorState;
}

/** The engine's log reader (DockerRuntime.containerLogs): demultiplexed output, last `tail` lines. */
export type ContainerLogReader = (containerId: string, tail: number) => Promise<Buffer>;

/**
 * `restart`, `stop`, `start` and `logs` over the supervisor. A stop is a hold
 * in the supervisor (the reconcile loop keeps the service down) and is
 * persisted by the supervisor's owner through `onHeldChange`.
 */
export function supervisorServiceControl(ops: ServiceOperations, readLogs: ContainerLogReader): ServiceControl {
  // A name outside the desired state is UNKNOWN_SERVICE first, engine or not; a
  // desired service while the engine cannot be read (reported `unknown`) is
  // RUNTIME_UNAVAILABLE, never a "no container" the engine was not asked about.
  const engineReadable = (service: string): void => {
    if (ops.state().services.find((s) => s.name === service)?.state === 'unknown') {
      throw new TsunaguError('RUNTIME_UNAVAILABLE', `the container engine cannot be read; service ${service} is unknown`);
    }
  };
  return {
    restart: async (service) => { engineReadable(service); await ops.restartService(service); },
    stop: (service) => ops.stopService(service),
    start: async (service) => { engineReadable(service); await ops.startService(service); },
    logs: async (service, lines, maxBytes) => {
      const report = ops.state().services.find((s) => s.name === service);
      if (report === undefined) throw new TsunaguError('UNKNOWN_SERVICE', `service ${service} is not part of the desired state`);
      engineReadable(service);
      if (report.containerId === null) return '';
      return lastBytes(await readLogs(report.containerId, lines), maxBytes);
    },
  };
}

/**
 * The end of `text`, at most `maxBytes` bytes of UTF-8: when cut, it starts at
 * a line boundary, so that no line (and no multi-byte character) is torn.
 */
export function lastBytes(text: Buffer, maxBytes: number): string {
  if (text.length <= maxBytes) return text.toString('utf8');
  const tail = text.subarray(text.length - maxBytes);
  const nl = tail.indexOf(0x0a);
  if (nl >= 0 && nl < tail.length - 1) return tail.subarray(nl + 1).toString('utf8');
  // One line longer than the bound: cut at a character boundary (skip UTF-8 continuation bytes).
  let start = 0;
  while (start < tail.length && ((tail[start] ?? 0) & 0xc0) === 0x80) start += 1;
  return tail.subarray(start).toString('utf8');
}
