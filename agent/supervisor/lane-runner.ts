import { isTakeDown, type Lane } from './step-lanes.js';
import type { Step } from './steps.js';

/**
 * How many creates and starts run at once. A start makes the engine spawn
 * runc and a containerd shim: a burst of CPU and some MB each, which ten at
 * once on a small board would stack into one memory peak. Yet the engine
 * overlaps part of a start's work (waits on containerd, the disk): ten
 * services with a 6 s grace replaced on the loaded 2-core test machine
 * (supervisor-parallel-update.test.ts, one run each) had their worst
 * downtime at 15.5 s with two at a time, 13.2 s with four, 12.1 s with ten.
 * Four keeps most of the gain with a bounded peak. Stops and removes take no
 * slot: a stop is the engine waiting out the service's grace, which is what
 * must overlap, and a remove (a directory deleted) lies on its service's
 * downtime.
 */
export const ENGINE_SLOTS = 4;

/** Runs one step; false when it failed and its lane must stop there. Throws to end the whole run (shutdown, engine gone). */
export type RunStep = (step: Step) => Promise<boolean>;

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

/** A counting semaphore, first come first served. */
class Slots {
  private readonly waiting: (() => void)[] = [];

  constructor(private free: number) {}

  async take(): Promise<() => void> {
    if (this.free > 0) this.free -= 1;
    else await new Promise<void>((r) => this.waiting.push(r));
    return () => {
      const next = this.waiting.shift();
      if (next) next();
      else this.free += 1;
    };
  }
}

/**
 * Run lanes side by side (step-lanes.ts), each lane's steps one after
 * another. A lane whose step fails stops there; a lane that waits for the
 * take-downs of another that stopped before finishing them does not run (a
 * dependency is not stopped under a dependent that may still run): the
 * caller reads the world again and plans anew. Resolves when every lane has
 * ended; rethrows the first error a step threw, once all have ended.
 */
export async function runLanes(lanes: readonly Lane[], runStep: RunStep, slots = ENGINE_SLOTS): Promise<void> {
  const engine = new Slots(slots);
  const takenDown = lanes.map(() => deferred<boolean>());
  const ended = lanes.map(() => deferred<void>());
  const errors: unknown[] = [];

  const run = async (step: Step): Promise<boolean> => {
    if (step.kind !== 'create' && step.kind !== 'start') return runStep(step);
    const release = await engine.take();
    try {
      return await runStep(step);
    } finally {
      release();
    }
  };

  const runLane = async (lane: Lane, i: number): Promise<void> => {
    const downs = lane.steps.filter(isTakeDown).length;
    let done = 0;
    try {
      await Promise.all(lane.after.map((j) => ended[j]?.promise ?? Promise.resolve()));
      for (const step of lane.steps) {
        if (isTakeDown(step) && done === 0) {
          const ready = await Promise.all(lane.takeDownAfter.map((j) => takenDown[j]?.promise ?? Promise.resolve(true)));
          if (ready.includes(false)) return;
        }
        if (!(await run(step))) return;
        if (isTakeDown(step) && ++done === downs) takenDown[i]?.resolve(true);
      }
    } catch (err) {
      errors.push(err);
    } finally {
      takenDown[i]?.resolve(done === downs);
      ended[i]?.resolve();
    }
  };

  await Promise.all(lanes.map(runLane));
  if (errors.length > 0) throw errors[0];
}
