/**
 * Whether the agent's main loop is healthy enough to tell systemd's watchdog
 * so. Pure: the watchdog measures, this decides.
 *
 * The main loop is Node's event loop: the link, the commands and the
 * supervisor all run on it. Fully blocked, it runs no timer, so the pings stop
 * by themselves; what needs a decision is what a blocked loop leaves behind
 * once it runs again, and what a loop that runs cannot show by running:
 *
 * - a stall: a probe timer fired `lagMs` later than due. Longer than
 *   `maxStallMs`, the agent was deaf that long (a loop starved most of the
 *   time still fires a ping now and then, which would keep systemd content);
 * - a reconcile pass that never ends: engine calls have no timeout, and a
 *   wedged one leaves the event loop idle and the supervisor dead.
 *
 * Stuck is final: once seen, the pings stop for good and systemd restarts
 * the agent. A skipped ping costs the restart anyway (the next one would
 * come too late), and a process that was deaf for that long is better
 * started afresh than trusted.
 */
export interface LoopHealthLimits {
  maxStallMs: number;
  maxReconcileMs: number;
}

export interface LoopObservation {
  /** How much later than due the probe timer fired. */
  lagMs: number;
  /** How long the supervisor's pass in flight has run; null between passes. */
  reconcilingForMs: number | null;
}

export type LoopHealth = { stuck: false } | { stuck: true; reason: string };

export const HEALTHY: LoopHealth = { stuck: false };

export function judgeLoop(previous: LoopHealth, seen: LoopObservation, limits: LoopHealthLimits): LoopHealth {
  if (previous.stuck) return previous;
  if (seen.lagMs > limits.maxStallMs) {
    return { stuck: true, reason: `main loop stalled for ${Math.round(seen.lagMs)} ms (limit ${limits.maxStallMs} ms)` };
  }
  if (seen.reconcilingForMs !== null && seen.reconcilingForMs > limits.maxReconcileMs) {
    return { stuck: true, reason: `a reconcile pass has run for ${Math.round(seen.reconcilingForMs / 1000)} s (limit ${Math.round(limits.maxReconcileMs / 1000)} s): an engine call that does not return` };
  }
  return previous;
}

/** systemd's advice: ping at half the timeout. The probe runs often enough to see a stall well within that. */
export function watchdogTiming(watchdogMs: number, maxStallMs: number | undefined): { pingEveryMs: number; probeEveryMs: number; maxStallMs: number } {
  const pingEveryMs = Math.max(1, Math.floor(watchdogMs / 2));
  return {
    pingEveryMs,
    probeEveryMs: Math.max(50, Math.min(1000, Math.floor(watchdogMs / 4))),
    maxStallMs: maxStallMs ?? pingEveryMs,
  };
}
