import type { DesiredService } from '../../protocol/compose/desired-service.js';

/**
 * What the planner asks for, as plain data. Every kind needs an executor in
 * executor.ts: the executor table is typed so that a kind without one does
 * not compile.
 */
export type Step =
  | { kind: 'pull'; service: string; image: string }
  | { kind: 'create'; service: string; desired: DesiredService; configHash: string; name: string }
  /** `container` is an id, or the name given by a `create` earlier in the same plan. */
  | { kind: 'start'; service: string; container: string; restart: boolean }
  | { kind: 'stop'; service: string; containerId: string; timeoutMs: number }
  | { kind: 'remove'; service: string; containerId: string };

export type StepKind = Step['kind'];

/** One line for logs and reports. */
export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'pull': return `pull ${step.image} for ${step.service}`;
    case 'create': return `create ${step.name} (${step.desired.image})`;
    case 'start': return `${step.restart ? 'restart' : 'start'} ${step.service} (${step.container.slice(0, 12)})`;
    case 'stop': return `stop ${step.service} (${step.containerId.slice(0, 12)})`;
    case 'remove': return `remove ${step.service} (${step.containerId.slice(0, 12)})`;
  }
}
