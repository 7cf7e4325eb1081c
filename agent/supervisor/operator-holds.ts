import type { SupervisorLogger } from './supervisor-options.js';

/**
 * Services an operator stopped: the reconcile loop leaves them down until
 * they are started again or a new desired version arrives. Every change is
 * handed to `onChange` (the agent persists it, so a hold survives restarts).
 */
export class OperatorHolds {
  private readonly held: Set<string>;
  private version: string | null;

  constructor(
    initial: { version: string; services: Iterable<string> } | undefined,
    private readonly onChange: ((held: { version: string | null; services: string[] }) => void) | undefined,
    private readonly log: SupervisorLogger,
  ) {
    this.held = new Set(initial?.services ?? []);
    this.version = initial?.version ?? null;
  }

  /** The held services, for the planner and the reports. */
  get set(): ReadonlySet<string> {
    return this.held;
  }

  has(service: string): boolean {
    return this.held.has(service);
  }

  services(): string[] {
    return [...this.held].sort();
  }

  hold(service: string, version: string | null): void {
    if (this.held.has(service)) return;
    this.held.add(service);
    this.version = version;
    this.changed();
  }

  release(service: string): void {
    if (this.held.delete(service)) this.changed();
  }

  /** A hold lasts for the version it was made under (the first apply after a restart is usually that one). */
  releaseAllUnless(version: string): void {
    if (this.held.size === 0 || version === this.version) return;
    this.held.clear();
    this.changed();
  }

  private changed(): void {
    try {
      this.onChange?.({ version: this.version, services: this.services() });
    } catch (err) {
      this.log.warn({ err: String(err) }, 'onHeldChange callback threw');
    }
  }
}
