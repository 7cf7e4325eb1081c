import { isLive, type ActualContainer, type ActualState } from './actual-state.js';
import type { DesiredService, Priority } from '../../protocol/compose/desired-service.js';
import { configHash } from './config-hash.js';
import { holdsPinnedContent } from './pinned-digest.js';
import { isBackingOff, recordFailure, type BackoffPolicy, type BackoffState } from './restart-backoff.js';
import type { Step } from './steps.js';

export type { Step } from './steps.js';

/** Everything besides actual and desired state that a decision depends on. */
export interface PlanFacts {
  /** Wall-clock ms. */
  now: number;
  /** Prefix of container names; the supervisor's scope. */
  scope: string;
  /** Crash-loop back-off per service name: no create or start before `nextAttemptAt`. */
  restartBackoff: BackoffState;
  /** Pull back-off per image reference: no pull before `nextAttemptAt`. */
  pullBackoff: BackoffState;
  /** Labels this device carries; a service whose `x-tsunagu.requires` are not all here is not deployed. */
  deviceLabels: ReadonlySet<string>;
  /** Images being pulled right now (pulls run beside the passes): no second pull is planned. */
  pullsInFlight: ReadonlySet<string>;
  /** Services an operator stopped: their live containers are stopped and nothing brings them up again. */
  held?: ReadonlySet<string>;
  /**
   * Services pressure keeps down (evictions.ts): their live containers are
   * stopped and removed, and nothing creates, starts or pulls for them.
   */
  evicted?: ReadonlySet<string>;
  /** Services an operator command is acting on right now (a restart): the plan leaves them alone. */
  busy?: ReadonlySet<string>;
  /** Containers the engine stopped by going down (engine-outage.ts): started again whatever their restart policy. */
  resume?: ReadonlySet<string>;
  /**
   * Containers whose start failed because their runtime state is stale
   * (runtime-state.ts): never started again, but removed and created anew,
   * once `recoveryBackoff` of the service allows.
   */
  staleRuntime?: ReadonlySet<string>;
  /** Back-off per service name between replacements of stale containers: no replacement before `nextAttemptAt`. */
  recoveryBackoff?: BackoffState;
  /** Services whose update runs kill-then-download this time whatever the desired state says (a short disk). */
  killFirst?: ReadonlySet<string>;
}

const PRIORITY_RANK: Record<Priority, number> = { critical: 0, normal: 1, 'best-effort': 2 };

/** Name of a new container: scope, service and a short hash keep names unique across versions. */
export function containerName(scope: string, service: string, hash: string): string {
  return `${scope}-${service}-${hash.slice(0, 8)}`;
}

/** Dependencies first; among independent services, higher priority first, then by name. */
function startOrder(services: DesiredService[]): DesiredService[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const sorted = [...services].sort((a, b) => PRIORITY_RANK[a.tsunagu.priority] - PRIORITY_RANK[b.tsunagu.priority] || (a.name < b.name ? -1 : 1));
  const out: DesiredService[] = [];
  const seen = new Set<string>();
  const visit = (s: DesiredService): void => {
    if (seen.has(s.name)) return;
    seen.add(s.name); // the schema refuses cycles; marking first keeps a bad input from recursing forever
    for (const d of s.dependsOn) {
      const dep = byName.get(d.service);
      if (dep) visit(dep);
    }
    out.push(s);
  };
  sorted.forEach(visit);
  return out;
}

/** Containers of services no longer desired, dependents before what they depend on. */
function stopOrder(containers: ActualContainer[]): ActualContainer[] {
  const services = new Set(containers.map((c) => c.service));
  const out: ActualContainer[] = [];
  const done = new Set<string>();
  const visit = (service: string, chain: Set<string>): void => {
    if (done.has(service) || chain.has(service)) return;
    chain.add(service);
    // Everything that depends on `service` goes first.
    for (const c of containers) if (c.dependsOn.includes(service) && services.has(c.service)) visit(c.service, chain);
    done.add(service);
    out.push(...containers.filter((c) => c.service === service));
  };
  [...services].sort().forEach((s) => visit(s, new Set()));
  return out;
}

function takeDown(c: ActualContainer, timeoutMs: number): Step[] {
  const steps: Step[] = [];
  if (isLive(c)) steps.push({ kind: 'stop', service: c.service, containerId: c.id, timeoutMs });
  steps.push({ kind: 'remove', service: c.service, containerId: c.id });
  return steps;
}

/**
 * The container that runs the desired config: a live one first, then the
 * most recently started. Dead ones never count, nor do those whose runtime
 * state is stale (they are replaced).
 */
function currentContainer(containers: ActualContainer[], hash: string, staleRuntime?: ReadonlySet<string>): ActualContainer | undefined {
  return containers
    .filter((c) => c.configHash === hash && c.status !== 'dead' && c.status !== 'removing' && staleRuntime?.has(c.id) !== true)
    .sort((a, b) => Number(isLive(b)) - Number(isLive(a)) || (b.startedAt ?? 0) - (a.startedAt ?? 0))[0];
}

/**
 * Whether an exited container of `s` should run again under its restart
 * policy, ignoring back-off. `on-failure:N` allows N restarts in a row.
 */
function wantsRestart(s: DesiredService, c: ActualContainer, backoff: BackoffState): boolean {
  switch (s.restart.name) {
    case 'no': return false;
    case 'always':
    case 'unless-stopped': return true;
    case 'on-failure': {
      if (c.exitCode === 0) return false;
      const entry = backoff[s.name];
      const restarts = entry !== undefined && entry.configHash === c.configHash ? entry.failures : 0;
      return s.restart.maxRetries === undefined || restarts <= s.restart.maxRetries;
    }
  }
}

function dependenciesReady(s: DesiredService, current: Map<string, ActualContainer | undefined>): boolean {
  return s.dependsOn.every((d) => {
    const c = current.get(d.service);
    if (c === undefined) return false;
    switch (d.condition) {
      case 'service_started': return c.status === 'running' || (c.status === 'exited' && c.startedAt !== null);
      case 'service_healthy': return c.status === 'running' && c.health === 'healthy';
      case 'service_completed_successfully': return c.status === 'exited' && c.exitCode === 0;
    }
  });
}

/** A service this device carries every required label for: the others are not deployed here. */
export function deployable(s: DesiredService, deviceLabels: ReadonlySet<string>): boolean {
  return s.tsunagu.requires.every((label) => deviceLabels.has(label));
}

/**
 * Compare actual with desired and return the steps that can be taken now.
 * Pure and synchronous: no I/O, inputs untouched. The order is one that is
 * right run serially; the supervisor runs the services' steps side by side
 * (step-lanes.ts keeps the order that matters), reads the state again and
 * plans again until this returns nothing; steps that must wait (a dependency not yet healthy, a back-off not
 * yet over) simply do not appear until their time.
 */
export function plan(actual: ActualState, desired: DesiredService[], facts: PlanFacts): Step[] {
  const steps: Step[] = [];
  // Serially right: old containers of desired services go down in reverse dependency order, before anything comes up.
  const downs: Step[][] = [];
  const ups: Step[] = [];
  const wanted = desired.filter((s) => deployable(s, facts.deviceLabels));
  const wantedNames = new Set(wanted.map((s) => s.name));

  // Services no longer desired (or no longer deployable here): dependents first.
  const unwanted = actual.containers.filter((c) => !wantedNames.has(c.service));
  for (const c of stopOrder(unwanted)) steps.push(...takeDown(c, 10_000));

  const hashes = new Map(wanted.map((s) => [s.name, configHash(s)]));
  const current = new Map(wanted.map((s) => [s.name, currentContainer(actual.containers.filter((c) => c.service === s.name), hashes.get(s.name) ?? '', facts.staleRuntime)]));
  const pulling = new Set<string>(facts.pullsInFlight);

  for (const s of startOrder(wanted)) {
    const down: Step[] = [];
    downs.unshift(down);
    if (facts.busy?.has(s.name)) continue;
    if (facts.held?.has(s.name)) {
      for (const c of actual.containers) if (c.service === s.name && isLive(c)) down.push({ kind: 'stop', service: s.name, containerId: c.id, timeoutMs: s.stopGraceMs });
      continue;
    }
    if (facts.evicted?.has(s.name)) {
      // Removed, not only stopped: the service comes back as a new container whatever its
      // restart policy, and an agent restart (which forgets evictions) finds nothing to
      // mistake for a crash. A container that is not live (a finished job) is left as it is.
      for (const c of actual.containers) if (c.service === s.name && isLive(c)) down.push(...takeDown(c, s.stopGraceMs));
      continue;
    }
    const hash = hashes.get(s.name) ?? '';
    const mine = current.get(s.name);
    const stale = actual.containers.filter((c) => c.service === s.name && c !== mine);
    const backingOff = isBackingOff(facts.restartBackoff[s.name], facts.now, hash);

    if (mine !== undefined) {
      // Adoption: a container with the desired config is kept as it is, whoever started it last.
      for (const c of stale) down.push(...takeDown(c, s.stopGraceMs));
      // Resumed whatever the restart policy, not whatever the back-off: the exits of the engine's
      // shutdown are taken back from it (engine-outage.ts), and a start that failed since is a failure.
      const resumed = facts.resume?.has(mine.id) === true;
      const startable = mine.status === 'created' || (mine.status === 'exited' && (resumed || wantsRestart(s, mine, facts.restartBackoff)));
      if (startable && !backingOff && dependenciesReady(s, current)) {
        ups.push({ kind: 'start', service: s.name, container: mine.id, restart: mine.status === 'exited' });
      }
      continue;
    }

    const image = actual.images[s.image];
    if (image === undefined || !holdsPinnedContent(s.image, image)) {
      // download-then-kill: the old container keeps running until the new image is here, and is
      // the content the reference pins (an image without the pinned digest is pulled, never run).
      if (s.tsunagu.update === 'kill-then-download' || facts.killFirst?.has(s.name) === true) for (const c of stale) down.push(...takeDown(c, s.stopGraceMs));
      if (!pulling.has(s.image) && !isBackingOff(facts.pullBackoff[s.image], facts.now)) {
        pulling.add(s.image);
        ups.push({ kind: 'pull', service: s.name, image: s.image });
      }
      continue;
    }

    if (backingOff) continue;
    // A stale container is replaced at the pace of its own back-off, so an engine that keeps refusing cannot make it a hot loop
    // (an update to another configuration is not held back by it).
    const replacing = stale.some((c) => c.configHash === hash && facts.staleRuntime?.has(c.id) === true);
    if (replacing && isBackingOff(facts.recoveryBackoff?.[s.name], facts.now)) continue;
    for (const c of stale) down.push(...takeDown(c, s.stopGraceMs));
    const name = containerName(facts.scope, s.name, hash);
    ups.push({ kind: 'create', service: s.name, desired: s, configHash: hash, name });
    if (dependenciesReady(s, current)) ups.push({ kind: 'start', service: s.name, container: name, restart: false });
  }
  return [...steps, ...downs.flat(), ...ups];
}

/**
 * Count the exits that the restart policy answers with a restart, into the
 * crash-loop back-off. Pure; returns a new state. An exit is keyed by
 * container id and finish time, so an exit seen both through the event
 * stream and at the next read counts once, and exits that happened while the
 * agent was down are counted when it comes back. `notCrashes` are exits the
 * agent knows were not the service's own (the engine stopped them).
 */
export function recordExits(
  actual: ActualState, desired: DesiredService[], backoff: BackoffState, now: number, policy: BackoffPolicy, notCrashes: ReadonlySet<string> = new Set(),
  staleRuntime?: ReadonlySet<string>,
): BackoffState {
  let next = backoff;
  for (const s of desired) {
    const hash = configHash(s);
    const mine = currentContainer(actual.containers.filter((c) => c.service === s.name), hash, staleRuntime);
    if (mine === undefined || mine.status !== 'exited' || mine.startedAt === null || mine.finishedAt === null) continue;
    if (notCrashes.has(mine.id)) continue;
    if (!wantsRestart(s, mine, backoff)) continue;
    const entry = recordFailure(next[s.name], {
      at: now, key: `${mine.id}@${mine.finishedAt}`, exitCode: mine.exitCode, ranForMs: Math.max(0, mine.finishedAt - mine.startedAt), configHash: hash,
    }, policy);
    if (entry !== next[s.name]) next = { ...next, [s.name]: entry };
  }
  return next;
}
