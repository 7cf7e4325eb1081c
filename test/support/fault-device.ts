import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentProcess, type LogLine } from './agent-process.js';
import type { TestFleet } from './fleet.js';

/** One real agent process of a fault scenario, enrolled and online. */
export interface FaultDevice {
  agent: AgentProcess;
  deviceId: string;
  stateDir: string;
  bootstrapPath: string;
}

/**
 * Start the shipped agent bundle against `brokerUrl` (the broker itself, or a
 * proxy in front of it: the bootstrap file's URL is the one the device uses
 * for enrollment and for its own session) and wait until it is online.
 */
export async function startFaultDevice(args: {
  work: string; name: string; tf: TestFleet; brokerUrl: string; configYaml: string; env?: NodeJS.ProcessEnv; node?: string; extraArgs?: string[];
}): Promise<FaultDevice> {
  const stateDir = join(args.work, args.name);
  const bootstrapPath = join(args.work, `${args.name}-bootstrap.json`);
  writeFileSync(bootstrapPath, JSON.stringify({ ...args.tf.bootstrap, broker: { ...args.tf.bootstrap.broker, url: args.brokerUrl } }));
  const agent = new AgentProcess({
    stateDir, bootstrapPath, configYaml: args.configYaml,
    ...(args.env === undefined ? {} : { env: args.env }),
    ...(args.node === undefined ? {} : { node: args.node }),
    ...(args.extraArgs === undefined ? {} : { extraArgs: args.extraArgs }),
  });
  // An agent that exits at start (a config it refuses) fails the test at once, not at a timeout.
  const exitedEarly = agent.exited.then((code) => { throw new Error(`agent exited with ${code}: ${agent.lines.slice(-3).map((l) => JSON.stringify(l)).join('\n')}`); });
  const found = await Promise.race([agent.waitForMsg(/^enrolled$|identity found/, 60_000), exitedEarly]);
  const deviceId = typeof found.deviceId === 'string' ? found.deviceId : '';
  await Promise.race([agent.waitForLog(isLinkState('online'), 30_000), exitedEarly]);
  exitedEarly.catch(() => undefined);
  return { agent, deviceId, stateDir, bootstrapPath };
}

/** Matches the agent's log line for a link state change to `state`. */
export const isLinkState = (state: 'online' | 'offline' | 'connecting') => (l: LogLine): boolean => l.link === state;

/** The agent's own time of a log line (pino's ISO `time`), in ms since the epoch. */
export function logTime(line: LogLine): number {
  const t = Date.parse(String(line.time));
  if (Number.isNaN(t)) throw new Error(`log line without a time: ${JSON.stringify(line)}`);
  return t;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
