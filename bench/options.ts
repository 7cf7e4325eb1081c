/** Groups of figures a run can be limited to (`--only`), in the order a full run measures them. */
export const FIGURE_GROUPS = ['bundle', 'verify', 'enroll', 'rollout', 'steady', 'deploy', 'poweron', 'cold', 'report', 'update'] as const;
export type FigureGroup = (typeof FIGURE_GROUPS)[number];

export interface BenchOptions {
  /** The 30-minute window for growth and idle CPU (`--long`); the default is 5 minutes. */
  long: boolean;
  windowMs: number;
  warmupMs: number;
  only: ReadonlySet<FigureGroup>;
  /** Measure the node flags against each other instead of the figures (`--flags`). */
  flagsStudy: boolean;
  /** Update docs/benchmarks.md (off with `--no-write`, or when only some figures run). */
  write: boolean;
}

export const USAGE = `usage: npm run bench [-- --long] [--only ${FIGURE_GROUPS.join(',')}] [--window SECONDS] [--no-write]
       npm run bench -- --flags [--window SECONDS]`;

/** Pure: argv (after the script name) to options. Throws with the usage on anything unknown. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  let long = false;
  let flagsStudy = false;
  let write = true;
  let windowSec: number | undefined;
  let only: Set<FigureGroup> | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--long') long = true;
    else if (a === '--flags') flagsStudy = true;
    else if (a === '--no-write') write = false;
    else if (a === '--window') {
      windowSec = Number(argv[++i]);
      if (!Number.isFinite(windowSec) || windowSec < 30) throw new Error(`--window takes a number of seconds ≥ 30\n${USAGE}`);
    } else if (a === '--only') {
      const names = (argv[++i] ?? '').split(',').filter((n) => n !== '');
      const unknown = names.filter((n) => !(FIGURE_GROUPS as readonly string[]).includes(n));
      if (names.length === 0 || unknown.length > 0) throw new Error(`unknown figure group ${unknown.join(',') || '(none)'}\n${USAGE}`);
      only = new Set(names as FigureGroup[]);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  const defaultWindowSec = flagsStudy ? 180 : long ? 30 * 60 : 5 * 60;
  return {
    long,
    windowMs: (windowSec ?? defaultWindowSec) * 1000,
    warmupMs: 60_000,
    only: only ?? new Set(FIGURE_GROUPS),
    flagsStudy,
    // A partial run or a shortened window would overwrite the full table with a part of it.
    write: write && only === undefined && windowSec === undefined,
  };
}
