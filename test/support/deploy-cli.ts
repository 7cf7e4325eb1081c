import { spawn } from 'node:child_process';
import type { ReportedState } from '../../protocol/desired.js';
import { FLEET_BUNDLE } from './agent-process.js';

// Helpers of the deploy integration tests: the shipped fleet CLI as a child
// process, and the reports a device publishes (built here, published by the
// test with the device's own credential).

export interface CliResult { status: number | null; stdout: string; stderr: string }

export function fleetCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FLEET_BUNDLE, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
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
