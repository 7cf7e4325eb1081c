import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import { bundleLikeAgent } from '../../scripts/bundle.mjs';
import type { BenchDevice } from '../bench-device.js';
import type { BenchWorld } from '../bench-world.js';
import { whenInterrupted } from '../interrupts.js';

/**
 * The floor variants measured beside the agents: the whole floor, then each
 * required package's part alone, so that the table can say where the floor
 * itself goes. `none` loads the floor's bundle and uses nothing (its source
 * kept by V8, node:child_process loaded at the top).
 */
export const FLOOR_VARIANTS = [
  { name: 'floor', parts: 'mqtt,engine,crypto,facts' },
  { name: 'mqtt', parts: 'mqtt' },
  { name: 'engine', parts: 'engine' },
  { name: 'crypto', parts: 'crypto' },
  { name: 'facts', parts: 'facts' },
  { name: 'none', parts: '' },
] as const;

export interface FloorProcess {
  name: (typeof FLOOR_VARIANTS)[number]['name'];
  child: ChildProcess;
}

/** Bundle bench/floor/floor-program.ts the agent's way; its size in bytes. */
export async function buildFloor(world: BenchWorld): Promise<{ file: string; bytes: number }> {
  return bundleLikeAgent('bench/floor/floor-program.ts', join(world.work, 'floor.js'));
}

/**
 * Start every floor variant under the agent's node flags and environment,
 * against the bench's broker (as its admin) and engine (the containers of
 * `device`); resolves when each has done its start-up I/O.
 */
export async function startFloors(world: BenchWorld, file: string, device: BenchDevice, flags: readonly string[], env: Readonly<Record<string, string>>): Promise<FloorProcess[]> {
  const config = JSON.stringify({
    brokerUrl: world.broker.url, username: world.broker.adminUser, password: world.broker.adminPassword,
    socketPath: world.dockerHost.replace(/^unix:\/\//, ''), label: `${LABELS.scope}=${device.scope}`,
  });
  const floors = FLOOR_VARIANTS.map(({ name, parts }) => ({
    name,
    child: spawn(process.execPath, [...flags, file, parts, config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }),
  }));
  const forget = whenInterrupted(() => stopFloors(floors));
  floors[0]?.child.once('exit', forget);
  await Promise.all(floors.map(({ name, child }) => new Promise<void>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('floor ready\n')) resolve();
    });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.once('exit', (code) => reject(new Error(`floor ${name} exited ${code} before it was ready: ${err.trim()}`)));
  })));
  return floors;
}

export function stopFloors(floors: readonly FloorProcess[]): void {
  for (const f of floors) f.child.kill();
}
