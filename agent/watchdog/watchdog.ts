import type { Logger } from '../../common/logger.js';
import { HEALTHY, judgeLoop, watchdogTiming, type LoopHealth } from './loop-health.js';
import type { NotifyFields, Notifier } from './systemd-notifier.js';
import type { SystemdNotifyTarget } from './systemd-env.js';

export interface SystemdWatchdogOptions {
  target: SystemdNotifyTarget;
  notifier: Notifier;
  /** `maxStallMs` absent: the ping interval (half the watchdog timeout). */
  limits: { maxStallMs?: number; maxReconcileMs: number };
  reconcilingForMs: () => number | null;
  /** One line for `systemctl status`: what the agent is doing. */
  status: () => string;
  /** The agent found itself stuck and stops pinging (for an event to the fleet). */
  onStuck: (reason: string) => void;
  logger: Logger;
  /** Monotonic milliseconds. */
  now?: () => number;
}

/**
 * The agent's side of systemd's service protocol: READY once its loops run,
 * STATUS, STOPPING at shutdown, and watchdog pings while the main loop is
 * healthy (agent/watchdog/loop-health.ts decides). A probe timer measures
 * how late it fires; every ping interval, a healthy loop pings.
 */
export class SystemdWatchdog {
  private readonly now: () => number;
  private readonly timing: ReturnType<typeof watchdogTiming> | undefined;
  private health: LoopHealth = HEALTHY;
  private timer: NodeJS.Timeout | undefined;
  private lastProbeAt = 0;
  private lastPingAt = 0;
  private sentStatus: string | undefined;
  private stopped = false;

  constructor(private readonly opts: SystemdWatchdogOptions) {
    this.now = opts.now ?? (() => performance.now());
    const ms = opts.target.watchdogMs;
    this.timing = ms === null ? undefined : watchdogTiming(ms, opts.limits.maxStallMs);
  }

  start(): void {
    const { target, logger } = this.opts;
    if (target.ignored !== undefined) logger.info({ reason: target.ignored }, 'systemd watchdog not for this process; not pinging it');
    logger.info({ socket: target.socket, watchdogMs: target.watchdogMs, ...this.timing, maxReconcileMs: this.opts.limits.maxReconcileMs }, 'notifying systemd');
    if (this.timing === undefined) return;
    this.lastProbeAt = this.now();
    this.ping();
    this.schedule();
  }

  /** The agent's loops run: systemd may consider the service started. */
  ready(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return this.opts.notifier.send({ READY: '1', ...this.statusField(true) });
  }

  /** Shutdown begins: no more pings; systemd is told so that a slow stop is not taken for a hang. */
  stopping(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    return this.opts.notifier.send({ STOPPING: '1', STATUS: 'stopping' });
  }

  /** Current verdict, for logs and tests. */
  get stuck(): boolean {
    return this.health.stuck;
  }

  private schedule(): void {
    if (this.stopped || this.timing === undefined) return;
    this.timer = setTimeout(() => this.probe(), this.timing.probeEveryMs);
    // The watchdog must never be what keeps the process alive.
    this.timer.unref();
  }

  private probe(): void {
    const timing = this.timing;
    if (this.stopped || timing === undefined) return;
    const now = this.now();
    const lagMs = Math.max(0, now - this.lastProbeAt - timing.probeEveryMs);
    this.lastProbeAt = now;
    const was = this.health;
    this.health = judgeLoop(was, { lagMs, reconcilingForMs: this.opts.reconcilingForMs() }, { maxStallMs: timing.maxStallMs, maxReconcileMs: this.opts.limits.maxReconcileMs });
    if (this.health.stuck) {
      if (!was.stuck) this.reportStuck(this.health.reason);
      return; // no more probes: stuck is final, and systemd ends the process
    }
    if (now - this.lastPingAt >= timing.pingEveryMs) this.ping();
    this.schedule();
  }

  private ping(): void {
    this.lastPingAt = this.now();
    void this.opts.notifier.send({ WATCHDOG: '1', ...this.statusField(false) });
  }

  private reportStuck(reason: string): void {
    this.opts.logger.error({ reason }, 'the agent is stuck: no more systemd watchdog pings; systemd will restart it');
    void this.opts.notifier.send({ STATUS: `stuck: ${reason}; watchdog pings stopped` });
    try {
      this.opts.onStuck(reason);
    } catch (err) {
      this.opts.logger.warn({ err: String(err) }, 'reporting the stuck agent failed');
    }
  }

  /** STATUS only when it changed: each message is a process. */
  private statusField(always: boolean): NotifyFields {
    const status = this.opts.status();
    if (!always && status === this.sentStatus) return {};
    this.sentStatus = status;
    return { STATUS: status };
  }
}
