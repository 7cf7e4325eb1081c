import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { AgentProcess, FLEET_BUNDLE, readLogLine, type LogLine } from './agent-process.js';
import { freePort } from './mosquitto.js';
import { removeContainers, TEST_LABEL, testDocker } from './test-docker.js';
import { settleWaiters } from './waiters.js';

export interface CliResult { status: number | null; stdout: string; stderr: string }

/** One device of the world: the shipped agent with its own container scope on the test dockerd. */
export interface WorldDevice {
  name: string;
  agent: AgentProcess;
  scope: string;
  deviceId: string;
}

/** The running `serve` (embedded broker, enrollment, deployment reconciler) and its JSON log lines. */
export interface ServeProcess {
  child: ChildProcess;
  lines: LogLine[];
  /** Resolve with the first log line (past or future) that matches. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

/**
 * A fleet as an operator has it, with the shipped bundles: `init` with the
 * embedded broker, one bootstrap file, `serve` running, and devices started
 * from that bootstrap file alone. Reusable by every deployments scenario
 * (rollouts, halts, a killed `serve`).
 */
export class DeploymentWorld {
  readonly devices: WorldDevice[] = [];
  serve: ServeProcess | undefined;
  /** Every container of this world carries `TEST_LABEL=<this>`; each device's also `io.tsunagu.scope=<its scope>`. */
  readonly testScope = `depl-${randomBytes(3).toString('hex')}`;
  readonly docker: Docker = testDocker();

  private constructor(readonly work: string, readonly fleetDir: string, readonly bootstrapPath: string) {}

  static async start(prefix = 'tsunagu-deployments-'): Promise<DeploymentWorld> {
    const work = mkdtempSync(join(tmpdir(), prefix));
    const world = new DeploymentWorld(work, join(work, 'fleet'), join(work, 'bootstrap.json'));
    const init = await world.cli('init', '--fleet-id', 'depl', '--listen', `127.0.0.1:${await freePort()}`, '--claim-token', 'depl-token');
    if (init.status !== 0) throw new Error(`init failed: ${init.stderr}`);
    const boot = await world.cli('bootstrap', '--out', world.bootstrapPath, '--claim-token', 'depl-token');
    if (boot.status !== 0) throw new Error(`bootstrap failed: ${boot.stderr}`);
    await world.startServe();
    return world;
  }

  /** Run the shipped `tsunagu-fleet` with `--dir` of this fleet added after the verb(s). */
  cli(...args: string[]): Promise<CliResult> {
    const verbs = args[0] === 'deployment' ? 2 : 1;
    const argv = [...args.slice(0, verbs), '--dir', this.fleetDir, ...args.slice(verbs)];
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [FLEET_BUNDLE, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('exit', (status) => resolve({ status, stdout, stderr }));
    });
  }

  /** Like {@link cli}, throwing with its output unless it exits 0. */
  async ok(...args: string[]): Promise<string> {
    const r = await this.cli(...args);
    if (r.status !== 0) throw new Error(`tsunagu-fleet ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Write a compose document into the work directory; returns its path. */
  composeFile(doc: Record<string, unknown>): string {
    const file = join(this.work, `compose-${randomBytes(3).toString('hex')}.yaml`);
    writeFileSync(file, stringify(doc));
    return file;
  }

  /**
   * An idle service labelled for this world's clean-up. `sleep` as PID 1 ignores SIGTERM, so a
   * short grace period keeps each replacement from waiting out Docker's default 10 s.
   */
  service(image: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { image, network_mode: 'none', restart: 'always', command: ['sleep', '3600'], stop_grace_period: '1s', labels: { [TEST_LABEL]: this.testScope }, ...extra };
  }

  async startServe(): Promise<ServeProcess> {
    const child = spawn(process.execPath, [FLEET_BUNDLE, 'serve', '--dir', this.fleetDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: LogLine[] = [];
    const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
    let buffered = '';
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const line = readLogLine(text, 'serve');
        lines.push(line);
        settleWaiters(waiters, line);
      }
    });
    const serve: ServeProcess = {
      child, lines,
      waitForLog: (match, timeoutMs = 15_000) => {
        const seen = lines.find(match);
        if (seen !== undefined) return Promise.resolve(seen);
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no matching serve log line within ${timeoutMs} ms; last lines:\n${lines.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`)), timeoutMs);
          waiters.push({ match, resolve: (l) => { clearTimeout(timer); resolve(l); } });
        });
      },
    };
    this.serve = serve;
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`serve exited (${code})`)));
      void serve.waitForLog((l) => l.msg === 'enrollment service listening', 30_000).then(() => resolve(), reject);
    });
    return serve;
  }

  /** Stop `serve`: SIGTERM for a clean stop, SIGKILL for a crash. */
  async stopServe(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.serve?.child;
    this.serve = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  /** Power a new device on with the bootstrap file only; resolves once it is enrolled and online. */
  async addDevice(name: string, extraConfig = ''): Promise<WorldDevice> {
    const scope = `${this.testScope}-${name}`;
    const agent = new AgentProcess({
      stateDir: join(this.work, `device-${name}`), bootstrapPath: this.bootstrapPath,
      configYaml: `enrollment: { startupJitterMs: 0, backoffBaseMs: 200, backoffCapMs: 2000 }\nlink: { keepaliveSeconds: 5, backoffBaseMs: 100, backoffCapMs: 1000 }\nruntime: { scope: ${scope} }\nrollout: { probationMs: 1500 }\n${extraConfig}`,
    });
    const deviceId = String((await agent.waitForMsg('enrolled', 60_000)).deviceId);
    await agent.waitForMsg(/→ online/, 30_000);
    const device = { name, agent, scope, deviceId };
    this.devices.push(device);
    return device;
  }

  /** The running containers of one device, by service name → image. */
  async running(device: WorldDevice): Promise<Record<string, string>> {
    const list = await this.docker.listContainers({ filters: { label: [`io.tsunagu.scope=${device.scope}`] } });
    const pairs: [string, string][] = list.filter((c) => c.State === 'running').map((c) => [c.Labels['io.tsunagu.service'] ?? '?', c.Image]);
    return Object.fromEntries(pairs.sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  async close(): Promise<void> {
    await Promise.all(this.devices.map((d) => d.agent.stop()));
    await this.stopServe();
    await removeContainers(this.docker, `${TEST_LABEL}=${this.testScope}`);
    rmSync(this.work, { recursive: true, force: true });
  }
}
