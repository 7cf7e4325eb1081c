import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A Debian 12 root made by debootstrap, for tests that must see the agent on
 * a device's own system: its `nodejs` 18, its users and groups, its systemd
 * unit directories. Built once per architecture and cached; tests work on a
 * copy-free root, so they must leave it as they found it (the install test
 * uninstalls with --purge, the arm64 test only writes under /tmp).
 *
 * A foreign architecture runs under qemu-user-static through binfmt_misc,
 * which this machine does not register at boot: it is registered here.
 */
export const DEBIAN_ROOT_CACHE = '/var/cache/tsunagu-test';
const MIRROR = 'http://deb.debian.org/debian';

export type DebianArch = 'amd64' | 'arm64';

/** Debian packages each root holds beyond minbase: node, and what install.sh and the unit check use. */
const INCLUDE: Record<DebianArch, string[]> = {
  amd64: ['nodejs', 'systemd', 'passwd', 'procps'],
  arm64: ['nodejs'],
};

export interface DebianRootProblem {
  /** Why no root can be had here: the tools are missing and cannot be installed. */
  missing: string;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function aptInstall(packages: string[]): boolean {
  if (process.getuid?.() !== 0) return false;
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

/** The cached root of `arch`, built first when missing (minutes, once). */
export function debianRoot(arch: DebianArch): string {
  const root = join(DEBIAN_ROOT_CACHE, `debian12-${arch}`);
  if (existsSync(join(root, '.tsunagu-ready'))) return root;
  const building = `${root}.building`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(DEBIAN_ROOT_CACHE, { recursive: true });
  const include = `--include=${INCLUDE[arch].join(',')}`;
  if (arch === 'amd64') {
    execFileSync('debootstrap', ['--variant=minbase', include, 'bookworm', building, MIRROR], { stdio: 'ignore' });
  } else {
    // Two stages: the first unpacks on the host, the second runs the arm64 maintainer scripts under qemu.
    execFileSync('debootstrap', ['--arch=arm64', '--foreign', '--variant=minbase', include, 'bookworm', building, MIRROR], { stdio: 'ignore' });
    copyFileSync('/usr/bin/qemu-aarch64-static', join(building, 'usr/bin/qemu-aarch64-static'));
    execFileSync('chroot', [building, '/debootstrap/debootstrap', '--second-stage'], { stdio: 'ignore' });
  }
  writeFileSync(join(building, '.tsunagu-ready'), `${new Date().toISOString()}\n`);
  renameSync(building, root);
  return root;
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
