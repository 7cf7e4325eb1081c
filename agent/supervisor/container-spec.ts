import type { ContainerCreateOptions } from 'dockerode';
import type { DesiredService } from '../../protocol/compose/desired-service.js';
import { LABELS, ownershipLabels } from './container-labels.js';

export interface ContainerIdentity {
  scope: string;
  /** Prefix of named volumes (Compose's project name). */
  project: string;
  configHash: string;
  /** The desired-state version being applied. */
  version: string;
}

/** Engine name of a named volume: project-prefixed like Compose, so two projects never share one by accident. */
export function volumeName(project: string, volume: string): string {
  return `${project}_${volume}`;
}

const ns = (ms: number | null): number | undefined => (ms === null ? undefined : ms * 1_000_000);

/**
 * The engine's create request for one desired service. Pure.
 *
 * The restart policy is always `no`: the supervisor restarts containers
 * itself, so that crash-loop back-off is its own, visible in reports and
 * kept across agent restarts. Docker's built-in back-off (100 ms doubling,
 * invisible, reset by any daemon restart) would race the planner.
 */
export function createOptions(s: DesiredService, id: ContainerIdentity): ContainerCreateOptions {
  const labels: Record<string, string> = {
    ...s.labels,
    ...ownershipLabels(id.scope),
    [LABELS.service]: s.name,
    [LABELS.configHash]: id.configHash,
    [LABELS.version]: id.version,
    [LABELS.dependsOn]: s.dependsOn.map((d) => d.service).join(','),
  };
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp?: string; HostPort?: string }[]> = {};
  for (const p of s.ports) {
    const key = `${p.containerPort}/${p.protocol}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.hostIp ?? '', HostPort: p.hostPort === undefined ? '' : String(p.hostPort) });
  }
  return {
    Image: s.image,
    ...(s.command === null ? {} : { Cmd: s.command }),
    ...(s.entrypoint === null ? {} : { Entrypoint: s.entrypoint }),
    Env: Object.entries(s.environment).map(([k, v]) => `${k}=${v}`),
    Labels: labels,
    ExposedPorts: exposed,
    StopTimeout: Math.ceil(s.stopGraceMs / 1000),
    ...(s.stopSignal === null ? {} : { StopSignal: s.stopSignal }),
    ...(s.healthcheck === null ? {} : {
      Healthcheck: {
        ...(s.healthcheck.test === null ? {} : { Test: s.healthcheck.test }),
        Interval: ns(s.healthcheck.intervalMs),
        Timeout: ns(s.healthcheck.timeoutMs),
        Retries: s.healthcheck.retries ?? undefined,
        StartPeriod: ns(s.healthcheck.startPeriodMs),
      },
    }),
    HostConfig: {
      NetworkMode: s.networkMode === 'bridge' ? 'default' : s.networkMode,
      ...(s.pid === null ? {} : { PidMode: s.pid }),
      ...(s.privileged ? { Privileged: true } : {}),
      ...(s.capAdd.length === 0 ? {} : { CapAdd: s.capAdd }),
      ...(s.capDrop.length === 0 ? {} : { CapDrop: s.capDrop }),
      PortBindings: bindings,
      Mounts: s.volumes.map((v) => ({
        Type: v.type,
        Source: v.type === 'volume' ? volumeName(id.project, v.source) : v.source,
        Target: v.target,
        ReadOnly: v.readOnly,
        ...(v.type === 'volume' ? { VolumeOptions: { NoCopy: false, Labels: ownershipLabels(id.scope), DriverConfig: { Name: 'local', Options: {} } } } : {}),
      })),
      Devices: s.devices.map((d) => ({ PathOnHost: d.host, PathInContainer: d.container, CgroupPermissions: d.permissions })),
      RestartPolicy: { Name: 'no' },
      ...(s.limits.memoryBytes === null ? {} : { Memory: s.limits.memoryBytes }),
      ...(s.limits.nanoCpus === null ? {} : { NanoCpus: s.limits.nanoCpus }),
      ...(s.limits.pids === null ? {} : { PidsLimit: s.limits.pids }),
      LogConfig: { Type: s.logging.driver, Config: s.logging.options },
    },
  };
}
