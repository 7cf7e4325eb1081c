import { loadJsonState, saveJsonState } from '../state/json-state-file.js';
import { backoffStateSchema, type BackoffState } from './restart-backoff.js';
import type { SupervisorLogger } from './supervisor-options.js';

/** Where crash-loop state lives between agent runs (a JSON state file on the device). */
export interface BackoffStore {
  load(): BackoffState | undefined;
  save(state: BackoffState): void;
}

/**
 * Crash-loop state in a JSON file, written atomically, so an agent restart
 * (or a reboot) does not reset a crash-looping service to fast retries. A
 * corrupt file is moved aside and the state starts empty: forgetting a
 * back-off costs a few quick restarts; refusing to start costs the device.
 */
export class FileBackoffStore implements BackoffStore {
  constructor(private readonly path: string, private readonly log?: SupervisorLogger) {}

  load(): BackoffState | undefined {
    const result = loadJsonState(this.path, backoffStateSchema);
    if (result.status === 'ok') return result.value;
    if (result.status === 'corrupt') this.log?.warn({ err: result.error.toJSON() }, 'back-off state was corrupt; starting empty');
    return undefined;
  }

  save(state: BackoffState): void {
    saveJsonState(this.path, state);
  }
}
