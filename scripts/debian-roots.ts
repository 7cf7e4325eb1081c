// The cached Debian 12 roots of the device tests (test/device/), built when
// missing before any test file runs, so that a first build (minutes, arm64
// under emulation) never counts against a test file's time limit.
// `npm run test:device` runs it first (scripts/run-tests.mjs); alone:
//   node --import tsx scripts/debian-roots.ts [amd64] [arm64]
// A root whose tools cannot be had here (not root, apt fails, no binfmt_misc)
// is not built: its tests skip, saying why. A build that fails exits 1.
import { existsSync, readFileSync } from 'node:fs';
import { buildDebianRoot } from '../test/support/debian-root-build.js';
import { DEBIAN_ARCHES, debianRootPath, debianRootReady, debianRootTools, type DebianArch } from '../test/support/debian-root.js';

const isArch = (a: string): a is DebianArch => (DEBIAN_ARCHES as readonly string[]).includes(a);
const named = process.argv.slice(2);
const unknown = named.filter((a) => !isArch(a));
if (unknown.length > 0) {
  console.error(`unknown architecture ${unknown.join(', ')} (known: ${DEBIAN_ARCHES.join(', ')})`);
  process.exit(2);
}
const arches = named.length > 0 ? named.filter(isArch) : [...DEBIAN_ARCHES];

const abort = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => abort.abort());

// One after the other: two builds at once only share the same cores.
for (const arch of arches) {
  const problem = debianRootTools(arch);
  if (problem !== null) {
    console.log(`debian12-${arch}: not built, missing ${problem.missing}; its tests skip, saying so`);
    continue;
  }
  if (debianRootReady(arch)) {
    console.log(`debian12-${arch}: cached in ${debianRootPath(arch)}`);
    continue;
  }
  try {
    const built = await buildDebianRoot(arch, (line) => console.log(line), abort.signal);
    if (built !== null) console.log(`debian12-${arch}: built in ${Math.floor(built.seconds / 60)} min ${built.seconds % 60} s`);
  } catch (err) {
    const log = `${debianRootPath(arch)}.log`;
    if (!abort.signal.aborted && existsSync(log)) console.error(readFileSync(log, 'utf8').trimEnd().split('\n').slice(-15).join('\n'));
    console.error(`debian12-${arch}: ${(err as Error).message}`);
    process.exit(abort.signal.aborted ? 130 : 1);
  }
}
