/**
 * Messages the agent refused since it started, by error code: what the
 * fleet reads in each metrics report (`refused`) and an operator in the
 * diagnostics line. Every refusal is also an event of its own
 * (`message-refused`); the events are not retained and may be dropped by a
 * full outbox, the count is in the retained metrics and survives both.
 */
export class RefusalCount {
  private readonly counts = new Map<string, number>();

  add(code: string): void {
    this.counts.set(code, (this.counts.get(code) ?? 0) + 1);
  }

  /** The counts so far; empty when nothing was refused. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
