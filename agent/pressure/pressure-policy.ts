import type { EvictableTier, TierEvictions } from '../supervisor/evictions.js';

/** One resource reading, as the metrics sampler takes it. */
export interface PressureSample {
  /** Monotonic ms: the periods below must not jump with a wall-clock step (NTP after a boot in 1970). */
  at: number;
  memoryAvailableBytes: number;
  memoryTotalBytes: number;
  /** The hottest thermal zone; null when the machine has none or it could not be read. */
  temperatureCelsius: number | null;
}

/**
 * Each rule has two thresholds: it starts pressure past the first and ends it
 * only past the second, so that a reading hovering around one threshold
 * cannot switch services on and off.
 */
export interface MemoryRule {
  /** Pressure when MemAvailable is below this share of MemTotal… */
  evictBelowPercent: number;
  /** …and over once it is above this one (greater than `evictBelowPercent`). */
  clearAbovePercent: number;
  /** Optional floor in bytes: pressure also when MemAvailable is below it (for boards where a share is too coarse). */
  evictBelowBytes?: number | undefined;
  /** With `evictBelowBytes`: the pressure is over only once MemAvailable is also above this. */
  clearAboveBytes?: number | undefined;
}

export interface TemperatureRule {
  /** Pressure at or above this temperature… */
  evictAtCelsius: number;
  /** …over at or below this one (lower than `evictAtCelsius`). */
  clearAtCelsius: number;
}

export interface PressurePolicyConfig {
  /** null: the rule is off. */
  memory: MemoryRule | null;
  temperature: TemperatureRule | null;
  /** Best-effort services go at once; normal ones when the pressure lasts this long after that. */
  escalateAfterMs: number;
  /** The pressure must stay clear this long before a tier comes back, and as long again before the next one. */
  clearForMs: number;
}

export interface PressureState {
  /** Why memory is under pressure (the reading that crossed the threshold); null while it is not. */
  memory: string | null;
  temperature: string | null;
  /** Start of the current pressure (monotonic ms); null while clear. */
  pressureSince: number | null;
  /** Since when the pressure is clear, or since the last tier came back, whichever is later; null under pressure. */
  clearSince: number | null;
  /** The evicted tiers and the reason each went for. */
  evicted: TierEvictions;
}

/** What one sample changed, in the order it happened. */
export type PressureChange =
  | { change: 'entered'; reason: string }
  | { change: 'escalated'; reason: string }
  | { change: 'cleared'; reason: string }
  | { change: 'restored'; tier: EvictableTier; reason: string };

export const INITIAL_PRESSURE_STATE: PressureState = { memory: null, temperature: null, pressureSince: null, clearSince: null, evicted: {} };

/** Normal services come back before best-effort ones: they went last and matter more. */
const RETURN_ORDER: readonly EvictableTier[] = ['normal', 'best-effort'];

const MiB = 1024 * 1024;

function formatMiB(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** The memory rule's side of its band after this sample: a reason while under pressure, else null. */
function memoryPressure(rule: MemoryRule | null, sample: PressureSample, previous: string | null): string | null {
  if (rule === null) return null;
  // MemTotal 0 is a broken read, not an empty machine: it proves nothing either way.
  if (!(sample.memoryTotalBytes > 0)) return previous;
  const available = sample.memoryAvailableBytes;
  const percent = (available / sample.memoryTotalBytes) * 100;
  if (previous === null) {
    const reading = `memory available ${formatMiB(available)} (${percent.toFixed(1)} % of ${formatMiB(sample.memoryTotalBytes)})`;
    if (percent < rule.evictBelowPercent) return `${reading} below ${rule.evictBelowPercent} %`;
    if (rule.evictBelowBytes !== undefined && available < rule.evictBelowBytes) return `${reading} below ${formatMiB(rule.evictBelowBytes)}`;
    return null;
  }
  const clear = percent > rule.clearAbovePercent && (rule.clearAboveBytes === undefined || available > rule.clearAboveBytes);
  return clear ? null : previous;
}

function temperaturePressure(rule: TemperatureRule | null, sample: PressureSample, previous: string | null): string | null {
  if (rule === null) return null;
  const t = sample.temperatureCelsius;
  // No reading is no evidence: neither a reason to evict nor a sign of cooling.
  if (t === null || !Number.isFinite(t)) return previous;
  if (previous === null) return t >= rule.evictAtCelsius ? `temperature ${t.toFixed(1)} °C at or above ${rule.evictAtCelsius} °C` : null;
  return t <= rule.clearAtCelsius ? null : previous;
}

function clearReason(config: PressurePolicyConfig, sample: PressureSample): string {
  const parts: string[] = [];
  if (config.memory !== null && sample.memoryTotalBytes > 0) {
    parts.push(`memory available ${((sample.memoryAvailableBytes / sample.memoryTotalBytes) * 100).toFixed(1)} % (clear above ${config.memory.clearAbovePercent} %)`);
  }
  if (config.temperature !== null && sample.temperatureCelsius !== null) {
    parts.push(`temperature ${sample.temperatureCelsius.toFixed(1)} °C (clear at or below ${config.temperature.clearAtCelsius} °C)`);
  }
  return parts.join('; ');
}

/**
 * Pure: the pressure state after one sample, and what changed. Under
 * pressure, best-effort services are evicted at once and normal ones when the
 * pressure outlasts `escalateAfterMs`; critical ones never. Once the readings
 * are back past their clear thresholds and stay there for `clearForMs`, the
 * normal tier returns, then after another `clearForMs` the best-effort one.
 * Pressure that comes back meanwhile restarts the wait; what is still evicted
 * stays evicted. Decisions are taken only when a sample arrives: no timer.
 */
export function evaluatePressure(state: PressureState, sample: PressureSample, config: PressurePolicyConfig): { state: PressureState; changes: PressureChange[] } {
  const now = sample.at;
  const memory = memoryPressure(config.memory, sample, state.memory);
  const temperature = temperaturePressure(config.temperature, sample, state.temperature);
  const reasons = [memory, temperature].filter((r): r is string => r !== null);
  const changes: PressureChange[] = [];
  const evicted: TierEvictions = { ...state.evicted };
  let { pressureSince, clearSince } = state;

  if (reasons.length > 0) {
    const reason = reasons.join('; ');
    if (pressureSince === null) {
      pressureSince = now;
      clearSince = null;
      evicted['best-effort'] ??= reason;
      changes.push({ change: 'entered', reason });
    }
    const lasted = now - pressureSince;
    if (evicted.normal === undefined && lasted >= config.escalateAfterMs) {
      const why = `${reason}; pressure lasted ${formatSeconds(lasted)} with best-effort services evicted`;
      evicted.normal = why;
      changes.push({ change: 'escalated', reason: why });
    }
  } else {
    if (pressureSince !== null) {
      pressureSince = null;
      clearSince = now;
      changes.push({ change: 'cleared', reason: clearReason(config, sample) });
    }
    const tier = RETURN_ORDER.find((t) => evicted[t] !== undefined);
    if (tier !== undefined && clearSince !== null && now - clearSince >= config.clearForMs) {
      delete evicted[tier];
      changes.push({ change: 'restored', tier, reason: `pressure clear for ${formatSeconds(now - clearSince)}` });
      // The next tier waits a period of its own: what just came back may bring the pressure with it.
      clearSince = now;
    }
    if (RETURN_ORDER.every((t) => evicted[t] === undefined)) clearSince = null;
  }
  return { state: { memory, temperature, pressureSince, clearSince, evicted }, changes };
}

/** The evicted tiers, for events and logs. */
export function evictedTiers(evicted: TierEvictions): EvictableTier[] {
  return RETURN_ORDER.filter((t) => evicted[t] !== undefined);
}
