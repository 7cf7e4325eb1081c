import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEBIAN_MIRROR, DEBIAN_ROOT_CACHE, READY_MARKER, debianRootPath, debianRootReady, debianRootRecipe, type DebianArch,
} from './debian-root.js';

/**
 * Building a cached Debian root (test/support/debian-root.ts), before any test
 * file runs (scripts/debian-roots.ts). Minutes of work: amd64 natively, arm64
 * in two stages, the second under qemu-user-static.
 *
 * Atomic: the root is made in `debian12-<arch>.building` and renamed into
 * place only once complete, with the marker saying what it was made from
 * written last; a half-built root is never where the tests look.
 * Resumable where debootstrap can resume: the packages are downloaded into a
 * cache of their own (`debs/debian12-<arch>`, debootstrap's --cache-dir),
 * which outlives an interrupted build, and debootstrap checks each one there
 * against the archive's checksum before it uses it, so a partial download is
 * fetched again. The unpacking and configuring cannot resume (dpkg half-way
 * through a second stage): an interrupted build directory is discarded and
 * that part starts over, from the cached packages.
 */

export interface BuildReport {
  root: string;
  seconds: number;
}

/** Lines of progress, at most one every HEARTBEAT_MS while a phase goes on. */
const HEARTBEAT_MS = 15_000;

function elapsed(since: number, now: number): string {
  const s = Math.floor((now - since) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * debootstrap says one line per package and step ("I: Retrieving libc6…",
 * "I: Configuring nodejs…"): hundreds. This keeps the first line of each
 * phase, a line every HEARTBEAT_MS within a long phase (also when debootstrap
 * is silent, e.g. configuring one package under emulation for a minute), and
 * every warning and error.
 */
export class DebootstrapProgress {
  private phase = '';
  private count = 0;
  private last = '';
  private lastPrinted: number;

  constructor(
    private readonly label: string,
    private readonly print: (line: string) => void,
    private readonly started: number,
    private readonly now: () => number = Date.now,
  ) {
    this.lastPrinted = now();
  }

  line(raw: string): void {
    const text = raw.trim();
    if (text === '') return;
    if (/^[EW]: /.test(text)) {
      this.emit(text);
      return;
    }
    const info = /^I: (\S+)/.exec(text);
    if (info === null) return;
    // Retrieving and Validating alternate per package: one phase, the download.
    const phase = info[1] === 'Validating' ? 'Retrieving' : info[1]!;
    this.last = text.slice(3);
    if (phase !== this.phase) {
      this.phase = phase;
      this.count = 1;
      this.emit(this.last);
      return;
    }
    this.count += 1;
    this.tick();
  }

  /** Called on a timer as well: a line when nothing was printed for HEARTBEAT_MS. */
  tick(): void {
    if (this.phase === '' || this.now() - this.lastPrinted < HEARTBEAT_MS) return;
    const what = this.phase === 'Retrieving' ? 'package(s) retrieved or validated' : 'step(s)';
    this.emit(`… ${this.count} ${what} so far, last: ${this.last}`);
  }

  stage(text: string): void {
    this.phase = '';
    this.emit(text);
  }

  private emit(text: string): void {
    const now = this.now();
    this.lastPrinted = now;
    this.print(`[${this.label} ${elapsed(this.started, now)}] ${text}`);
  }
}

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo, octal escapes undone). */
function mountsUnder(dir: string): string[] {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(unescape)
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Remove a directory a build left. Every command of a build runs in a private
 * mount namespace, so nothing of it stays mounted; a tree left by an older
 * build could still hold /proc or a bind of /dev, and `rm -r` through a /dev
 * bind would empty the host's /dev: refuse rather than risk it.
 */
function discard(dir: string, why: string, progress: DebootstrapProgress): void {
  if (!existsSync(dir)) return;
  const mounted = mountsUnder(dir);
  if (mounted.length > 0) throw new Error(`${dir} has mounts under it (${mounted.join(', ')}): unmount them, then remove it`);
  progress.stage(`removing ${dir}, ${why}`);
  rmSync(dir, { recursive: true, force: true });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One build of a root at a time: a lock file with the builder's pid, taken over when that process is gone. */
function lock(path: string): () => void {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && processAlive(holder)) {
        throw new Error(`${path}: another build (pid ${holder}) is under way; let it finish`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new Error(`${path}: could not take the lock`);
}

/**
 * Run one command of the build in a private mount namespace (debootstrap
 * mounts /proc and /sys in the target; they go with the namespace however the
 * command ends), its output into `log` and through `progress`. Its own process
 * group, so that an abort stops debootstrap's children (wget, dpkg) too.
 */
function run(argv: string[], log: string, progress: DebootstrapProgress, signal: AbortSignal): Promise<void> {
  appendFileSync(log, `\n$ ${argv.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error('aborted'));
      return;
    }
    const child = spawn('unshare', ['-m', '--propagation', 'private', ...argv], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const abort = (): void => {
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ }
    };
    signal.addEventListener('abort', abort, { once: true });
    const heartbeat = setInterval(() => progress.tick(), 5_000);
    let pending = '';
    const take = (chunk: Buffer): void => {
      appendFileSync(log, chunk);
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) progress.line(l);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.once('error', reject);
    child.once('close', (code, sig) => {
      clearInterval(heartbeat);
      signal.removeEventListener('abort', abort);
      if (pending !== '') progress.line(pending);
      if (code === 0) resolve();
      else reject(new Error(`${argv.slice(0, 2).join(' ')} … ${signal.aborted ? 'aborted' : `failed (${sig ?? `exit ${code}`})`}; log: ${log}`));
    });
  });
}

/**
 * Build the root of `arch` unless a complete one of today's recipe is cached.
 * `print` receives the progress lines; `signal` stops the build (what was
 * downloaded stays in the package cache, the build directory is discarded by
 * the next build).
 */
export async function buildDebianRoot(arch: DebianArch, print: (line: string) => void, signal: AbortSignal): Promise<BuildReport | null> {
  const root = debianRootPath(arch);
  if (debianRootReady(arch)) return null;
  const started = Date.now();
  const progress = new DebootstrapProgress(`debian12-${arch}`, print, started);
  const debs = join(DEBIAN_ROOT_CACHE, 'debs', `debian12-${arch}`);
  mkdirSync(debs, { recursive: true });
  const unlock = lock(`${root}.lock`);
  try {
    const building = `${root}.building`;
    const log = `${root}.log`;
    discard(building, 'left by an interrupted build', progress);
    writeFileSync(log, `build of ${root} started ${new Date(started).toISOString()}\n`);
    const recipe = debianRootRecipe(arch);
    const common = ['--variant=minbase', `--include=${recipe.include.join(',')}`, `--cache-dir=${debs}`, recipe.suite, building, DEBIAN_MIRROR];
    if (arch === 'amd64') {
      progress.stage(`debootstrap ${recipe.suite} into ${building} (packages cached in ${debs}; log ${log})`);
      await run(['debootstrap', ...common], log, progress, signal);
    } else {
      // Two stages: the first downloads and unpacks on the host, the second
      // runs the arm64 maintainer scripts under qemu (the slow part).
      progress.stage(`debootstrap --foreign ${recipe.suite} into ${building}, stage 1 of 2: download and unpack (packages cached in ${debs}; log ${log})`);
      await run(['debootstrap', `--arch=${arch}`, '--foreign', ...common], log, progress, signal);
      copyFileSync('/usr/bin/qemu-aarch64-static', join(building, 'usr/bin/qemu-aarch64-static'));
      progress.stage('stage 2 of 2: debootstrap --second-stage under qemu-aarch64 (configures every package under emulation)');
      await run(['chroot', building, '/debootstrap/debootstrap', '--second-stage'], log, progress, signal);
    }
    const seconds = Math.round((Date.now() - started) / 1000);
    writeFileSync(join(building, READY_MARKER), `${JSON.stringify({ ...recipe, builtAt: new Date().toISOString(), seconds })}\n`);
    // A root of an older recipe is moved aside, not overwritten: rename cannot replace a directory.
    const old = `${root}.old`;
    discard(old, 'left by an interrupted replacement', progress);
    if (existsSync(root)) {
      if (mountsUnder(root).length > 0) throw new Error(`${root} is in use (mounted under); the new root stays in ${building}`);
      renameSync(root, old);
    }
    renameSync(building, root);
    discard(old, 'the root it replaces', progress);
    progress.stage(`complete: ${root}`);
    return { root, seconds };
  } finally {
    unlock();
  }
}
