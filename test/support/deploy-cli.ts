import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ReportedState } from '../../protocol/desired.js';
import { FLEET_BUNDLE } from './agent-process.js';

// Helpers of the deploy integration tests: the shipped fleet CLI as a child
// process, and the reports a device publishes (built here, published by the
// test with the device's own credential).

export interface CliResult { status: number | null; stdout: string; stderr: string }

/**
 * Run a shipped bundle (`FLEET_BUNDLE`, `AGENT_BUNDLE`) as a child process and collect its output.
 * Asynchronous, not spawnSync: a broker, an enrollment service or agents' log readers may run in
 * this process and must keep being served meanwhile.
 */
export function runBundle(bundle: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bundle, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    // 'close', not 'exit': all of the output read.
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The shipped fleet CLI (see {@link runBundle}). */
export function fleetCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runBundle(FLEET_BUNDLE, args, env);
}

export const jsonLines = (text: string): Record<string, unknown>[] => text.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

/** A reported state as the device publishes it on its retained `state` topic. */
export function reported(over: Partial<ReportedState>): string {
  const s: ReportedState = { v: 1, at: Date.now(), desiredVersion: null, appliedVersion: null, status: 'applying', error: null, services: [], ...over };
  return JSON.stringify(s);
}

/** A minimal valid inventory report carrying `labels`. */
export function inventory(labels: Record<string, string>): string {
  return JSON.stringify({
    v: 1, at: Date.now(), hardware: {}, os: { platform: 'linux', distro: 'debian', release: '12', kernel: '6.1' }, arch: 'arm64',
    cpu: { model: 'cortex-a72', cores: 4, physicalCores: 4 }, memory: { totalBytes: 4e9 }, disks: [], filesystems: [], network: [],
    accelerators: [], devices: [], labels,
  });
}

/** `tsunagu-fleet deploy` of `compose` (written as a file in `work`) to one device; waits up to 120 s for its verdict. */
export function deployTo(fleetDir: string, work: string, deviceId: string, compose: Record<string, unknown>, extra: string[] = []): Promise<CliResult> {
  const file = join(work, `compose-${randomBytes(3).toString('hex')}.yaml`);
  writeFileSync(file, stringify(compose));
  return fleetCli(['deploy', '--dir', fleetDir, deviceId, file, '--timeout', '120', ...extra]);
}

/** `tsunagu-fleet serve` from the bundle on `fleetDir`, resolved once its enrollment service listens. */
export async function startServe(fleetDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [FLEET_BUNDLE, 'serve', '--dir', fleetDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited (${code})`)));
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('enrollment service listening')) resolve(); });
  });
  return child;
}

/** Stop a `serve` (SIGTERM) and wait for its exit; one that has exited already is left alone. */
export async function stopServe(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The shipped fleet CLI, synchronously: for a test with nothing in its own process to keep serving. */
export function fleetCliSync(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [FLEET_BUNDLE, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
