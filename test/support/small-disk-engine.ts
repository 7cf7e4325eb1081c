import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';

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

/**
 * A dockerd of its own whose data root is a small ext4 filesystem (a sparse
 * file, loop-mounted), so that tests can fill the engine's disk for real:
 * no root reservation (`-m 0`), so free space is what `df` calls available.
 * Named after this process, so that no other run ever shares it. Needs root.
 */
export async function startSmallDiskEngine(sizeMiB: number): Promise<SmallDiskEngine> {
  const { dockerInstance, startDockerd, stopChild } = (await import(servicesModule)) as TestServices;
  const instance = dockerInstance(`small-${process.pid}`);
  const work = mkdtempSync(join(tmpdir(), 'tsunagu-small-disk-'));
  const image = join(work, 'disk.img');
  run('truncate', ['-s', `${sizeMiB}M`, image]);
  run('mkfs.ext4', ['-q', '-F', '-m', '0', '-b', '4096', image]);
  mkdirSync(instance.dataRoot, { recursive: true });
  run('mount', ['-o', 'loop', image, instance.dataRoot]);
  let started: Started;
  const stop = async (): Promise<void> => {
    await stopChild(started, 'small-disk dockerd');
    // The engine's own mounts under its data root go with it; then the filesystem itself.
    spawnSync('umount', ['-R', instance.dataRoot]);
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
  return { socket: instance.socket, dataRoot: instance.dataRoot, docker: new Docker({ socketPath: instance.socket }), stop };
}
