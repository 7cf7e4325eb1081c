import type { ReportedState } from '../../../protocol/desired.js';

type ReportedService = ReportedState['services'][number];

/** A running service with nothing wrong; override what the case is about. */
export function service(name: string, over: Partial<ReportedService> = {}): ReportedService {
  return { name, image: `registry.local/${name}:1`, imageDigest: null, state: 'running', health: 'none', restartCount: 0, lastExitCode: null, lastError: null, ...over };
}

/** A device's retained `state` report; synced on nothing unless told otherwise. */
export function reported(over: Partial<ReportedState> = {}): ReportedState {
  return { v: 1, at: 1, desiredVersion: null, appliedVersion: null, status: 'synced', error: null, services: [], ...over };
}
