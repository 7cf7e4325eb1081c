import { join } from 'node:path';
import type { ServiceReport, OverallStatus } from '../supervisor/service-report.js';
import { readFileIfExists, writeFileAtomic } from '../../common/atomic-file.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import { AgentStatusSchema, initialStatus, withError, type AgentStatus, type StatusErrorEntry } from './agent-status.js';

export const STATUS_FILE = 'status.json';

export function statusPath(stateDir: string): string {
  return join(stateDir, STATUS_FILE);
}

/**
 * The running agent's status file: updated in memory on every event, written
 * (atomically) only when what it says changed — a supervisor pass that finds
 * everything as it was writes nothing.
 */
export class StatusFile {
  private status: AgentStatus;
  private written: string | undefined;

  constructor(private readonly path: string, agentVersion: string, private readonly now: () => number = Date.now) {
    this.status = initialStatus(agentVersion, process.pid, now());
    this.flush();
  }

  identity(identity: AgentStatus['identity']): void {
    this.update({ ...this.status, identity });
  }

  link(state: string): void {
    if (state === this.status.link.state) return;
    this.update({ ...this.status, link: { state, since: this.now() } });
  }

  workload(state: { version: string | null; status: OverallStatus; services: ServiceReport[]; error: { code: string; message: string } | null }): void {
    this.update({
      ...this.status,
      workload: { version: state.version, status: state.status, error: state.error },
      services: state.services.map((s) => ({ name: s.name, image: s.image, state: s.state, health: s.health, restartCount: s.restartCount, lastError: s.lastError })),
    });
  }

  error(entry: StatusErrorEntry): void {
    this.update({ ...this.status, lastErrors: withError(this.status.lastErrors, entry) });
  }

  private update(next: AgentStatus): void {
    this.status = next;
    this.flush();
  }

  private flush(): void {
    const text = `${JSON.stringify(this.status, null, 1)}\n`;
    if (text === this.written) return;
    try {
      writeFileAtomic(this.path, text);
      this.written = text;
    } catch {
      // A full disk must not take the agent down for the sake of its status display; the next change tries again.
    }
  }
}

export type StatusRead =
  | { status: 'ok'; value: AgentStatus }
  | { status: 'missing' }
  | { status: 'unreadable'; message: string };

/**
 * Read by `tsunagu-agent status`: a file from another process, checked like
 * any input, and never moved aside (the agent owns it).
 */
export function readStatusFile(stateDir: string): StatusRead {
  const path = statusPath(stateDir);
  try {
    const bytes = readFileIfExists(path);
    if (bytes === undefined) return { status: 'missing' };
    return { status: 'ok', value: checkSchema(AgentStatusSchema, parseJsonBytes(bytes), path) };
  } catch (err) {
    return { status: 'unreadable', message: (err as Error).message };
  }
}
