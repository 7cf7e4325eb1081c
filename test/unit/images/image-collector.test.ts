import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import type { DiskReading } from '../../../agent/images/disk-fit.js';
import type { EngineImage, ImageEngine, RemoveOutcome } from '../../../agent/images/docker-images.js';
import { ImageCollector, SHORT_RECHECK_MS } from '../../../agent/images/image-collector.js';
import { ImageRecords } from '../../../agent/images/image-records.js';

// The collector's orchestration with an in-memory engine and disk: what it
// removes, in which order, when it stops, what it tells. The real engine is
// in test/integration/disk-short.test.ts.
const MiB = 1024 * 1024;
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

class MemoryEngine implements ImageEngine {
  images = new Map<string, EngineImage>();
  used = new Set<string>();
  /** Taken by a container between the collector's look and its removal. */
  racing = new Set<string>();
  removals: string[] = [];
  constructor(private readonly disk: { used: number }) {}
  add(id: string, ref: string, mib: number): void {
    this.images.set(id, { id, refs: [ref], layers: [`sha256:${id}`], sizeBytes: mib * MiB });
    this.disk.used += mib * MiB;
  }
  remotePlatforms(): Promise<never> { return Promise.reject(new Error('not used')); }
  localImages(): Promise<EngineImage[]> { return Promise.resolve([...this.images.values()]); }
  imagesInUse(): Promise<Set<string>> { return Promise.resolve(new Set(this.used)); }
  imageId(ref: string): Promise<string | undefined> { return Promise.resolve([...this.images.values()].find((i) => i.refs.includes(ref))?.id); }
  removeImage(ref: string): Promise<RemoveOutcome> {
    const image = [...this.images.values()].find((i) => i.refs.includes(ref));
    if (image === undefined) return Promise.resolve('gone');
    if (this.used.has(image.id) || this.racing.has(image.id)) return Promise.resolve('in-use');
    this.removals.push(ref);
    this.images.delete(image.id);
    this.disk.used -= image.sizeBytes;
    return Promise.resolve('removed');
  }
  dataRoot(): Promise<string> { return Promise.resolve('/data'); }
}

let dir: string;
let now: number;
let disk: { used: number };
let engine: MemoryEngine;
let records: ImageRecords;
let events: Record<string, unknown>[];
let protectedRefs: string[];
const TOTAL = 1000 * MiB;

function collector(): ImageCollector {
  return new ImageCollector({
    engine, records, log: quiet, now: () => now, emit: (e) => events.push(e), protectedRefs: () => protectedRefs,
    gauge: { read: (): Promise<DiskReading> => Promise.resolve({ path: '/data', totalBytes: TOTAL, usedBytes: disk.used, availableBytes: TOTAL - disk.used }) },
    watermarks: { highPercent: 80, lowPercent: 60 },
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsunagu-collector-'));
  now = 10_000_000;
  disk = { used: 500 * MiB };
  engine = new MemoryEngine(disk);
  records = new ImageRecords(join(dir, 'images.json'));
  events = [];
  protectedRefs = [];
  // Four images the agent pulled, 100 MiB each, used in the order a, b, c, d: the disk is at 90 %.
  for (const [i, name] of ['a', 'b', 'c', 'd'].entries()) {
    engine.add(name, `${name}:1`, 100);
    records.notePulled(`${name}:1`, name, 0);
    records.noteUsed(name, 1000 + i * 4_000_000);
  }
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('removes in LRU order, reading the disk after each removal, and stops at the low watermark', async () => {
  const summary = await collector().collect('pull');
  assert.deepEqual(engine.removals, ['a:1', 'b:1', 'c:1']);
  assert.deepEqual(summary && [summary.removed, summary.usedPercentBefore, summary.usedPercentAfter, summary.freedBytes, summary.short], [3, 90, 60, 300 * MiB, false]);
  assert.deepEqual(events.map((e) => e.type), ['image-removed', 'image-removed', 'image-removed', 'gc']);
  assert.deepEqual(records.records.map((r) => r.ref), ['d:1']);
  assert.deepEqual(new ImageRecords(join(dir, 'images.json')).records.map((r) => r.ref), ['d:1'], 'written to disk');
});

test('an image taken by a container meanwhile stays recorded and the next one goes instead', async () => {
  engine.racing.add('a');
  await collector().collect('pull');
  assert.deepEqual(engine.removals, ['b:1', 'c:1', 'd:1']);
  assert.deepEqual(records.records.map((r) => r.ref), ['a:1']);
});

test('a disk that stays short is told once, and the periodic sample leaves it alone for a while', async () => {
  engine.used = new Set(['a', 'b', 'c', 'd']);
  const c = collector();
  assert.equal((await c.collect('pull'))?.short, true);
  assert.equal((await c.collect('update'))?.short, true);
  assert.deepEqual(events.map((e) => [e.type, e.short]), [['gc', true]], 'one gc event for the whole episode');
  assert.equal(await c.collect('disk-sample'), null, 'not looked at again by a sample');
  now += SHORT_RECHECK_MS;
  engine.used.delete('a');
  assert.equal((await c.collect('disk-sample'))?.removed, 1);
});

test('protected images and records of images gone from the engine', async () => {
  protectedRefs = ['a:1', 'b:1'];
  engine.images.delete('c'); // removed by hand (its space taken by something else meanwhile)
  const summary = await collector().collect('pull');
  assert.equal(summary?.short, true, 'nothing more may go');
  assert.deepEqual(engine.removals, ['d:1']);
  assert.deepEqual(records.records.map((r) => r.ref), ['a:1', 'b:1']);
});

test('room for a pull: removes until it fits, even below the low watermark', async () => {
  const c = collector();
  const after = await c.makeRoom((d) => d.availableBytes >= 450 * MiB, 350 * MiB);
  assert.equal(after.availableBytes, 500 * MiB);
  assert.deepEqual(engine.removals, ['a:1', 'b:1', 'c:1', 'd:1'].slice(0, 4));
});
