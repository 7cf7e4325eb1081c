import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { testDocker } from './test-docker.js';

export interface SmallDiskEngine {
  socket: string;
  /** The engine's data root: the mount point of the small filesystem. */
  dataRoot: string;
  docker: Docker;
  stop(): Promise<void>;
}

interface Instance { socket: string; host: string; dataRoot: string; execRoot: string; pidfile: string }
type Started = { child: { pid?: number; exitCode: number | null; kill(signal: string): boolean }; exited: Promise<unknown> } | undefined;
/** The parts of scripts/test-services.mjs used here (a JavaScript module without types). */
interface TestServices {
  dockerInstance: (name: string) => Instance;
  startDockerd: (stateDir: string, instance: Instance) => Promise<Started>;
  stopChild: (started: Started, name: string) => Promise<void>;
}
const servicesModule = '../../scripts/test-services.mjs';

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * What a run of these tests left behind when it was killed before its
 * cleanup (a file over the runner's timeout): the engine of a test process
 * that is gone, its filesystem still mounted. Only instances named after a
 * dead process are touched, so a concurrent run is never disturbed.
 */
/** Unmount the data root (and the engine's mounts under it); the engine's containerd lets go a moment after the engine ends. */
async function unmount(dataRoot: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if (spawnSync('umount', ['-R', dataRoot]).status === 0 || spawnSync('mountpoint', ['-q', dataRoot]).status !== 0) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

async function removeOrphans(dockerInstance: (name: string) => Instance): Promise<void> {
  for (const dir of readdirSync('/var/lib').filter((d) => /^tsunagu-test-docker-small-\d+$/.test(d))) {
    const owner = Number(dir.slice('tsunagu-test-docker-small-'.length));
    if (alive(owner)) continue;
    const instance = dockerInstance(`small-${owner}`);
    const engine = existsSync(instance.pidfile) ? Number(readFileSync(instance.pidfile, 'utf8').trim()) : NaN;
    if (Number.isInteger(engine) && engine > 1 && alive(engine)) {
      process.kill(engine, 'SIGTERM');
      for (let i = 0; i < 300 && alive(engine); i++) await new Promise((r) => setTimeout(r, 100));
    }
    if (!await unmount(instance.dataRoot)) continue; // still busy: left for a later run rather than deleted while mounted
    rmSync(instance.dataRoot, { recursive: true, force: true });
    rmSync(instance.execRoot, { recursive: true, force: true });
    rmSync(instance.pidfile, { force: true });
    rmSync(instance.socket, { force: true });
    for (const d of readdirSync(tmpdir()).filter((n) => n.startsWith(`tsunagu-small-disk-${owner}-`))) rmSync(join(tmpdir(), d), { recursive: true, force: true });
  }
}

/**
 * A dockerd of its own whose data root is a small ext4 filesystem (a sparse
 * file, loop-mounted), so that tests can fill the engine's disk for real:
 * no root reservation (`-m 0`), so free space is what `df` calls available.
 * Named after this process, so that no other run ever shares it. Needs root.
 */
export async function startSmallDiskEngine(sizeMiB: number): Promise<SmallDiskEngine> {
  const { dockerInstance, startDockerd, stopChild } = (await import(servicesModule)) as TestServices;
  await removeOrphans(dockerInstance);
  const instance = dockerInstance(`small-${process.pid}`);
  const work = mkdtempSync(join(tmpdir(), `tsunagu-small-disk-${process.pid}-`));
  const image = join(work, 'disk.img');
  run('truncate', ['-s', `${sizeMiB}M`, image]);
  run('mkfs.ext4', ['-q', '-F', '-m', '0', '-b', '4096', image]);
  mkdirSync(instance.dataRoot, { recursive: true });
  run('mount', ['-o', 'loop', image, instance.dataRoot]);
  let started: Started;
  const stop = async (): Promise<void> => {
    await stopChild(started, 'small-disk dockerd');
    // The engine's own mounts under its data root go with it; then the filesystem itself.
    if (!await unmount(instance.dataRoot)) throw new Error(`${instance.dataRoot} stays busy; a later run removes it`);
    rmSync(instance.dataRoot, { recursive: true, force: true });
    rmSync(instance.execRoot, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  };
  try {
    started = await startDockerd(work, instance);
    if (started === undefined) throw new Error(`a dockerd already answers on ${instance.socket}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { socket: instance.socket, dataRoot: instance.dataRoot, docker: testDocker(instance.socket), stop };
}
