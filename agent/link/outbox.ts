import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, unlinkSync } from 'node:fs';
import { TsunaguError } from '../../protocol/errors.js';
import { fsyncDirectory } from '../../common/atomic-file.js';
import { ACK_FRAME_BYTES, FrameType, MESSAGE_CLASSES, encodeAck, encodeMessage, messageFrameBytes, scanFrames } from './frames.js';
import type { MessageClass } from './frames.js';
import { appendFrame, copyFrames, ensureDir, listGenerations, logPath, readIndex, removeDirIfEmpty, writeIndex } from './outbox-files.js';
import type { OutboxIndex } from './outbox-files.js';
import { PendingSet } from './outbox-pending.js';

export type { MessageClass } from './frames.js';

/** One message waiting for the broker. */
export interface OutboxMessage {
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1 | 2;
  retain: boolean;
  /**
   * What may be sacrificed when the outbox is full: `metrics` first (oldest
   * first), then `state`, then `event` and `reply` oldest first. `state`
   * topics hold "latest value" data, so a newer state message replaces a
   * pending older one on the same topic.
   */
  class: MessageClass;
}

export interface QueuedMessage extends OutboxMessage {
  /** Position in the outbox; increases with every enqueue. */
  seq: number;
}

export type DropCounts = Record<MessageClass, number>;

export interface OutboxOptions {
  /** Directory owned by the outbox; created when missing. */
  dir: string;
  /**
   * Upper bound of the log file in bytes (the index adds ~100). One message
   * may take at most a quarter of it, so that the message in flight plus an
   * incoming one always fit after compaction. Opening reads the log whole,
   * so this is also the transient memory cost of a restart.
   */
  maxBytes: number;
  /** fsync after every append (default true). Off only where the data may be lost anyway (tests, tmpfs). */
  fsync?: boolean;
  /**
   * Acks are marked on disk once per this many (default 32), and when a
   * drain ends or the outbox closes: a backlog of thousands then costs tens
   * of flash writes instead of thousands. A crash redelivers at most this
   * many minus one messages.
   */
  ackBatch?: number;
}

/*
 * Files and crash safety: see outbox-files.ts.
 *
 * Drops happen only in compaction, so a dropped message disappears from disk
 * in the same atomic step that records it in the drop counts. Compaction
 * leaves at most 3/4 of the bound in use, so a full outbox rewrites itself
 * once per quarter-bound of new data rather than on every enqueue (flash
 * wear). Delivery is at least once: a crash between the broker's ack and the
 * ack mark redelivers what was acked since the last mark (see ackBatch), as
 * MQTT QoS 1 may anyway.
 *
 * Nothing touches the disk until a message is enqueued, and a fully drained
 * outbox deletes its files and its directory. The link decides what is enqueued: while online
 * and with `isEmpty()` true, it publishes directly and never calls enqueue;
 * otherwise it enqueues, so that order is kept behind a backlog.
 */

function zeroCounts(): DropCounts {
  return { reply: 0, event: 0, state: 0, metrics: 0 };
}

/**
 * A bounded, crash-safe, in-order on-disk queue of outgoing MQTT messages.
 * How the link is meant to use it:
 *
 *   // producing
 *   if (online && outbox.isEmpty()) await publish(msg); // no disk write
 *   else outbox.enqueue(msg);
 *   // on (re)connect
 *   const d = outbox.dropped();
 *   if (Object.values(d).some((n) => n > 0)) { await publish(dropNotice(d)); outbox.acknowledgeDropped(d); }
 *   await outbox.drain(publish);
 */
export class Outbox {
  /** Problems found and repaired while opening (a corrupt index or log moved aside). */
  readonly recovered: TsunaguError[] = [];
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly lowWater: number;
  private readonly fsync: boolean;
  private readonly ackBatch: number;
  private readonly live = new PendingSet();
  private gen: number | null = null;
  private lastGen = 0;
  private fd: number | undefined;
  private fileSize = 0;
  private nextSeq = 1;
  private droppedCounts = zeroCounts();
  private inFlight: number | undefined;
  /** Highest seq acked in memory whose ack mark is not on disk yet, and how many acks that covers. */
  private unmarkedAck: number | undefined;
  private unmarkedCount = 0;
  private closed = false;
  private draining: Promise<number> | undefined;

  private constructor(options: OutboxOptions) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 256) throw new TsunaguError('CONFIG', 'outbox maxBytes must be an integer of at least 256');
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.lowWater = Math.floor((options.maxBytes * 3) / 4);
    this.fsync = options.fsync ?? true;
    this.ackBatch = Math.max(1, Math.floor(options.ackBatch ?? 32));
  }

  /** Open (and if needed repair) the outbox in `options.dir`. Writes only when there is something to repair. */
  static open(options: OutboxOptions): Outbox {
    const outbox = new Outbox(options);
    outbox.load();
    return outbox;
  }

  private load(): void {
    // No directory, nothing waits: it is made with the first enqueue.
    if (!existsSync(this.dir)) return;
    const loaded = readIndex(this.dir);
    if (loaded.status === 'corrupt') this.recovered.push(loaded.error);
    const index: OutboxIndex | undefined = loaded.status === 'ok' ? loaded.value : undefined;
    const gens = listGenerations(this.dir);
    // Without a readable index, the newest log is the best guess: redelivering beats losing.
    const current = index ? index.log : (gens.at(-1) ?? null);
    this.droppedCounts = index ? { ...index.dropped } : zeroCounts();
    this.lastGen = Math.max(current ?? 0, gens.at(-1) ?? 0);
    for (const g of gens) if (g !== current) unlinkSync(logPath(this.dir, g)); // an interrupted compaction or drain
    if (current === null || !existsSync(logPath(this.dir, current))) {
      if (index?.log != null) this.persistIndex();
      // An index kept for drop counts keeps the directory; an earlier version also left it empty after a drain.
      else if (index === undefined) removeDirIfEmpty(this.dir);
      return;
    }
    this.gen = current;
    this.openLog(current);
    if (index === undefined) this.persistIndex();
    if (this.live.size === 0) this.retire();
  }

  private openLog(gen: number): void {
    const path = logPath(this.dir, gen);
    const bytes = readFileSync(path);
    const scan = scanFrames(bytes, this.maxBytes);
    this.fd = openSync(path, 'a+', 0o600);
    this.fileSize = scan.validEnd;
    let acked = 0;
    let maxSeq = 0;
    for (const f of scan.frames) {
      if (f.type === FrameType.ack) {
        acked = Math.max(acked, f.seq);
        maxSeq = Math.max(maxSeq, f.seq);
        continue;
      }
      const m = f.message;
      maxSeq = Math.max(maxSeq, m.seq);
      this.live.add({ seq: m.seq, cls: m.cls, topic: m.topic, qos: m.qos, retain: m.retain, offset: f.offset, length: f.length, payloadStart: m.payloadStart, payloadLength: m.payloadLength });
    }
    this.live.removeUpTo(acked);
    this.nextSeq = maxSeq + 1;
    if (scan.tail === 'torn') {
      // An append cut short by a crash: nothing after it was ever acknowledged to a producer as stored.
      ftruncateSync(this.fd, scan.validEnd);
      fsyncSync(this.fd);
    } else if (scan.tail === 'corrupt') {
      renameSync(path, `${path}.bad`);
      this.recovered.push(new TsunaguError('STATE_CORRUPT', `${path} held ${bytes.length - scan.validEnd} unreadable bytes after offset ${scan.validEnd}; moved to ${path}.bad, ${this.live.size} messages kept`));
      // The fd still reads the moved file; the rewrite copies the valid frames out of it.
      this.rewrite(false);
    }
  }

  /** Queue a message. Throws TOO_LARGE when it could never fit, CONFIG for an invalid message. */
  enqueue(message: OutboxMessage): void {
    this.assertOpen();
    const { topic, payload, qos, retain } = message;
    const cls = message.class;
    if (!MESSAGE_CLASSES.includes(cls) || (qos !== 0 && qos !== 1 && qos !== 2) || topic === '') throw new TsunaguError('CONFIG', 'invalid outbox message');
    const topicBytes = Buffer.byteLength(topic);
    const length = messageFrameBytes(topicBytes, payload.byteLength);
    if (topicBytes > 0xffff || length > Math.floor(this.maxBytes / 4)) throw new TsunaguError('TOO_LARGE', `a ${length}-byte message never fits an outbox of ${this.maxBytes} bytes`);
    // Superseded before any compaction, so that its bytes count as reclaimable, not as a drop.
    // Even a state message in flight may go: if its send fails, the newer one is sent instead.
    const older = cls === 'state' ? this.live.stateOn(topic) : undefined;
    if (older !== undefined) this.live.remove(older);
    if (this.gen === null) this.createLog();
    else if (this.fileSize + length > this.maxBytes) this.compact(length);
    const seq = this.nextSeq++;
    const offset = this.fileSize;
    this.append(encodeMessage(seq, cls, qos, retain, topic, payload));
    const payloadStart = length - payload.byteLength;
    this.live.add({ seq, cls, topic, qos, retain, offset, length, payloadStart, payloadLength: payload.byteLength });
  }

  /** The oldest pending message, marked as in flight: compaction never drops it until it is acked. */
  peek(): QueuedMessage | undefined {
    this.assertOpen();
    const e = this.live.first();
    if (e === undefined || this.fd === undefined) return undefined;
    const payload = Buffer.alloc(e.payloadLength);
    if (readSync(this.fd, payload, 0, e.payloadLength, e.offset + e.payloadStart) !== e.payloadLength) {
      throw new TsunaguError('STATE_CORRUPT', `outbox log shorter than its index at seq ${e.seq}`);
    }
    this.inFlight = e.seq;
    return { seq: e.seq, topic: e.topic, payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), qos: e.qos, retain: e.retain, class: e.cls };
  }

  /**
   * Mark every pending message up to and including `seq` as delivered.
   * Idempotent. The mark reaches the disk in batches (see `ackBatch`); call
   * `flushAcks()` to force it.
   */
  ack(seq: number): void {
    this.assertOpen();
    const first = this.live.first();
    if (first === undefined || first.seq > seq) return;
    this.live.removeUpTo(seq);
    if (this.inFlight !== undefined && this.inFlight <= seq) this.inFlight = undefined;
    if (this.live.size === 0) {
      this.retire();
      return;
    }
    this.unmarkedAck = seq;
    if (++this.unmarkedCount >= this.ackBatch) this.flushAcks();
  }

  /** Write the pending ack mark, if any. */
  flushAcks(): void {
    const seq = this.unmarkedAck;
    if (seq === undefined || this.fd === undefined) return;
    // Rewriting drops the delivered frames, so no ack mark is needed in the new log.
    if (this.fileSize + ACK_FRAME_BYTES > this.maxBytes) this.rewrite(true);
    else this.append(encodeAck(seq));
    this.unmarkedAck = undefined;
    this.unmarkedCount = 0;
  }

  /**
   * Deliver pending messages in order, removing each only after `send`
   * resolves. Stops when empty, when `signal` aborts, or with `send`'s
   * rejection (that message stays first). A drain already running is joined.
   * Resolves with the number of messages delivered.
   */
  drain(send: (message: QueuedMessage) => Promise<void>, signal?: AbortSignal): Promise<number> {
    // The clean-up runs as a promise reaction, so always after this
    // assignment: an inline `finally` would run synchronously when there is
    // nothing to send, before `draining` is set, and leave it set for good.
    this.draining ??= this.deliver(send, signal).finally(() => {
      this.inFlight = undefined;
      this.draining = undefined;
      if (!this.closed) this.flushAcks();
    });
    return this.draining;
  }

  private async deliver(send: (message: QueuedMessage) => Promise<void>, signal?: AbortSignal): Promise<number> {
    let delivered = 0;
    while (!this.closed && signal?.aborted !== true) {
      const message = this.peek();
      if (message === undefined) break;
      await send(message);
      if (this.closed) break; // redelivered after reopening
      this.ack(message.seq);
      delivered++;
    }
    return delivered;
  }

  /** Messages dropped to respect the bound and not yet acknowledged as reported. */
  dropped(): DropCounts {
    return { ...this.droppedCounts };
  }

  /**
   * Call after a drop notice carrying `reported` was delivered. Subtracts
   * rather than resets, so drops that happened while the notice travelled
   * are reported next time.
   */
  acknowledgeDropped(reported: DropCounts): void {
    this.assertOpen();
    for (const c of MESSAGE_CLASSES) this.droppedCounts[c] = Math.max(0, this.droppedCounts[c] - reported[c]);
    this.persistIndex();
  }

  /** Bytes of the log file on disk; never above `maxBytes`. */
  sizeBytes(): number {
    return this.fileSize;
  }

  pendingCount(): number {
    return this.live.size;
  }

  isEmpty(): boolean {
    return this.live.size === 0;
  }

  /** Writes the pending ack mark and releases the file. */
  close(): void {
    if (this.closed) return;
    try {
      this.flushAcks();
    } finally {
      this.closed = true;
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new TsunaguError('OUTBOX_CLOSED');
  }

  private append(bytes: Buffer): void {
    if (this.fd === undefined) throw new TsunaguError('INTERNAL', 'outbox log is not open');
    appendFrame(this.fd, bytes, this.fileSize, this.fsync);
    this.fileSize += bytes.byteLength;
  }

  /** The index is written before the log exists, so a log is never without an index naming it. */
  private createLog(): void {
    this.gen = ++this.lastGen;
    ensureDir(this.dir, this.fsync);
    this.persistIndex();
    this.fd = openSync(logPath(this.dir, this.gen), 'w+', 0o600);
    this.fileSize = 0;
    // fsync of the file alone does not make a new directory entry durable.
    if (this.fsync) fsyncDirectory(this.dir);
  }

  /** Make room for `incoming` bytes: reclaim delivered frames, then drop by class until 3/4 of the bound is in use. */
  private compact(incoming: number): void {
    for (const e of this.live.dropUntil(this.lowWater - incoming, this.inFlight)) this.droppedCounts[e.cls]++;
    this.rewrite(true);
  }

  /** Copy the live frames into a new generation, commit it in the index, delete the old one. */
  private rewrite(oldStillNamed: boolean): void {
    const oldFd = this.fd;
    const oldGen = this.gen;
    if (oldFd === undefined || oldGen === null) throw new TsunaguError('INTERNAL', 'outbox log is not open');
    const gen = ++this.lastGen;
    const entries = [...this.live.values()];
    const { fd, offsets, size } = copyFrames(oldFd, entries, this.dir, gen);
    this.gen = gen;
    try {
      this.persistIndex(); // the commit point
    } catch (err) {
      this.gen = oldGen;
      closeSync(fd);
      unlinkSync(logPath(this.dir, gen));
      throw err;
    }
    entries.forEach((e, i) => (e.offset = offsets[i] ?? 0));
    this.unmarkedAck = undefined; // delivered frames were not copied
    this.unmarkedCount = 0;
    closeSync(oldFd);
    if (oldStillNamed) unlinkSync(logPath(this.dir, oldGen));
    this.fd = fd;
    this.fileSize = size;
  }

  /** Everything delivered: remove the log, and the index too unless drops remain to be reported. */
  private retire(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    const gen = this.gen;
    this.gen = null;
    this.fileSize = 0;
    this.inFlight = undefined;
    this.unmarkedAck = undefined;
    this.unmarkedCount = 0;
    this.live.clear();
    // Log first: the last ack marks were never written (see ack), so a log that
    // outlived its index would be adopted and redelivered. An index naming a
    // missing log is simply treated as empty.
    if (gen !== null) unlinkSync(logPath(this.dir, gen));
    this.persistIndex();
  }

  private persistIndex(): void {
    const nothingToRemember = this.gen === null && MESSAGE_CLASSES.every((c) => this.droppedCounts[c] === 0);
    writeIndex(this.dir, nothingToRemember ? undefined : { v: 1, log: this.gen, dropped: { ...this.droppedCounts } });
    if (nothingToRemember) removeDirIfEmpty(this.dir);
  }
}
