import type { SupervisorEvent } from './rollout.js';

/**
 * Pull progress as the agent reports it on its `events` topic:
 * `service-pull-progress` with `currentBytes`/`totalBytes` (protocol.md §9.6).
 * Undefined for any other event.
 */
export function pullProgressOf(e: SupervisorEvent): { current: number; total: number; percent: number } | undefined {
  if (e.type !== 'service-pull-progress') return undefined;
  const current = typeof e.currentBytes === 'number' && e.currentBytes >= 0 ? e.currentBytes : 0;
  const total = typeof e.totalBytes === 'number' && e.totalBytes >= 0 ? e.totalBytes : 0;
  return { current, total, percent: total > 0 ? Math.min(100, Math.floor((current / total) * 100)) : 0 };
}
