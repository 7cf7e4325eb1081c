import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type Docker from 'dockerode';
import type { Clock } from '../clock.js';
import { BootstrapFileSchema } from '../../protocol/bootstrap.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import type { AgentConfig } from '../config.js';
import { IdentityFileSchema, statePaths } from '../identity.js';
import { readFileIfExists } from '../../common/atomic-file.js';
import { readStateDirLock } from '../state/state-dir-lock.js';
import { agentAlive } from '../status/agent-alive.js';
import { readStatusFile } from '../status/status-file.js';
import { defaultSocket } from '../supervisor/engine-errors.js';
import { judgeBroker, judgeClock, judgeDisk, judgeEngine, judgeLock, judgeMemory, type BrokerReading, type CheckResult } from './doctor-verdicts.js';
import { probeMqttConnect } from './mqtt-connect-probe.js';

const TIMESYNC_FLAG = '/run/systemd/timesync/synchronized';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Read a JSON file of the state dir without touching it (the agent's loaders move bad files aside). */
function readState<T>(path: string, schema: Parameters<typeof checkSchema<T>>[0]): T | undefined {
  try {
    const bytes = readFileIfExists(path);
    return bytes === undefined ? undefined : checkSchema(schema, parseJsonBytes(bytes), path);
  } catch {
    return undefined;
  }
}

function diskReading(path: string): { freeBytes: number; totalBytes: number } | { error: string } {
  try {
    const s = statfsSync(path);
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
}

function memoryReading(): { availableBytes: number; totalBytes: number } {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(meminfo)?.[1] ?? 0) * 1024;
  return { availableBytes: kib('MemAvailable'), totalBytes: kib('MemTotal') };
}

async function engineChecks(docker: Docker, socket: string): Promise<CheckResult[]> {
  try {
    const v = await withTimeout(docker.version(), 5_000, 'engine');
    const engine = judgeEngine(socket, { version: v.Version, apiVersion: v.ApiVersion });
    // The engine's data root is usually closed to the agent's user (0710 root): its parent is the same file system.
    const info = await withTimeout(docker.info() as Promise<{ DockerRootDir?: string }>, 5_000, 'engine').catch(() => ({ DockerRootDir: undefined }));
    const root = info.DockerRootDir ?? '/var/lib/docker';
    let reading = diskReading(root);
    let shown = root;
    if ('error' in reading && reading.error === 'EACCES') {
      shown = dirname(root);
      reading = diskReading(shown);
    }
    return [engine, judgeDisk('disk', `${shown} (engine data)`, reading)];
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return [judgeEngine(socket, { error: e.message, code: e.code })];
  }
}

async function brokerReading(stateDir: string, clock: Clock): Promise<BrokerReading> {
  const paths = statePaths(stateDir);
  const bootstrap = readState(paths.bootstrap, BootstrapFileSchema);
  const url = bootstrap?.broker.url ?? '(no bootstrap file taken yet)';
  const identity = readState(paths.identity, IdentityFileSchema);
  if (bootstrap === undefined || identity === undefined) return { kind: 'not-enrolled', url };
  const status = readStatusFile(stateDir);
  if (status.status === 'ok' && status.value.link.state === 'online' && agentAlive(status.value.pid)) {
    return { kind: 'agent-online', url, since: status.value.link.since, now: clock.now() };
  }
  const result = await probeMqttConnect({
    url, ca: bootstrap.broker.ca, protocolVersion: bootstrap.broker.protocolVersion,
    clientId: identity.grant.clientId, username: identity.grant.username, password: identity.grant.password,
  });
  return { kind: 'probe', url, ...result };
}

/**
 * Every check, in the order a person fixes things: who holds the state directory, the engine, the broker, the clock, then room.
 * `docker` is the engine client main.ts built on the config's socket; `clock` its wall clock.
 */
export async function runDoctor(config: AgentConfig, { docker, clock }: { docker: Docker; clock: Clock }): Promise<CheckResult[]> {
  const socket = config.runtime.socket ?? defaultSocket();
  const [engine, broker] = await Promise.all([engineChecks(docker, socket), brokerReading(config.stateDir, clock)]);
  return [
    judgeLock(config.stateDir, readStateDirLock(config.stateDir)),
    engine[0]!,
    judgeBroker(broker),
    judgeClock({ mode: config.clock.trust, synchronised: existsSync(TIMESYNC_FLAG), now: clock.now() }),
    judgeDisk('disk', `${config.stateDir} (agent state)`, diskReading(existsSync(config.stateDir) ? config.stateDir : dirname(config.stateDir))),
    ...engine.slice(1),
    judgeMemory(memoryReading()),
  ];
}
