/**
 * What `kill -USR2 <agent pid>` logs (one `diagnostics` line): the figures
 * an operator or the soak test compares over hours to tell a leak from a
 * steady state. Reading them costs nothing until asked; the agent takes no
 * samples of its own for this.
 */
export interface Diagnostics {
  rssBytes: number;
  /** The JS heap in use as found: live objects plus garbage not collected yet. */
  heapUsedBytes: number;
  /**
   * The JS heap after a full collection: what is retained. Only when node runs with
   * `--expose-gc` (the soak does; a device does not), as the collection is forced.
   */
  heapLiveBytes?: number;
  /** Live libuv handles and requests by kind (TCPWrap, Timeout, FSReqCallback…). */
  activeResources: Record<string, number>;
  /** Listeners registered on the device link and its MQTT client. */
  linkListeners: number;
  /** Messages refused since the start, by error code (as in the metrics report's `refused`). */
  refusedMessages: Record<string, number>;
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

/**
 * The heap figures of a dump. Garbage promoted to the old generation stays
 * there until V8's next full collection, which may be an hour away on a
 * machine with memory to spare: the heap in use then rises steadily with no
 * leak at all. With a `gc` function (node --expose-gc) the heap is measured
 * again after a full collection, which tells the two apart.
 */
export function heapFigures(heapUsed: () => number, gc: (() => void) | undefined): { heapUsedBytes: number; heapLiveBytes?: number } {
  const heapUsedBytes = heapUsed();
  if (gc === undefined) return { heapUsedBytes };
  gc();
  return { heapUsedBytes, heapLiveBytes: heapUsed() };
}
