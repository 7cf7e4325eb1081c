import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import type { ContainerCreateOptions } from 'dockerode';
import type { ActualContainer } from '../../agent/supervisor/actual-state.js';
import type { ContainerRuntime, RuntimeEvent } from '../../agent/supervisor/container-runtime.js';
import { createOptions } from '../../agent/supervisor/container-spec.js';
import { parseDesiredState } from '../../protocol/compose/compose-schema.js';
import { isTsunaguError, type ErrorCode } from '../../protocol/errors.js';
import { waitFor } from '../support/wait-for.js';

// The world the ContainerRuntime contract (container-runtime.contract.ts) runs in: what an
// adapter's test file prepares, and the suite's own helpers for one test case.

/** Every container the suite creates carries `CONTRACT_LABEL=<the test's scope>`; the world cleans up by it. */
export const CONTRACT_LABEL = 'tsunagu.test';

/** What the engine keeps of a create request, for the fields whose effect the port cannot show. */
export interface HeldSpec {
  restartPolicy: string;
  logConfig: { Type: string; Config: Record<string, string> };
}

/** A way to the engine that the test can cut: the engine going away, as the runtime sees it. */
export interface SeverableRuntime {
  runtime: ContainerRuntime;
  cut(): Promise<void>;
  close(): Promise<void>;
}

/** What the suite needs besides the runtime under test, prepared by the adapter's test file. */
export interface RuntimeWorld {
  runtime: ContainerRuntime;
  /**
   * Images in a registry the engine reaches (127.0.0.1:5000), by tag. idle:
   * runs until stopped and prints its /VERSION; crash: exits 3 at once;
   * unhealthy: idle, with an image healthcheck that always fails; missing: a
   * tag the registry lacks.
   */
  images: { idle: string; crash: string; unhealthy: string; missing: string };
  /** Drop `ref`'s tag from the engine (its layers may stay), so that the next pull is a real one. */
  forgetImage(ref: string): Promise<void>;
  held(id: string): Promise<HeldSpec>;
  /** A runtime whose engine does not answer at all. */
  unreachable(): ContainerRuntime;
  severable(): Promise<SeverableRuntime>;
  /** Remove every container carrying `CONTRACT_LABEL=scope`, and the named volumes owned by `scope`. */
  cleanUp(scope: string): Promise<void>;
}

export interface Case {
  world: RuntimeWorld;
  runtime: ContainerRuntime;
  scope: string;
  /** The create request the supervisor sends for one compose service (container-spec.ts), with network mode `none` unless given. */
  spec(service: string, compose: Record<string, unknown>, more?: { volumes?: string[]; configHash?: string }): ContainerCreateOptions;
  /** createContainer under the name `<scope>-<service>`. */
  create(service: string, compose: Record<string, unknown>, more?: { volumes?: string[] }): Promise<string>;
  /** The owned container `id` once `ready` holds of it. */
  until(what: string, id: string, ready: (c: ActualContainer) => boolean): Promise<ActualContainer>;
}

export async function begin(t: TestContext, setUp: () => Promise<RuntimeWorld>): Promise<Case> {
  const world = await setUp();
  const scope = `ct-${randomBytes(4).toString('hex')}`;
  t.after(() => world.cleanUp(scope));
  // What a test creates containers from is present, as the supervisor's plan makes sure before a create.
  for (const ref of [world.images.idle, world.images.crash, world.images.unhealthy]) await world.runtime.pullImage(ref, {});
  const spec: Case['spec'] = (service, compose, more = {}) => {
    const state = parseDesiredState({
      name: scope,
      services: { [service]: { network_mode: 'none', ...compose, labels: { [CONTRACT_LABEL]: scope } } },
      ...(more.volumes ? { volumes: Object.fromEntries(more.volumes.map((v) => [v, {}])) } : {}),
    });
    const desired = state.services[0];
    assert.ok(desired, 'one service');
    return createOptions(desired, { scope, project: state.project, configHash: more.configHash ?? `hash-${service}`, version: 'v1' });
  };
  const c: Case = {
    world,
    runtime: world.runtime,
    scope,
    spec,
    create: (service, compose, more) => world.runtime.createContainer(`${scope}-${service}`, spec(service, compose, more)),
    until: (what, id, ready) => waitFor(what, async () => {
      const found = await world.runtime.inspectContainer(id, scope);
      return found !== undefined && ready(found) ? found : undefined;
    }, 20_000),
  };
  return c;
}

/** Events of one scope as they come, and a way to wait for one without polling. */
export function recordEvents(runtime: ContainerRuntime, scope: string, t: TestContext): {
  events: RuntimeEvent[];
  next(what: string, match: (e: RuntimeEvent) => boolean, timeoutMs?: number): Promise<RuntimeEvent>;
  ended: Promise<'ended'>;
} {
  const events: RuntimeEvent[] = [];
  const waiters = new Set<{ match: (e: RuntimeEvent) => boolean; resolve: (e: RuntimeEvent) => void }>();
  const controller = new AbortController();
  const ended = runtime.watchEvents(scope, (e) => {
    events.push(e);
    for (const w of waiters) if (w.match(e)) { waiters.delete(w); w.resolve(e); }
  }, controller.signal).then(() => 'ended' as const);
  t.after(async () => { controller.abort(); await ended.catch(() => undefined); });
  return {
    events,
    ended,
    next: (what, match, timeoutMs = 20_000) => {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise<RuntimeEvent>((resolve, reject) => {
        const timer = setTimeout(() => { waiters.delete(waiter); reject(new Error(`no ${what} event within ${timeoutMs} ms; saw ${JSON.stringify(events)}`)); }, timeoutMs);
        const waiter = { match, resolve: (e: RuntimeEvent) => { clearTimeout(timer); resolve(e); } };
        waiters.add(waiter);
      });
    },
  };
}

/**
 * The event stream is live once it delivers something: a marker container
 * of the scope is created and its `create` awaited, so that nothing the test
 * does afterwards can fall before the subscription.
 */
export async function live(c: Case, rec: ReturnType<typeof recordEvents>): Promise<void> {
  const marker = await c.create('marker', { image: c.world.images.idle });
  await rec.next('create of the marker', (e) => e.action === 'create' && e.containerId === marker);
  await c.runtime.removeContainer(marker);
}

export function rejectsWith(code: ErrorCode): (e: unknown) => boolean {
  return (e) => {
    assert.ok(isTsunaguError(e, code), `expected ${code}, got ${String(e)}`);
    return true;
  };
}

