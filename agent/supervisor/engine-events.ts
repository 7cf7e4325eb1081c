import { asTsunaguError, isTsunaguError } from '../../protocol/errors.js';
import type { ContainerRuntime, RuntimeEvent } from './container-runtime.js';
import { backoffDelay, type BackoffPolicy } from './restart-backoff.js';
import type { Clock, SupervisorLogger } from './supervisor-options.js';
import type { SupervisorEvent } from './supervisor-events.js';

/** What one engine event means for the supervisor: an event to report, and whether to reconcile. */
export function interpretRuntimeEvent(e: RuntimeEvent): { event?: SupervisorEvent; reconcile: boolean } {
  switch (e.action) {
    case 'start': return { event: { type: 'started', service: e.service, containerId: e.containerId }, reconcile: false };
    case 'die': return { event: { type: 'exited', service: e.service, containerId: e.containerId, exitCode: e.exitCode }, reconcile: true };
    case 'health_status':
      return e.health === 'healthy' || e.health === 'unhealthy'
        ? { event: { type: e.health, service: e.service, containerId: e.containerId }, reconcile: true }
        : { reconcile: true };
    case 'destroy': return { reconcile: true };
    default: return { reconcile: false };
  }
}

/**
 * Follow the engine's event stream until `signal` aborts. When the stream
 * breaks (engine restart), reconnect with back-off and ask for a pass:
 * events may have been missed while disconnected.
 */
export async function followEngineEvents(args: {
  runtime: ContainerRuntime;
  scope: string;
  clock: Clock;
  log: SupervisorLogger;
  retry: BackoffPolicy;
  signal: AbortSignal;
  onEvent: (e: RuntimeEvent) => void;
  /** The stream ended: the engine went away (or restarts). */
  onDisconnect?: () => void;
  onReconnect: () => void;
}): Promise<void> {
  const { signal } = args;
  let failures = 0;
  while (!signal.aborted) {
    const began = args.clock.now();
    try {
      await args.runtime.watchEvents(args.scope, args.onEvent, signal);
    } catch (err) {
      if (!isTsunaguError(err, 'CANCELLED')) args.log.warn({ err: asTsunaguError(err).toJSON() }, 'event stream failed');
    }
    if (signal.aborted) return;
    args.onDisconnect?.();
    failures = args.clock.now() - began > 10_000 ? 1 : failures + 1;
    await new Promise((r) => setTimeout(r, backoffDelay(failures, args.retry)).unref());
    args.onReconnect();
  }
}
