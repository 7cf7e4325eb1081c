import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { settleWaiters } from './waiters.js';

export const AGENT_BUNDLE = resolve('dist/tsunagu-agent.js');
export const FLEET_BUNDLE = resolve('dist/tsunagu-fleet.js');

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

/** One line of a program's JSON log (a line that is no JSON becomes its `msg`), echoed with TSUNAGU_TEST_VERBOSE. */
export function readLogLine(text: string, program: string): LogLine {
  if (process.env.TSUNAGU_TEST_VERBOSE) process.stderr.write(`[${program}] ${text}\n`);
  try {
    return JSON.parse(text) as LogLine;
  } catch {
    return { msg: text };
  }
}

/** The real agent bundle in a child process, with its JSON log lines collected. */
export class AgentProcess {
  readonly lines: LogLine[] = [];
  private readonly child: ChildProcess;
  private readonly waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<number | null>;

  /** `serial`: the serial the device presents; by default one derived from its state dir. */
  /**
   * `launch`: the whole command line instead of the usual one (an agent
   * installed in a chroot, run as its own user); the other options then do nothing.
   */
  constructor(args: { stateDir: string; bootstrapPath?: string; configYaml?: string; serial?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv; node?: string; nodeArgs?: string[]; bundle?: string; launch?: { command: string; args: string[] } }) {
    this.child = args.launch !== undefined ? spawn(args.launch.command, args.launch.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...args.env } }) : AgentProcess.spawnAgent(args);
    this.exited = new Promise((res) => this.child.once('exit', (code) => res(code)));
    this.follow();
  }

  private static spawnAgent(args: { stateDir: string; bootstrapPath?: string; configYaml?: string; serial?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv; node?: string; nodeArgs?: string[]; bundle?: string }): ChildProcess {
    const configPath = join(args.stateDir, '..', `agent-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(configPath, args.configYaml ?? FAST_TEST_CONFIG);
    // Every test device is its own board: a serial derived from its state dir,
    // stable across restarts of the same device.
    const serial = args.serial ?? `test-${createHash('sha256').update(resolve(args.stateDir)).digest('hex').slice(0, 16)}`;
    const argv = [args.bundle ?? AGENT_BUNDLE, 'run', '--state-dir', args.stateDir, '--config', configPath, '--startup-jitter', '0', '--log-level', 'debug', '--serial', serial,
      ...(args.bootstrapPath === undefined ? [] : ['--bootstrap', args.bootstrapPath]), ...(args.extraArgs ?? [])];
    return spawn(args.node ?? process.execPath, [...(args.nodeArgs ?? []), ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...args.env } });
  }

  private follow(): void {
    const rl = createInterface({ input: this.child.stdout! });
    rl.on('line', (text) => this.record(readLogLine(text, 'agent')));
    // Waited for like log lines: a refusal at start is said on stderr, and may arrive after the exit.
    this.child.stderr!.on('data', (d: Buffer) => this.record({ msg: `stderr: ${d.toString()}` }));
  }

  private record(line: LogLine): void {
    this.lines.push(line);
    settleWaiters(this.waiters, line);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resolve with the first log line (past or future) that matches. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no matching agent log line within ${timeoutMs} ms; last lines:\n${this.lines.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`));
      }, timeoutMs);
      this.waiters.push({ match, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  }

  waitForMsg(msg: string | RegExp, timeoutMs?: number): Promise<LogLine> {
    return this.waitForLog((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))), timeoutMs);
  }

  /** Wait until a new device has enrolled and its link is online; resolves with its device id. */
  async enrolledAndOnline(timeoutMs?: number): Promise<string> {
    const deviceId = String((await this.waitForMsg('enrolled', timeoutMs)).deviceId);
    await this.waitForMsg(/→ online/);
    return deviceId;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Short back-off so that tests do not wait on production timings. */
export const FAST_TEST_CONFIG = `
enrollment:
  startupJitterMs: 0
  backoffBaseMs: 200
  backoffCapMs: 2000
link:
  keepaliveSeconds: 5
  backoffBaseMs: 100
  backoffCapMs: 1000
`;

/**
 * {@link FAST_TEST_CONFIG}'s back-offs, a clock trusted (commands judged by it), and reports that
 * stay quiet during a test: the base of a test's config, its own lines put after it.
 */
export const TRUSTED_QUIET_CONFIG = `
enrollment: { startupJitterMs: 0, backoffBaseMs: 200, backoffCapMs: 2000 }
link: { keepaliveSeconds: 5, backoffBaseMs: 100, backoffCapMs: 1000 }
clock: { trust: always }
reports: { metricsIntervalMs: 60000, sampleIntervalMs: 30000 }
`;
