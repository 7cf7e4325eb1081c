import type { DeployObserver, DeviceResult } from './deploy-device.js';
import { pullProgressOf } from './pull-progress.js';
import type { SupervisorEvent } from './rollout.js';
import { printable } from '../terminal-text.js';

/** Where deploy's output goes: the observer of each rollout plus the final results. */
export interface DeployOutput extends Required<DeployObserver> {
  result(r: DeviceResult): void;
  /** Called once at the end with every result (a table for several devices). */
  summary(results: readonly DeviceResult[]): void;
}

type Write = (text: string) => void;

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

/** One-line description of a finished rollout, with the device's error and per-service reasons. */
export function describeResult(r: DeviceResult): { result: string; status: string; detail: string[] } {
  const o = r.outcome;
  if (o.kind === 'published') return { result: 'published', status: '-', detail: [] };
  const state = o.state;
  const detail: string[] = [];
  if (state?.error) {
    detail.push(`${state.error.code}: ${state.error.message}`);
    for (const [service, reason] of Object.entries(state.error.services ?? {})) detail.push(`  ${service}: ${reason}`);
  }
  if (o.kind !== 'applied') {
    for (const s of state?.services ?? []) if (s.lastError !== null) detail.push(`  ${s.name}: ${s.lastError.code}: ${s.lastError.message}`);
  }
  if (o.kind === 'timeout') {
    detail.unshift(state === null ? 'no state reported' : `last state: ${state.status}, applied ${state.appliedVersion ?? '-'}, working on ${state.desiredVersion ?? '-'}`);
  }
  return { result: o.kind, status: state?.status ?? '-', detail };
}

function resultJson(r: DeviceResult): Record<string, unknown> {
  const o = r.outcome;
  const state = 'state' in o ? o.state : null;
  return {
    type: 'result', deviceId: r.deviceId, version: r.version, result: o.kind,
    status: state?.status ?? null, appliedVersion: state?.appliedVersion ?? null, error: state?.error ?? null,
    services: state?.services.map((s) => ({ name: s.name, state: s.state, health: s.health, lastError: s.lastError })) ?? [],
  };
}

/** `--json`: nothing but one JSON object per line. */
export function jsonDeployOutput(write: Write): DeployOutput {
  const line = (o: Record<string, unknown>): void => write(`${JSON.stringify(o)}\n`);
  return {
    published: (deviceId, version) => line({ type: 'published', deviceId, version }),
    event: (deviceId, event) => line({ ...event, deviceId, type: 'event', event: event.type }),
    state: (deviceId, s) => line({ type: 'state', deviceId, status: s.status, desiredVersion: s.desiredVersion, appliedVersion: s.appliedVersion }),
    result: (r) => line(resultJson(r)),
    summary: () => undefined,
  };
}

/**
 * Human output. On a TTY, pull progress is one bar per device rewritten in
 * place; otherwise it is a plain line at each 10 % step.
 */
export function textDeployOutput(write: Write, options: { tty: boolean; multi: boolean }): DeployOutput {
  const steps = new Map<string, number>();
  let barShown = false;
  const clearBar = (): void => {
    if (barShown) write('\r\x1b[K');
    barShown = false;
  };
  const say = (text: string): void => {
    clearBar();
    // Every line may carry text from a device: shown, never obeyed as escapes.
    write(`${printable(text)}\n`);
  };
  const lastStatus = new Map<string, string>();
  const progress = (deviceId: string, e: SupervisorEvent, p: { current: number; total: number; percent: number }): void => {
    const { current, total, percent: pct } = p;
    const what = printable(`${options.multi ? `${deviceId} ` : ''}${e.service ?? '?'} ${e.image ?? ''}`.trimEnd());
    if (options.tty) {
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      write(`\r\x1b[K${what} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${pct}% ${total > 0 ? `${mib(current)} / ${mib(total)}` : ''}`);
      barShown = true;
      return;
    }
    const key = `${deviceId}/${e.service ?? ''}`;
    const step = Math.floor(pct / 10);
    if (steps.get(key) === step) return;
    steps.set(key, step);
    say(`${what}: pulling ${pct}%${total > 0 ? ` (${mib(current)} of ${mib(total)})` : ''}`);
  };
  const prefix = (deviceId: string): string => (options.multi ? `${deviceId}: ` : '');
  return {
    published: (deviceId, version) => say(`${prefix(deviceId)}published version ${version} for ${deviceId}`),
    event: (deviceId, e) => {
      const pull = pullProgressOf(e);
      if (pull !== undefined) return progress(deviceId, e, pull);
      const rest = Object.entries(e).filter(([k]) => !['v', 'at', 'type', 'service', 'image', 'currentBytes', 'totalBytes'].includes(k))
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
      say(`${prefix(deviceId)}${e.service ?? ''} ${e.type}${e.image ? ` ${e.image}` : ''}${rest ? ` ${rest}` : ''}`.replace(/^ /, ''));
    },
    state: (deviceId, s) => {
      const text = `${s.status} (applied ${s.appliedVersion ?? '-'}, working on ${s.desiredVersion ?? '-'})`;
      if (lastStatus.get(deviceId) === text) return;
      lastStatus.set(deviceId, text);
      say(`${prefix(deviceId)}device state: ${text}`);
    },
    result: (r) => {
      if (options.multi) return;
      const d = describeResult(r);
      say(`${r.deviceId}: version ${r.version} ${d.result}${d.status === '-' ? '' : ` (${d.status})`}`);
      for (const line of d.detail) say(`  ${line}`);
    },
    summary: (results) => {
      clearBar();
      if (!options.multi) return;
      const rows = results.map((r) => {
        const d = describeResult(r);
        return [r.deviceId, String(r.version), d.result, d.status, d.detail.join('; ')];
      });
      const header = ['DEVICE', 'VERSION', 'RESULT', 'STATUS', 'DETAIL'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
      for (const row of [header, ...rows]) write(`${printable(row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd())}\n`);
    },
  };
}

