import { execFile, type ExecFileException } from 'node:child_process';
import type { Logger } from '../../common/logger.js';

/** Fields of one sd_notify message: READY, STATUS, WATCHDOG, STOPPING. */
export type NotifyFields = Record<string, string>;

export interface Notifier {
  /** Resolves once the message (merged with any queued behind a running send) has been handed over or has failed. */
  send(fields: NotifyFields): Promise<void>;
}

export interface SystemdNotifierOptions {
  socket: string;
  /** Root may send with the agent's own PID as the sender (see below). */
  asRoot: boolean;
  logger: Logger;
  binary?: string;
  timeoutMs?: number;
}

/**
 * sd_notify messages through the `systemd-notify` binary, one short-lived
 * process per message: Node has no AF_UNIX datagram sockets, and a native
 * addon would have to be built for every board.
 *
 * As root it runs with `--no-block`: systemd-notify then sends with its
 * parent's PID — the agent's — in the socket credentials, so systemd credits
 * the message to the unit's main process (the default NotifyAccess=main is
 * enough) and needs nothing more from a process that is about to exit.
 * Without root that is not allowed and it sends under its own PID: the unit
 * needs NotifyAccess=all, and the blocking form waits (barrier, systemd ≥ 246)
 * until systemd has read the message, which it could otherwise drop because
 * its sender is already gone.
 */
export class SystemdNotifier implements Notifier {
  private inFlight: Promise<void> | undefined;
  private pending: NotifyFields | undefined;
  private disabled = false;
  private lastProblem: string | undefined;

  constructor(private readonly opts: SystemdNotifierOptions) {}

  send(fields: NotifyFields): Promise<void> {
    if (this.disabled) return Promise.resolve();
    // While one runs, later messages merge: the newest STATUS wins, nothing piles up behind a slow manager.
    this.pending = { ...this.pending, ...fields };
    this.inFlight ??= this.drain().finally(() => { this.inFlight = undefined; });
    return this.inFlight;
  }

  private async drain(): Promise<void> {
    while (this.pending !== undefined && !this.disabled) {
      const fields = this.pending;
      this.pending = undefined;
      await this.run(fields);
    }
  }

  private run(fields: NotifyFields): Promise<void> {
    // One message is newline-separated KEY=VALUE lines: a newline inside a value would forge a field.
    const args = [...(this.opts.asRoot ? ['--no-block'] : []), ...Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/[\r\n]+/g, ' ')}`)];
    return new Promise((resolve) => {
      execFile(this.opts.binary ?? 'systemd-notify', args, {
        env: { ...process.env, NOTIFY_SOCKET: this.opts.socket },
        timeout: this.opts.timeoutMs ?? 10_000,
      }, (err, _stdout, stderr) => {
        if (err !== null) this.failed(err, stderr);
        else this.lastProblem = undefined;
        resolve();
      });
    });
  }

  private failed(err: ExecFileException, stderr: string): void {
    if (err.code === 'ENOENT') {
      this.disabled = true;
      this.opts.logger.warn({ binary: this.opts.binary ?? 'systemd-notify' }, 'systemd-notify is not installed: systemd will not hear from the agent (readiness, watchdog)');
      return;
    }
    const problem = stderr.trim() || err.message;
    // Once per distinct failure: a manager that does not listen must not fill the journal every few seconds.
    if (problem !== this.lastProblem) this.opts.logger.warn({ err: problem }, 'systemd-notify failed');
    this.lastProblem = problem;
  }
}
