import { describeHolder, type LockReport } from '../state/state-lock.js';

/**
 * `tsunagu-agent doctor`'s judgments: each check's readings in, a verdict and
 * what to do out. Pure; doctor-probes.ts takes the readings.
 */
export type Verdict = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  check: string;
  verdict: Verdict;
  detail: string;
  /** What the person at the console should do; absent when all is well. */
  fix?: string;
}

const MIB = 1024 * 1024;

/** Free space where the agent or the engine writes: a full card stops both. */
export function judgeDisk(check: string, path: string, reading: { freeBytes: number; totalBytes: number } | { error: string }): CheckResult {
  if ('error' in reading) return { check, verdict: 'warn', detail: `${path}: not measured (${reading.error})` };
  const pct = reading.totalBytes === 0 ? 0 : (reading.freeBytes / reading.totalBytes) * 100;
  const detail = `${path}: ${Math.round(reading.freeBytes / MIB)} MiB free of ${Math.round(reading.totalBytes / MIB)} MiB (${pct.toFixed(0)} %)`;
  if (reading.freeBytes < 64 * MIB) return { check, verdict: 'fail', detail, fix: `free space on the file system of ${path} (docker image prune; journalctl --vacuum-size=50M)` };
  if (pct < 10 || reading.freeBytes < 256 * MIB) return { check, verdict: 'warn', detail, fix: `space is getting short under ${path}: image pulls may fail (docker image prune)` };
  return { check, verdict: 'ok', detail };
}

export function judgeMemory(reading: { availableBytes: number; totalBytes: number }): CheckResult {
  const pct = (reading.availableBytes / reading.totalBytes) * 100;
  const detail = `${Math.round(reading.availableBytes / MIB)} MiB available of ${Math.round(reading.totalBytes / MIB)} MiB (${pct.toFixed(0)} %)`;
  if (reading.availableBytes < 32 * MIB) return { check: 'memory', verdict: 'fail', detail, fix: 'almost no memory is left: stop services or lower their memory limits (the agent itself needs ~40 MiB)' };
  if (pct < 10) return { check: 'memory', verdict: 'warn', detail, fix: 'memory is short: pressure evictions may start (docs/lifecycle.md, "Priorities and pressure")' };
  return { check: 'memory', verdict: 'ok', detail };
}

export function judgeClock(reading: { mode: 'auto' | 'always' | 'never'; synchronised: boolean; now: number }): CheckResult {
  const when = new Date(reading.now).toISOString();
  // Before 2024 the clock cannot be right: a board without RTC starts at its image's build date or 1970.
  const plausible = reading.now >= Date.UTC(2024, 0, 1);
  if (!plausible) return { check: 'clock', verdict: reading.mode === 'always' ? 'fail' : 'warn', detail: `the clock says ${when}: not set`, fix: 'enable NTP: timedatectl set-ntp true (the network must reach an NTP server)' };
  if (reading.mode === 'never') return { check: 'clock', verdict: 'ok', detail: `${when}; clock.trust is never: command expiry is judged without it` };
  if (reading.mode === 'always') return { check: 'clock', verdict: 'ok', detail: `${when}; clock.trust is always (a board with an RTC)` };
  if (reading.synchronised) return { check: 'clock', verdict: 'ok', detail: `${when}, synchronised by NTP` };
  return { check: 'clock', verdict: 'warn', detail: `${when}, not synchronised by NTP: the agent does not trust it for command expiry`, fix: 'enable NTP: timedatectl set-ntp true, and check that systemd-timesyncd reaches its server (timedatectl timesync-status)' };
}

export function judgeEngine(socket: string, reading: { apiVersion: string; version: string } | { error: string; code?: string | undefined }): CheckResult {
  if ('error' in reading) {
    const fix = reading.code === 'EACCES'
      ? `the agent's user may not use ${socket}: add it to the socket's group (usermod -aG docker tsunagu), then systemctl restart tsunagu-agent`
      : reading.code === 'ENOENT'
        ? `no engine socket at ${socket}: install and start the engine (apt-get install docker.io; systemctl start docker), or set runtime.socket in /etc/tsunagu/agent.yaml`
        : `the engine at ${socket} does not answer: systemctl status docker`;
    return { check: 'engine', verdict: 'fail', detail: `${socket}: ${reading.error}`, fix };
  }
  return { check: 'engine', verdict: 'ok', detail: `${socket}: Docker Engine ${reading.version}, API ${reading.apiVersion}` };
}

export type BrokerReading =
  | { kind: 'not-enrolled'; url: string }
  | { kind: 'agent-online'; url: string; since: number; now: number }
  | { kind: 'probe'; url: string; outcome: 'accepted'; tls: boolean }
  | { kind: 'probe'; url: string; outcome: 'refused'; returnCode: number; tls: boolean }
  | { kind: 'probe'; url: string; outcome: 'unreachable'; error: string }
  | { kind: 'probe'; url: string; outcome: 'unsupported'; scheme: string };

export function judgeBroker(r: BrokerReading): CheckResult {
  if (r.kind === 'not-enrolled') return { check: 'broker', verdict: 'warn', detail: `${r.url}: the device has no identity yet, so it cannot log in`, fix: 'wait for enrollment (tsunagu-agent status shows its errors), or check the bootstrap file' };
  // Logging in as the device would take the running agent's own session over.
  if (r.kind === 'agent-online') return { check: 'broker', verdict: 'ok', detail: `${r.url}: the running agent is connected (for ${Math.round((r.now - r.since) / 1000)} s); not logging in beside it` };
  switch (r.outcome) {
    case 'accepted': return { check: 'broker', verdict: 'ok', detail: `${r.url}: MQTT CONNECT accepted with the device's credentials${r.tls ? ' (TLS verified)' : ''}` };
    case 'refused': return {
      check: 'broker', verdict: 'fail', detail: `${r.url}: the broker refused the device's credentials (return code ${r.returnCode})`,
      fix: 'the fleet no longer knows this device: the agent re-enrolls by itself; if that fails, ask the operator whether the device was removed (tsunagu-fleet devices)',
    };
    case 'unreachable': return {
      check: 'broker', verdict: 'fail', detail: `${r.url}: ${r.error}`,
      fix: 'check the network and DNS (ping the broker host), the broker\'s port, and for TLS the CA in the bootstrap file and this device\'s clock',
    };
    case 'unsupported': return { check: 'broker', verdict: 'warn', detail: `${r.url}: ${r.scheme} is not checked by doctor (only mqtt and mqtts)` };
  }
}

/** Which process holds the state directory: a second agent started by hand is refused, and this names the first. */
export function judgeLock(stateDir: string, report: LockReport): CheckResult {
  switch (report.state) {
    case 'held': return { check: 'lock', verdict: 'ok', detail: `${stateDir}: held by ${describeHolder(report.holder)}` };
    case 'free': {
      const left = report.stale.map((s) => `pid ${s.reading.pid} (${s.reason})`);
      return { check: 'lock', verdict: 'ok', detail: `${stateDir}: no agent runs on it${left.length === 0 ? '' : `; left over by ${left.join(', ')}, removed at the next start`}` };
    }
    case 'unknown': return { check: 'lock', verdict: 'warn', detail: `${stateDir}: not checked (${report.error})`, fix: 'run doctor as root or as the tsunagu user to see which process holds the state directory' };
  }
}

/** 0 all well, 1 something to look at, 2 something broken. */
export function doctorExitCode(results: readonly CheckResult[]): number {
  if (results.some((r) => r.verdict === 'fail')) return 2;
  if (results.some((r) => r.verdict === 'warn')) return 1;
  return 0;
}

export function renderDoctor(results: readonly CheckResult[]): string {
  const mark: Record<Verdict, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };
  const lines = results.flatMap((r) => [`[${mark[r.verdict]}] ${r.check.padEnd(10)} ${r.detail}`, ...(r.fix === undefined ? [] : [`       ${''.padEnd(10)} → ${r.fix}`])]);
  const code = doctorExitCode(results);
  lines.push('', code === 0 ? 'all checks passed' : code === 1 ? 'warnings above: the agent works, but look at them' : 'problems above: the agent cannot work properly until they are fixed');
  return `${lines.join('\n')}\n`;
}
