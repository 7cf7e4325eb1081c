import type { MessageClass } from './frames.js';

/** Where a pending message's frame lies in the current log; its payload stays on disk. */
export interface PendingEntry {
  seq: number;
  cls: MessageClass;
  topic: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  offset: number;
  length: number;
  payloadStart: number;
  payloadLength: number;
}

/** Classes in the order they are sacrificed; classes in one group go oldest first. */
const DROP_ORDER: readonly (readonly MessageClass[])[] = [['metrics'], ['state'], ['event', 'reply']];

/**
 * The in-memory view of what is pending, in seq order, with the byte count
 * and the queue policy (state coalescing, drop order). No I/O: the outbox
 * keeps it in step with the log.
 */
export class PendingSet {
  private readonly entries = new Map<number, PendingEntry>(); // insertion order is seq order
  private readonly stateByTopic = new Map<string, number>();
  private total = 0;

  get size(): number {
    return this.entries.size;
  }

  /** Sum of the frame lengths of the pending messages. */
  get bytes(): number {
    return this.total;
  }

  first(): PendingEntry | undefined {
    return this.entries.values().next().value;
  }

  values(): PendingEntry[] {
    return [...this.entries.values()];
  }

  /** Add in seq order. A state message supersedes the pending one on its topic. */
  add(e: PendingEntry): void {
    if (e.cls === 'state') {
      const older = this.stateByTopic.get(e.topic);
      if (older !== undefined) this.remove(older);
      this.stateByTopic.set(e.topic, e.seq);
    }
    this.entries.set(e.seq, e);
    this.total += e.length;
  }

  /** The pending state message on `topic`, which a new one would supersede. */
  stateOn(topic: string): number | undefined {
    return this.stateByTopic.get(topic);
  }

  remove(seq: number): PendingEntry | undefined {
    const e = this.entries.get(seq);
    if (e === undefined) return undefined;
    this.entries.delete(seq);
    this.total -= e.length;
    if (e.cls === 'state' && this.stateByTopic.get(e.topic) === seq) this.stateByTopic.delete(e.topic);
    return e;
  }

  removeUpTo(seq: number): void {
    // Deleting the entry being visited is safe in a Map iteration; no copy, so an ack stays O(1).
    for (const key of this.entries.keys()) {
      if (key > seq) break;
      this.remove(key);
    }
  }

  /**
   * Remove messages until at most `target` bytes remain: metrics first, then
   * state, then events and replies, oldest first within each step; `keep`
   * (the message in flight) is never removed. Returns what was removed.
   */
  dropUntil(target: number, keep: number | undefined): PendingEntry[] {
    const dropped: PendingEntry[] = [];
    for (const group of DROP_ORDER) {
      for (const e of this.entries.values()) {
        if (this.total <= target) return dropped;
        if (e.seq === keep || !group.includes(e.cls)) continue;
        this.remove(e.seq);
        dropped.push(e);
      }
    }
    return dropped;
  }

  clear(): void {
    this.entries.clear();
    this.stateByTopic.clear();
    this.total = 0;
  }
}
