import type { DeviceEventBodyOf } from '../../protocol/events/device-events.js';
import type { RawSample } from '../resources/probe.js';
import type { TierEvictions } from '../supervisor/evictions.js';
import type { SupervisorLogger } from '../supervisor/supervisor-options.js';
import {
  evaluatePressure, evictedTiers, INITIAL_PRESSURE_STATE,
  type PressureChange, type PressurePolicyConfig, type PressureSample, type PressureState,
} from './pressure-policy.js';

/** What acts on the decision: the supervisor. */
export interface EvictionTarget {
  setEvictions(tiers: TierEvictions): void;
}

/**
 * A change of the pressure state, with the readings that caused it (an
 * `events` message, type `pressure`); `evicted`: the tiers evicted once the
 * sample that made the change is taken into account.
 */
export type PressureEvent = DeviceEventBodyOf<'pressure'>;

export interface PressureMonitorOptions {
  config: PressurePolicyConfig;
  target: EvictionTarget;
  /** Must not throw (a throw is logged and ignored). */
  onEvent?: (event: PressureEvent) => void;
  logger?: SupervisorLogger;
}

/** The part of a metrics sample the policy reads; `at` is the monotonic clock. */
export function pressureSampleOf(raw: RawSample): PressureSample {
  return {
    at: raw.monotonicMs,
    memoryAvailableBytes: raw.memory.availableBytes,
    memoryTotalBytes: raw.memory.totalBytes,
    temperatureCelsius: raw.temperatureC ?? null,
  };
}

/**
 * Runs the pressure policy on the samples the agent takes anyway for its
 * metrics (it reads nothing itself and has no timer), and hands the evicted
 * tiers to the supervisor when they change. Its state lives in memory only:
 * a restarted agent measures again.
 */
export class PressureMonitor {
  private state: PressureState = INITIAL_PRESSURE_STATE;

  constructor(private readonly opts: PressureMonitorOptions) {}

  /** The evicted tiers and why. */
  evicted(): TierEvictions {
    return { ...this.state.evicted };
  }

  observe(sample: PressureSample): void {
    const before = this.state.evicted;
    const { state, changes } = evaluatePressure(this.state, sample, this.opts.config);
    this.state = state;
    for (const change of changes) this.report(change, sample);
    if (evictedTiers(before).join() !== evictedTiers(state.evicted).join()) this.opts.target.setEvictions({ ...state.evicted });
  }

  private report(change: PressureChange, sample: PressureSample): void {
    const event: PressureEvent = {
      type: 'pressure', ...change, evicted: evictedTiers(this.state.evicted),
      memoryAvailableBytes: sample.memoryAvailableBytes, memoryTotalBytes: sample.memoryTotalBytes, temperatureCelsius: sample.temperatureCelsius,
    };
    if (change.change === 'entered' || change.change === 'escalated') this.opts.logger?.warn(event, `pressure ${change.change}`);
    else this.opts.logger?.info(event, `pressure ${change.change}`);
    try {
      this.opts.onEvent?.(event);
    } catch (err) {
      this.opts.logger?.warn({ err: String(err) }, 'pressure onEvent callback threw');
    }
  }
}
