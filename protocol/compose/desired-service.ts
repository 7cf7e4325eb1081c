import type { DeviceMapping, PortMapping, VolumeMount } from './compose-values.js';

// The desired state as the supervisor works with it: a compose document once
// validated and normalised by compose-schema.ts.

export const DEPENDS_ON_CONDITIONS = ['service_started', 'service_healthy', 'service_completed_successfully'] as const;
export const PRIORITIES = ['critical', 'normal', 'best-effort'] as const;
export const UPDATE_STRATEGIES = ['download-then-kill', 'kill-then-download'] as const;
export type DependsOnCondition = (typeof DEPENDS_ON_CONDITIONS)[number];
export type Priority = (typeof PRIORITIES)[number];
export type UpdateStrategy = (typeof UPDATE_STRATEGIES)[number];
export type RestartPolicy = { name: 'no' | 'always' | 'unless-stopped' } | { name: 'on-failure'; maxRetries?: number };

export interface Healthcheck {
  /** Docker's form: ["CMD", ...], ["CMD-SHELL", "..."], or ["NONE"] to disable the image's own. */
  test: string[] | null;
  intervalMs: number | null;
  timeoutMs: number | null;
  retries: number | null;
  startPeriodMs: number | null;
}

/** One service, normalised: every optional field has its default, lists are sorted where order carries no meaning. */
export interface DesiredService {
  name: string;
  image: string;
  /** null: the image's own. */
  command: string[] | null;
  entrypoint: string[] | null;
  environment: Record<string, string>;
  ports: PortMapping[];
  volumes: VolumeMount[];
  restart: RestartPolicy;
  /** null: the image's own healthcheck, if any. */
  healthcheck: Healthcheck | null;
  dependsOn: { service: string; condition: DependsOnCondition }[];
  networkMode: 'bridge' | 'host' | 'none';
  /** 'host': the host's PID namespace; null: the container's own. */
  pid: 'host' | null;
  privileged: boolean;
  /** Capability names without the CAP_ prefix, upper case, sorted, no duplicates (`ALL` stays `ALL`). */
  capAdd: string[];
  capDrop: string[];
  devices: DeviceMapping[];
  labels: Record<string, string>;
  limits: { memoryBytes: number | null; nanoCpus: number | null; pids: number | null };
  logging: { driver: string; options: Record<string, string> };
  /** How long a stop waits after the stop signal before it kills. */
  stopGraceMs: number;
  /** `SIGNAME` or a number; null: the image's own (`STOPSIGNAL`), else SIGTERM. */
  stopSignal: string | null;
  tsunagu: { requires: string[]; priority: Priority; update: UpdateStrategy };
}

export interface DesiredState {
  /** Prefix of named volumes, like Compose's project name. */
  project: string;
  /** In dependency order: every service comes after the services it depends on. */
  services: DesiredService[];
  volumes: string[];
}

/**
 * Docker's json-file default keeps logs forever and fills SD cards; kubelet
 * keeps 10 MiB × 5. Three files of 10 MB are enough to read a crash.
 */
export const DEFAULT_LOGGING = { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } } as const;

/** The log caps of this device (`disk.containerLogs` in the agent config): each service's default. */
export interface LogCaps {
  /** Docker's size notation, `10m`. */
  maxSize: string;
  maxFiles: number;
}

/** The log drivers that keep files in the engine's data root, rotated by `max-size` × `max-file`. */
export const CAPPED_LOG_DRIVERS: ReadonlySet<string> = new Set(['json-file', 'local']);
export const DEFAULT_STOP_GRACE_MS = 10_000;
