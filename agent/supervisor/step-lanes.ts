import type { ActualState } from './actual-state.js';
import type { DesiredService } from '../../protocol/compose/desired-service.js';
import type { Step } from './steps.js';

/**
 * The steps of one service, in plan order: its old containers' stop and
 * remove, then its new container's create and start. Lanes run side by
 * side, so that each service is down only for its own swap.
 */
export interface Lane {
  service: string;
  /** Never a pull: pulls run beside the passes (background-pulls.ts). */
  steps: Step[];
  /**
   * Lanes (indexes into the schedule) whose stops and removes must be done
   * before this lane takes anything down: those of the services that depend
   * on this one, directly or through others, so that a dependent goes down
   * before what it depends on.
   */
  takeDownAfter: number[];
  /** Lanes that must have ended before this lane begins at all: the removal of services no longer desired. */
  after: number[];
}

/** Service → the services it depends on: the desired ones' `depends_on`, and the labels of containers of services no longer desired. */
export function dependencyGraph(actual: ActualState, desired: DesiredService[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  const add = (service: string, deps: Iterable<string>): void => {
    const set = graph.get(service) ?? new Set<string>();
    for (const d of deps) set.add(d);
    graph.set(service, set);
  };
  const wanted = new Set(desired.map((s) => s.name));
  for (const s of desired) add(s.name, s.dependsOn.map((d) => d.service));
  for (const c of actual.containers) if (!wanted.has(c.service)) add(c.service, c.dependsOn);
  return graph;
}

export const isTakeDown = (step: Step): boolean => step.kind === 'stop' || step.kind === 'remove';

/**
 * Split a plan (in the serial order `plan()` returns) into lanes. Pure.
 *
 * Order is kept where it matters and nowhere else:
 * - a service's own steps stay in plan order (its old container is gone
 *   before the new one starts: ports, devices and volumes are free);
 * - a service takes nothing down before every service that depends on it has
 *   (`takeDownAfter`); starts need no such edge, because the planner plans a
 *   dependent's start only once its dependencies run, which is never in the
 *   same plan as their replacement;
 * - the containers of services no longer desired are taken down before any
 *   lane of a desired service begins (`after`): a service renamed in the
 *   new version takes over the ports of the old name. The old containers of
 *   the waiting lanes keep running meanwhile, so the wait costs no downtime.
 */
export function inLanes(steps: Step[], dependsOn: ReadonlyMap<string, ReadonlySet<string>>, wanted: ReadonlySet<string>): Lane[] {
  const byService = new Map<string, Step[]>();
  const firstTakeDown = new Map<string, number>();
  steps.forEach((step, at) => {
    if (step.kind === 'pull') return;
    byService.set(step.service, [...(byService.get(step.service) ?? []), step]);
    if (isTakeDown(step) && !firstTakeDown.has(step.service)) firstTakeDown.set(step.service, at);
  });
  const services = [...byService.keys()];
  const index = new Map(services.map((s, i) => [s, i]));
  const dependents = (service: string): Set<string> => {
    const out = new Set<string>();
    const visit = (s: string): void => {
      for (const [other, deps] of dependsOn) {
        if (!deps.has(s) || out.has(other) || other === service) continue;
        out.add(other);
        visit(other);
      }
    };
    visit(service);
    return out;
  };
  const leaving = services.filter((s) => !wanted.has(s)).map((s) => index.get(s) ?? -1);
  return services.map((service) => {
    const mine = byService.get(service) ?? [];
    const at = firstTakeDown.get(service);
    // Only lanes whose take-down comes earlier in the serial plan: the plan puts dependents first, and
    // an order taken from one sequence has no cycle (dependency labels of several versions could).
    const takeDownAfter = at === undefined ? [] : [...dependents(service)]
      .filter((d) => (firstTakeDown.get(d) ?? Infinity) < at)
      .map((d) => index.get(d) ?? -1)
      .sort((a, b) => a - b);
    return { service, steps: mine, takeDownAfter, after: wanted.has(service) ? leaving : [] };
  });
}
