import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentProcess } from '../test/support/agent-process.js';
import type { BenchWorld } from './bench-world.js';
import { whenInterrupted } from './interrupts.js';

/** Reports as the footprint figures specify them: a metrics report every 10 s. */
export const REPORT_EVERY_MS = 10_000;

/**
 * One simulated board running the real agent bundle under the production
 * node flags, with its own state directory (so it enrolls once and then
 * restarts with its identity on disk) and its own ownership scope on the
 * engine. Logs at `info`, the production level: debug lines would cost CPU
 * the figures must not include.
 */
export class BenchDevice {
  readonly stateDir: string;
  readonly scope: string;
  deviceId: string | undefined;
  agent: AgentProcess | undefined;
  private forget: (() => void) | undefined;

  constructor(private readonly world: BenchWorld, readonly name: string, private readonly nodeFlags: readonly string[], private readonly env: NodeJS.ProcessEnv = {}) {
    this.stateDir = join(world.work, name, 'state');
    this.scope = `${world.runLabel}-${name}`.slice(0, 31);
    mkdirSync(this.stateDir, { recursive: true });
  }

  private configYaml(): string {
    return [
      'enrollment: { startupJitterMs: 0, backoffBaseMs: 200, backoffCapMs: 2000 }',
      'link: { backoffBaseMs: 100, backoffCapMs: 1000 }',
      `reports: { metricsIntervalMs: ${REPORT_EVERY_MS}, sampleIntervalMs: ${REPORT_EVERY_MS} }`,
      `runtime: { scope: ${this.scope}, socket: ${this.world.dockerHost.replace(/^unix:\/\//, '')} }`,
      '',
    ].join('\n');
  }

  /** Start the agent process; resolves once it is spawned (not yet online). */
  start(): AgentProcess {
    if (this.agent !== undefined) throw new Error(`${this.name} is already running`);
    this.agent = new AgentProcess({
      stateDir: this.stateDir, bootstrapPath: this.world.bootstrapPath, configYaml: this.configYaml(),
      nodeArgs: [...this.nodeFlags], extraArgs: ['--log-level', 'info'], env: this.env,
    });
    this.forget = whenInterrupted(() => this.stop());
    return this.agent;
  }

  /** Start, enroll if needed, and wait until the link is online. */
  async startOnline(timeoutMs = 60_000): Promise<AgentProcess> {
    const agent = this.start();
    await agent.waitForMsg(/→ online/, timeoutMs);
    this.deviceId ??= (JSON.parse(readFileSync(join(this.stateDir, 'identity.json'), 'utf8')) as { grant: { deviceId: string } }).grant.deviceId;
    return agent;
  }

  async stop(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    this.forget?.();
    await agent?.stop();
  }

  get pid(): number {
    const pid = this.agent?.pid;
    if (pid === undefined) throw new Error(`${this.name} is not running`);
    return pid;
  }
}
