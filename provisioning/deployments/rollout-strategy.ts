import * as z from 'zod';
import { TsunaguError } from '../../protocol/errors.js';

/**
 * How a new revision of a deployment reaches its targets (docs/deployments.md, "Rollout rules").
 *
 * - `waves`: cumulative sizes, each a count of devices or a percentage of the targets; the last
 *   is always 100 %, so a rollout that passes every wave leaves no target behind.
 * - `bakeMs`: how long a device must stay healthy after it passed its probation.
 * - `maxFailures`: the failures the rollout tolerates: a count, or a percentage of the devices
 *   tried so far; one more halts it.
 * - `onHalt`: `revert` puts failed devices back on the previous revision, `hold` leaves them.
 * - `deadlineMs`: how long a wave member has, from the publish, to start its bake before it stops
 *   holding the wave (it is then `deferred` if it showed no fault, `failed` if it did).
 */
export const WaveSizeSchema = z.union([
  z.strictObject({ count: z.int().min(1) }),
  z.strictObject({ percent: z.number().gt(0).max(100) }),
]);
export type WaveSize = z.infer<typeof WaveSizeSchema>;

export const MaxFailuresSchema = z.union([
  z.strictObject({ count: z.int().min(0) }),
  z.strictObject({ percent: z.number().min(0).max(100) }),
]);
export type MaxFailures = z.infer<typeof MaxFailuresSchema>;

export const OnHaltValues = ['revert', 'hold'] as const;
export type OnHalt = (typeof OnHaltValues)[number];

export const RolloutStrategySchema = z.strictObject({
  waves: z.array(WaveSizeSchema).min(1).max(20),
  bakeMs: z.int().min(0),
  maxFailures: MaxFailuresSchema,
  onHalt: z.enum(OnHaltValues),
  deadlineMs: z.int().min(1),
}).superRefine((s, ctx) => {
  const problem = wavesProblem(s.waves);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, path: ['waves'] });
});
export type RolloutStrategy = z.infer<typeof RolloutStrategySchema>;

const MINUTE = 60_000;

/** Canary, a tenth, half, everyone; ten minutes of bake; halt past 5 % failures and put them back. */
export const DEFAULT_STRATEGY: RolloutStrategy = {
  waves: [{ count: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }],
  bakeMs: 10 * MINUTE,
  maxFailures: { percent: 5 },
  onHalt: 'revert',
  // Long enough for a pull over a slow link; past it an offline device no longer holds its wave.
  deadlineMs: 30 * MINUTE,
};

function bad(flag: string, text: string, why: string): never {
  throw new TsunaguError('BAD_ROLLOUT_STRATEGY', `bad ${flag} "${text}": ${why}`);
}

/**
 * Why a list of waves cannot be a rollout, or undefined when it can. Counts and percentages
 * each grow strictly (a wave no larger than the one before would pass at once); the last is 100 %.
 */
function wavesProblem(waves: readonly WaveSize[]): string | undefined {
  let lastCount = 0;
  let lastPercent = 0;
  for (const w of waves) {
    if ('count' in w) {
      if (w.count <= lastCount) return `the wave of ${w.count} device(s) is not larger than an earlier one (waves are cumulative)`;
      lastCount = w.count;
    } else {
      if (w.percent <= lastPercent) return `the wave of ${w.percent}% is not larger than an earlier one (waves are cumulative)`;
      lastPercent = w.percent;
    }
  }
  const last = waves[waves.length - 1];
  if (last === undefined || !('percent' in last) || last.percent !== 100) return 'the last wave must be 100% (every target)';
  return undefined;
}

/** `1,10%,50%,100%`: counts and percentages of the targets, cumulative, ending at 100%. */
export function parseWaves(text: string): WaveSize[] {
  const flag = '--waves';
  if (text.trim() === '') bad(flag, text, 'it is empty (expected e.g. 1,10%,50%,100%)');
  const waves = text.split(',').map((raw): WaveSize => {
    const part = raw.trim();
    if (/^[0-9]+$/.test(part)) {
      const count = Number(part);
      if (count < 1 || !Number.isSafeInteger(count)) bad(flag, text, `"${part}" is not a device count of at least 1`);
      return { count };
    }
    const m = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(part);
    if (m === null) bad(flag, text, `"${part}" is neither a device count (5) nor a percentage (10%)`);
    const percent = Number(m[1]);
    if (percent <= 0 || percent > 100) bad(flag, text, `"${part}" is not a percentage above 0 and at most 100`);
    return { percent };
  });
  if (waves.length > 20) bad(flag, text, 'more than 20 waves');
  const problem = wavesProblem(waves);
  if (problem !== undefined) bad(flag, text, problem);
  return waves;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: MINUTE, h: 60 * MINUTE, d: 24 * 60 * MINUTE };

/** `10m`, `90s`, `1h30m`, `0`: a duration in milliseconds. A bare number other than 0 is refused: its unit would be a guess. */
export function parseDuration(text: string, flag = '--bake'): number {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  if (!/^([0-9]+(ms|s|m|h|d))+$/.test(trimmed)) bad(flag, text, 'expected a duration such as 10m, 90s, 1h30m or 0 (units ms, s, m, h, d)');
  let ms = 0;
  for (const m of trimmed.matchAll(/([0-9]+)(ms|s|m|h|d)/g)) ms += Number(m[1]) * UNITS[m[2]!]!;
  if (!Number.isSafeInteger(ms) || ms > 30 * UNITS.d!) bad(flag, text, 'longer than 30 days');
  return ms;
}

/** `5%` of the devices tried so far, or `3` devices. */
export function parseMaxFailures(text: string): MaxFailures {
  const flag = '--max-failures';
  const part = text.trim();
  if (/^[0-9]+$/.test(part)) {
    const count = Number(part);
    if (!Number.isSafeInteger(count)) bad(flag, text, 'too large');
    return { count };
  }
  const m = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(part);
  if (m === null) bad(flag, text, 'expected a device count (3) or a percentage of the devices tried (5%)');
  const percent = Number(m[1]);
  if (percent > 100) bad(flag, text, 'a percentage above 100');
  return { percent };
}

export function parseOnHalt(text: string): OnHalt {
  const value = text.trim();
  if (value !== 'revert' && value !== 'hold') bad('--on-halt', text, 'expected revert or hold');
  return value;
}

/** The strategy flags as the CLI receives them; each one absent takes its default. */
export interface StrategyFlags {
  waves?: string;
  bake?: string;
  maxFailures?: string;
  onHalt?: string;
  deadline?: string;
}

/** Parse the flags at the boundary, once; throws BAD_ROLLOUT_STRATEGY naming the flag. */
export function parseStrategy(flags: StrategyFlags, defaults: RolloutStrategy = DEFAULT_STRATEGY): RolloutStrategy {
  const deadlineMs = flags.deadline === undefined ? defaults.deadlineMs : parseDuration(flags.deadline, '--wave-deadline');
  if (deadlineMs === 0) bad('--wave-deadline', flags.deadline ?? '0', 'must be longer than 0');
  return {
    waves: flags.waves === undefined ? defaults.waves : parseWaves(flags.waves),
    bakeMs: flags.bake === undefined ? defaults.bakeMs : parseDuration(flags.bake),
    maxFailures: flags.maxFailures === undefined ? defaults.maxFailures : parseMaxFailures(flags.maxFailures),
    onHalt: flags.onHalt === undefined ? defaults.onHalt : parseOnHalt(flags.onHalt),
    deadlineMs,
  };
}

/** Read a strategy stored as JSON (the fleet database); a bad one is BAD_ROLLOUT_STRATEGY, not a crash. */
export function strategyFromJson(value: unknown): RolloutStrategy {
  const r = RolloutStrategySchema.safeParse(value);
  if (!r.success) throw new TsunaguError('BAD_ROLLOUT_STRATEGY', `stored rollout strategy: ${r.error.issues.map((i) => i.message).join('; ')}`);
  return r.data;
}

/**
 * The cumulative number of devices each wave holds for `targets` devices. A percentage rounds
 * up, so every wave of a non-empty fleet holds at least one device; sizes never shrink and the
 * last is every target. Two waves may come out equal on a small fleet: the second passes at once.
 */
export function waveSizes(waves: readonly WaveSize[], targets: number): number[] {
  let previous = 0;
  return waves.map((w) => {
    const raw = 'count' in w ? w.count : Math.ceil((w.percent * targets) / 100 - 1e-9);
    previous = Math.max(previous, Math.min(targets, raw));
    return previous;
  });
}

/** Failures tolerated among `tried` devices: one more halts the rollout. A percentage rounds down. */
export function allowedFailures(maxFailures: MaxFailures, tried: number): number {
  return 'count' in maxFailures ? maxFailures.count : Math.floor((maxFailures.percent * tried) / 100 + 1e-9);
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [['d', UNITS.d!], ['h', UNITS.h!], ['m', UNITS.m!], ['s', UNITS.s!], ['ms', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}

/** The strategy as the flags that would give it, for `status` and the audit log. */
export function formatStrategy(s: RolloutStrategy): string {
  const waves = s.waves.map((w) => ('count' in w ? String(w.count) : `${w.percent}%`)).join(',');
  const failures = 'count' in s.maxFailures ? String(s.maxFailures.count) : `${s.maxFailures.percent}%`;
  return `--waves ${waves} --bake ${formatDuration(s.bakeMs)} --max-failures ${failures} --on-halt ${s.onHalt} --wave-deadline ${formatDuration(s.deadlineMs)}`;
}
