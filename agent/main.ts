import { Command } from 'commander';
import { createLogger } from '../common/logger.js';
import { defaultEd25519 } from '../protocol/ed25519.js';
import { isTsunaguError } from '../protocol/errors.js';
import { Agent, AGENT_VERSION } from './agent.js';
import { DEFAULT_CONFIG_PATH, loadAgentConfig } from './config.js';
import { takeBootstrap } from './enrollment/bootstrap-source.js';
import { loadOrCreateKeys } from './identity.js';
import { SystemProbe } from './resources/system-probe.js';
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
  const logger = createLogger({ name: 'tsunagu-agent', level: config.logLevel });
  logger.info({ version: AGENT_VERSION, node: process.version, stateDir: config.stateDir }, 'starting');
  const { keys, created } = loadOrCreateKeys(config.stateDir, logger);
  const bootstrap = takeBootstrap(config.stateDir, config.bootstrapFile, logger);
  const agent = new Agent({ config, configFile: opts.config ?? DEFAULT_CONFIG_PATH, bootstrap, keys, keysCreated: created, ed: defaultEd25519(), logger, probe: new SystemProbe() });
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
  .addHelpText('after', '\nExamples:\n  tsunagu-agent run --bootstrap /boot/firmware/tsunagu.json\n  tsunagu-agent run --state-dir /tmp/dev1 --bootstrap ./bootstrap.json --startup-jitter 0\n')
  .action(run);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = isTsunaguError(err) ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
  process.stderr.write(`tsunagu-agent: ${message}\n`);
  // 78 (EX_CONFIG): only a person can fix it (a bad config, no bootstrap file); the systemd
  // unit says RestartPreventExitStatus=78 so the device does not restart-loop on it.
  process.exit(isTsunaguError(err) && (err.code === 'CONFIG' || err.code === 'BOOTSTRAP_MISSING') ? 78 : 1);
});
