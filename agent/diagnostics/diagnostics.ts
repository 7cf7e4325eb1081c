/**
 * What `kill -USR2 <agent pid>` logs (one `diagnostics` line): the figures
 * an operator or the soak test compares over hours to tell a leak from a
 * steady state. Reading them costs nothing until asked; the agent takes no
 * samples of its own for this.
 */
export interface Diagnostics {
  rssBytes: number;
  heapUsedBytes: number;
  /** Live libuv handles and requests by kind (TCPWrap, Timeout, FSReqCallback…). */
  activeResources: Record<string, number>;
  /** Listeners registered on the device link and its MQTT client. */
  linkListeners: number;
}

/** Count a list of resource kinds, as `process.getActiveResourcesInfo()` returns them. */
export function countByKind(kinds: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of kinds) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/** Total listeners over every event of an emitter. */
export function totalListeners(emitter: { eventNames(): (string | symbol)[]; listenerCount(event: string | symbol): number } | undefined): number {
  if (emitter === undefined) return 0;
  return emitter.eventNames().reduce((sum, name) => sum + emitter.listenerCount(name), 0);
}
