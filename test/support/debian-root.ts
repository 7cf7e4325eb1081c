import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A Debian 12 root made by debootstrap, for tests that must see the agent on
 * a device's own system: its `nodejs` 18, its users and groups, its systemd
 * unit directories. Built once per architecture and cached, before the test
 * files run (scripts/debian-roots.ts, test/support/debian-root-build.ts): a
 * build takes minutes, a test file's time limit is for the test. Tests work on
 * the cached root itself, so they must leave it as they found it (the install
 * test uninstalls with --purge, the arm64 test only writes under /tmp).
 *
 * A foreign architecture runs under qemu-user-static through binfmt_misc,
 * which this machine does not register at boot: it is registered here.
 */
export const DEBIAN_ROOT_CACHE = '/var/cache/tsunagu-test';
export const DEBIAN_SUITE = 'bookworm';
export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';

export const DEBIAN_ARCHES = ['amd64', 'arm64'] as const;
export type DebianArch = (typeof DEBIAN_ARCHES)[number];

/** Debian packages each root holds beyond minbase: node, and what install.sh and the unit check use. */
export const DEBIAN_ROOT_INCLUDE: Record<DebianArch, string[]> = {
  amd64: ['nodejs', 'systemd', 'passwd', 'procps'],
  arm64: ['nodejs'],
};

/** Where the complete root of `arch` lives; nothing but a complete root is ever renamed there. */
export function debianRootPath(arch: DebianArch): string {
  return join(DEBIAN_ROOT_CACHE, `debian12-${arch}`);
}

/**
 * The marker a build writes last, inside the root, before the rename: what the
 * root was made from. A root made from another recipe (an older include list)
 * is not ready, and is rebuilt.
 */
export const READY_MARKER = '.tsunagu-ready';

export interface DebianRootRecipe {
  suite: string;
  arch: DebianArch;
  include: string[];
}

export function debianRootRecipe(arch: DebianArch): DebianRootRecipe {
  return { suite: DEBIAN_SUITE, arch, include: DEBIAN_ROOT_INCLUDE[arch] };
}

/** Whether the cached root of `arch` is complete and made from today's recipe. */
export function debianRootReady(arch: DebianArch): boolean {
  let marker: unknown;
  try {
    marker = JSON.parse(readFileSync(join(debianRootPath(arch), READY_MARKER), 'utf8'));
  } catch {
    return false;
  }
  const want = debianRootRecipe(arch);
  const m = marker as Partial<DebianRootRecipe>;
  return m.suite === want.suite && m.arch === want.arch && JSON.stringify(m.include) === JSON.stringify(want.include);
}

export interface DebianRootProblem {
  /** Why no root can be had here: the tools are missing and cannot be installed. */
  missing: string;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function aptInstall(packages: string[]): boolean {
  if (process.getuid?.() !== 0) return false;
  console.log(`installing Debian packages: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'ignore', env });
  if (r.status === 0) return true;
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
  r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'ignore', env });
  return r.status === 0;
}

/** The tools a root of `arch` needs, installed when missing; a problem when they cannot be. */
export function debianRootTools(arch: DebianArch): DebianRootProblem | null {
  if (process.getuid?.() !== 0) return { missing: 'root (debootstrap and chroot need it)' };
  const wanted: [string, string][] = [['debootstrap', 'debootstrap'], ...(arch === 'arm64' ? [['qemu-aarch64-static', 'qemu-user-static'] as [string, string]] : [])];
  const missing = wanted.filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
  if (missing.length > 0 && !aptInstall(missing)) return { missing: `Debian packages ${missing.join(', ')} (apt-get install failed)` };
  if (arch === 'arm64') return registerQemuAarch64();
  return null;
}

/** binfmt_misc: mounted and told about qemu-aarch64 (from qemu-user-static's own binfmt.d entry). */
function registerQemuAarch64(): DebianRootProblem | null {
  const dir = '/proc/sys/fs/binfmt_misc';
  if (!existsSync(join(dir, 'register'))) {
    const r = spawnSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', dir], { encoding: 'utf8' });
    if (r.status !== 0) return { missing: `binfmt_misc (mount failed: ${r.stderr.trim()})` };
  }
  if (existsSync(join(dir, 'qemu-aarch64'))) return null;
  const conf = readFileSync('/usr/lib/binfmt.d/qemu-aarch64.conf', 'utf8')
    .split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
  if (conf === undefined) return { missing: 'a qemu-aarch64 binfmt entry in /usr/lib/binfmt.d' };
  try {
    writeFileSync(join(dir, 'register'), conf);
  } catch (err) {
    return { missing: `binfmt registration for qemu-aarch64 (${(err as Error).message})` };
  }
  return null;
}

/**
 * The cached root of `arch`. Never built here, inside a test file's time
 * limit: the test runner prepares the roots before the device test files.
 */
export function debianRoot(arch: DebianArch): string {
  if (debianRootReady(arch)) return debianRootPath(arch);
  throw new Error(`no complete Debian 12 ${arch} root in ${debianRootPath(arch)}: \`npm run test:device\` builds it before the test files `
    + `(alone: node --import tsx scripts/debian-roots.ts ${arch})`);
}

/**
 * Run `argv` inside `root` with /proc, /sys and /dev mounted (and any
 * `readOnlyBinds`, host dir on a path inside), in a private mount namespace so
 * that nothing stays mounted when it ends, whatever way it ends; with a clean
 * environment, as a device has (no DOCKER_HOST of the test run leaks in).
 */
export function chrootCommand(root: string, argv: string[], opts: { readOnlyBinds?: [string, string][] } = {}): { command: string; args: string[] } {
  const binds = (opts.readOnlyBinds ?? []).map(([host, inside]) => {
    const target = `"$0"${JSON.stringify(inside)}`;
    return `mkdir -p ${target} && mount --bind ${JSON.stringify(host)} ${target} && mount -o remount,bind,ro ${target} && `;
  }).join('');
  const script = `mount -t proc proc "$0/proc" && mount -t sysfs sysfs "$0/sys" && mount --rbind /dev "$0/dev" && ${binds}exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 chroot "$0" "$@"`;
  return { command: 'unshare', args: ['-m', '--propagation', 'private', 'sh', '-c', script, root, ...argv] };
}
