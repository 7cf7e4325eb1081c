// First: it must run before any module that builds a schema (see the file).
import './zod-jitless.js';
import { Command } from 'commander';
import { createLogger } from '../common/logger.js';
import { defaultEd25519 } from '../protocol/ed25519.js';
import { isTsunaguError, TsunaguError } from '../protocol/errors.js';
import { Agent, AGENT_VERSION } from './agent.js';
import { DEFAULT_CONFIG_PATH, loadAgentConfig } from './config.js';
import { systemClock } from './clock.js';
import { runDoctor } from './doctor/doctor-probes.js';
import { doctorExitCode, renderDoctor } from './doctor/doctor-verdicts.js';
import { stateDirOwner, takeBootstrap } from './enrollment/bootstrap-source.js';
import { removeLeftoverTempFiles } from './state/leftover-temp-files.js';
import { acquireStateDirLock, processStartTicks, readStateDirLock } from './state/state-dir-lock.js';
import { lockSummary } from './state/state-lock.js';
import { agentAlive } from './status/agent-alive.js';
import { readStatusFile, statusPath, StatusFile } from './status/status-file.js';
import { renderStatus } from './status/status-view.js';
import { loadOrCreateKeys } from './identity.js';
import { refuseIfRetired } from './retirement.js';
import { ownStaticFactsCommand } from './resources/static-facts-child.js';
import { SystemProbe } from './resources/system-probe.js';
import { dockerClient } from './supervisor/docker-client.js';
import { systemdNotifyTarget } from './watchdog/systemd-env.js';
import { SystemdNotifier } from './watchdog/systemd-notifier.js';
import { SystemdWatchdog } from './watchdog/watchdog.js';

async function run(opts: { config?: string; stateDir?: string; bootstrap?: string; logLevel?: string; startupJitter?: string; serial?: string }): Promise<void> {
  const config = loadAgentConfig(opts.config, {
    stateDir: opts.stateDir,
    bootstrapFile: opts.bootstrap,
    logLevel: opts.logLevel as never,
  });
  if (opts.startupJitter !== undefined) config.enrollment.startupJitterMs = Number(opts.startupJitter);
  if (opts.serial !== undefined) config.enrollment.serial = opts.serial;
  // Before anything is written in the state directory, the status file included:
  // a second agent there must leave the first one's files and broker session alone.
  const lock = acquireStateDirLock(config.stateDir, { command: commandLine() });
  // Only now: a writer in this directory is either this process or gone (or a root take-bootstrap, left alone).
  const leftovers = removeLeftoverTempFiles(config.stateDir, (pid) => pid === process.pid || processStartTicks(pid) !== undefined);
  // Before the logger: every warning it logs reaches the status file.
  const status = new StatusFile(statusPath(config.stateDir), AGENT_VERSION);
  // Built once here and handed down: the wall clock and the container engine's client.
  const clock = systemClock;
  const docker = dockerClient(config.runtime.socket);
  const logger = createLogger({ name: 'tsunagu-agent', level: config.logLevel, onProblem: (p) => status.error({ at: clock.now(), ...p }) });
  logger.info({ version: AGENT_VERSION, node: process.version, stateDir: config.stateDir }, 'starting');
  if (lock.tookOver.length > 0) logger.info({ claims: lock.tookOver }, 'state directory lock: removed the claims of agents that are gone');
  if (leftovers.length > 0) logger.info({ files: leftovers }, 'removed temp files of interrupted writes');
  // Before the keys: a retired device must not make new ones and enroll as a new device.
  refuseIfRetired(config.stateDir);
  const { keys, created } = loadOrCreateKeys(config.stateDir, logger);
  const bootstrap = takeBootstrap(config.stateDir, config.bootstrapFile, logger);
  const agent = new Agent({ config, configFile: opts.config ?? DEFAULT_CONFIG_PATH, bootstrap, keys, keysCreated: created, ed: defaultEd25519(), logger, probe: new SystemProbe({ staticFactsCommand: ownStaticFactsCommand() }), status, clock, docker,
    onRetired: () => {
      // Exit 0: done as asked; the unit (Restart=on-failure) leaves it stopped, and at the next boot refuseIfRetired says why.
      void Promise.resolve(watchdog?.stopping()).finally(() => process.exit(0));
    } });
  const target = config.watchdog.mode === 'off' ? null : systemdNotifyTarget(process.env, process.pid);
  const watchdog = target === null ? undefined : new SystemdWatchdog({
    target,
    notifier: new SystemdNotifier({ socket: target.socket, asRoot: process.getuid?.() === 0, logger }),
    limits: { maxStallMs: config.watchdog.maxStallMs, maxReconcileMs: config.watchdog.maxReconcileMs },
    reconcilingForMs: () => agent.reconcilingForMs(),
    status: () => agent.statusLine(),
    onStuck: (reason) => agent.emitEvent({ type: 'watchdog-stuck', reason }),
    logger,
  });
  watchdog?.start();
  void agent.running.then(() => watchdog?.ready());
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const told = watchdog?.stopping();
    agent.stop().then(() => told).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGUSR2', () => logger.info({ diagnostics: agent.diagnostics() }, 'diagnostics'));
  try {
    await agent.start();
  } catch (err) {
    if (stopping) return;
    throw err;
  }
}

/** What `doctor` shows as the lock holder's command. */
function commandLine(): string {
  const line = process.argv.join(' ');
  return line.length <= 300 ? line : `${line.slice(0, 299)}…`;
}

function configFrom(opts: { config?: string; stateDir?: string }) {
  return loadAgentConfig(opts.config, { stateDir: opts.stateDir });
}

function status(opts: { config?: string; stateDir?: string; json?: boolean }): void {
  const config = configFrom(opts);
  const read = readStatusFile(config.stateDir);
  if (read.status !== 'ok') {
    const why = read.status === 'missing'
      ? `no status in ${config.stateDir}: the agent has not run yet with this state directory (systemctl status tsunagu-agent)`
      : `cannot read the agent's status: ${read.message}${process.getuid?.() === 0 ? '' : ' (run as root or as the tsunagu user)'}`;
    if (opts.json === true) process.stdout.write(`${JSON.stringify({ running: false, error: why })}\n`);
    else process.stderr.write(`tsunagu-agent: ${why}\n`);
    process.exitCode = 3;
    return;
  }
  const running = agentAlive(read.value.pid);
  const lock = readStateDirLock(config.stateDir);
  process.stdout.write(opts.json === true ? `${JSON.stringify({ running, lock: lockSummary(lock), ...read.value })}\n` : renderStatus(read.value, running, Date.now(), lock));
  if (!running) process.exitCode = 3;
}

async function doctor(opts: { config?: string; stateDir?: string; json?: boolean }): Promise<void> {
  const config = configFrom(opts);
  const results = await runDoctor(config, { docker: dockerClient(config.runtime.socket), clock: systemClock });
  const code = doctorExitCode(results);
  process.stdout.write(opts.json === true ? `${JSON.stringify({ exitCode: code, checks: results })}\n` : renderDoctor(results));
  // Everything is said: a request to an engine that never answered must not keep the command waiting.
  process.exit(code);
}

/** As root before the agent starts (the unit's ExecStartPre=+): the boot partition is root's to change. */
function takeBootstrapCommand(opts: { config?: string; stateDir?: string; bootstrap?: string }): void {
  const config = loadAgentConfig(opts.config, { stateDir: opts.stateDir, bootstrapFile: opts.bootstrap });
  const logger = createLogger({ name: 'tsunagu-agent', level: config.logLevel });
  const owner = stateDirOwner(config.stateDir);
  if (owner === undefined) throw new TsunaguError('CONFIG', `state directory ${config.stateDir} does not exist: install.sh creates it (or systemd's StateDirectory=)`);
  try {
    takeBootstrap(config.stateDir, config.bootstrapFile, logger, { owner });
  } catch (err) {
    // Nothing to take is not a failure here: `run` says so, and keeps saying it until a file appears.
    if (!isTsunaguError(err) || err.code !== 'BOOTSTRAP_MISSING') throw err;
    logger.warn({ code: err.code }, err.message);
  }
}

function exitStatusOf(err: unknown): number {
  if (!isTsunaguError(err)) return 1;
  // 78 (EX_CONFIG): only a person can fix it (a bad config, no bootstrap file); the systemd
  // unit says RestartPreventExitStatus=78 so the device does not restart-loop on it.
  if (err.code === 'CONFIG' || err.code === 'BOOTSTRAP_MISSING') return 78;
  // 75 (EX_TEMPFAIL): it ends by itself when the other agent stops. Not 78: systemd must keep
  // trying, or a device whose agent was started by hand would be left with none after it.
  if (err.code === 'STATE_DIR_LOCKED') return 75;
  return 1;
}

const program = new Command('tsunagu-agent')
  .description('tsunagu device agent: enrolls this device, keeps its link to the fleet, runs its containers')
  .version(AGENT_VERSION);

program.command('run', { isDefault: true })
  .description('run the agent (enrolls on first boot)')
  .option('-c, --config <file>', 'agent config file (default /etc/tsunagu/agent.yaml)')
  .option('--state-dir <dir>', 'state directory (default /var/lib/tsunagu)')
  .option('--bootstrap <file>', 'bootstrap file (default: searched on the boot partition and in /etc/tsunagu)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace')
  .option('--startup-jitter <ms>', 'random wait before the first enrollment attempt')
  .option('--serial <serial>', 'serial to present at enrollment, for boards that have none')
  .addHelpText('after', '\nExit code: 75 another agent runs on this state directory (STATE_DIR_LOCKED), 78 a bad config or no bootstrap file.\n\nExamples:\n  tsunagu-agent run --bootstrap /boot/firmware/tsunagu.json\n  tsunagu-agent run --state-dir /tmp/dev1 --bootstrap ./bootstrap.json --startup-jitter 0\n')
  .action(run);

program.command('status')
  .description('what the running agent is doing: identity, link, services, last errors (read from its state directory)')
  .option('-c, --config <file>', 'agent config file (default /etc/tsunagu/agent.yaml)')
  .option('--state-dir <dir>', 'state directory (default: from the config, /var/lib/tsunagu)')
  .option('--json', 'one JSON object, for scripts')
  .addHelpText('after', '\nExit code: 0 the agent runs, 3 it does not (or has never run).\n\nExamples:\n  sudo tsunagu-agent status\n  sudo tsunagu-agent status --json | jq .services\n')
  .action(status);

program.command('doctor')
  .description('check what the agent needs: engine socket, broker, clock, free disk and memory; says what to fix')
  .option('-c, --config <file>', 'agent config file (default /etc/tsunagu/agent.yaml)')
  .option('--state-dir <dir>', 'state directory (default: from the config, /var/lib/tsunagu)')
  .option('--json', 'one JSON object, for scripts')
  .addHelpText('after', '\nExit code: 0 all checks passed, 1 warnings, 2 a check failed.\n\nExamples:\n  sudo tsunagu-agent doctor\n  sudo -u tsunagu tsunagu-agent doctor     # as the agent itself: its socket permissions\n  tsunagu-agent doctor --json | jq \'.checks[] | select(.verdict != "ok")\'\n')
  .action(doctor);

program.command('take-bootstrap')
  .description('move the bootstrap file off the boot partition into the state directory (run as root before the agent; the systemd unit does)')
  .option('-c, --config <file>', 'agent config file (default /etc/tsunagu/agent.yaml)')
  .option('--state-dir <dir>', 'state directory (default /var/lib/tsunagu)')
  .option('--bootstrap <file>', 'bootstrap file (default: searched on the boot partition and in /etc/tsunagu)')
  .addHelpText('after', '\nExamples:\n  sudo tsunagu-agent take-bootstrap\n')
  .action(takeBootstrapCommand);

// Internal: the agent reads its static facts through this, in a child that
// exits at once (agent/resources/static-facts-child.ts). JSON on stdout.
program.command('static-facts', { hidden: true })
  .description('print the static facts of this machine as JSON (used by the agent itself)')
  .action(async () => {
    const facts = await new SystemProbe().readStaticHere();
    process.stdout.write(`${JSON.stringify(facts)}\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = isTsunaguError(err) ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
  process.stderr.write(`tsunagu-agent: ${message}\n`);
  process.exit(exitStatusOf(err));
});
