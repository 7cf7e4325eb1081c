import { describeHolder, type LockReport } from '../state/state-lock.js';
import type { AgentStatus } from './agent-status.js';

/** How long ago, for a person: "3 s", "5 min", "2 h", "4 d". */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

function lockLine(lock: LockReport): string {
  switch (lock.state) {
    case 'held': return `state directory held by ${describeHolder(lock.holder)}`;
    case 'free': return lock.stale.length === 0 ? 'state directory free' : `state directory free; stale claim of ${lock.stale.map((s) => `pid ${s.reading.pid} (${s.reason})`).join(', ')}, removed at the next start`;
    case 'unknown': return `not readable (${lock.error})`;
  }
}

/** `tsunagu-agent status` for a person. Pure: the command reads, this renders. */
export function renderStatus(status: AgentStatus, running: boolean, now: number, lock?: LockReport): string {
  const lines: string[] = [];
  lines.push(running
    ? `agent      running (pid ${status.pid}, version ${status.agentVersion}, up ${ago(now - status.startedAt)})`
    : `agent      NOT RUNNING (last seen as pid ${status.pid}, version ${status.agentVersion}): systemctl status tsunagu-agent; journalctl -u tsunagu-agent`);
  if (lock !== undefined) lines.push(`lock       ${lockLine(lock)}`);
  if (status.identity === null) {
    lines.push('device     not enrolled yet (enrolling: see the errors below if it takes long)');
  } else {
    lines.push(`device     ${status.identity.deviceId}`);
    lines.push(`fleet      ${status.identity.fleetId} (enrolled ${new Date(status.identity.enrolledAt).toISOString()})`);
  }
  lines.push(`link       ${status.link.state} for ${ago(now - status.link.since)}`);
  const w = status.workload;
  if (w === null) lines.push('services   supervisor not started');
  else if (w.version === null) lines.push('services   no desired state received yet');
  else {
    lines.push(`services   desired version ${w.version}: ${w.status}${w.error === null ? '' : ` (${w.error.code}: ${w.error.message})`}`);
    if (status.services.length > 0) {
      lines.push('');
      const rows = [['SERVICE', 'STATE', 'HEALTH', 'RESTARTS', 'IMAGE', 'LAST ERROR'],
        ...status.services.map((s) => [s.name, s.state, s.health, String(s.restartCount), s.image, s.lastError === null ? '-' : `${s.lastError.code}: ${s.lastError.message}`])];
      lines.push(...table(rows).map((l) => `  ${l}`));
    }
  }
  lines.push('');
  if (status.lastErrors.length === 0) lines.push('last errors: none');
  else {
    lines.push('last errors (newest last):');
    for (const e of status.lastErrors) lines.push(`  ${new Date(e.at).toISOString()}  ${e.code === undefined ? '' : `${e.code}: `}${e.message}`);
  }
  return `${lines.join('\n')}\n`;
}
