import { existsSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { Logger } from '../common/logger.js';
import type { RegistryCredentials } from '../protocol/desired.js';
import { asTsunaguError } from '../protocol/errors.js';
import type { AdmissionCheck } from './admission/admission.js';
import { capabilityLabelsCheck } from './admission/capability-labels.js';
import { hostDevicesCheck } from './admission/host-devices.js';
import { memoryFitCheck } from './admission/memory-fit.js';
import { hostView, protectedHostPaths, securityPolicyCheck } from './admission/security-policy-check.js';
import type { Clock } from './clock.js';
import type { AgentConfig } from './config.js';
import { ContainerUsage } from './resources/container-usage.js';
import { DesiredStore } from './desired/desired-store.js';
import { deviceLabelSet } from './resources/device-labels.js';
import { registryAuthFor } from './images/registry-auth.js';
import { DockerImages } from './images/docker-images.js';
import { ImageHousekeeping } from './images/image-housekeeping.js';
import { PressureMonitor } from './pressure/pressure-monitor.js';
import type { WorkloadReporter } from './reporting/workload-reporter.js';
import type { InventoryService } from './resources/inventory.js';
import type { StatusFile } from './status/status-file.js';
import { FileBackoffStore } from './supervisor/backoff-store.js';
import { DockerRuntime } from './supervisor/docker-runtime.js';
import { defaultSocket } from './supervisor/engine-errors.js';
import { Supervisor } from './supervisor/supervisor.js';

/** What runs whether or not the device has an identity or a broker: the containers. */
export interface Workload {
  runtime: DockerRuntime;
  supervisor: Supervisor;
  store: DesiredStore;
  /**
   * The device's capability labels. One set, updated in place when the
   * machine's facts are read again and differ from the kept copy the agent
   * started with: admission, image checks and the desired channel read it at
   * each use; the supervisor is told (setDeviceLabels).
   */
  labels: Set<string>;
  usage: ContainerUsage;
  /** Registry credentials of the accepted desired state; in memory only. */
  secrets: { registries: RegistryCredentials };
  engineVersion: string | undefined;
  /** What a desired state must pass before it is accepted, in order (agent/admission). */
  admission: AdmissionCheck[];
  /** Evicts by priority under memory or thermal pressure; absent when `pressure.enabled` is false. */
  pressure: PressureMonitor | undefined;
  /** Image records, garbage collection, the disk check before pulls (agent/images). */
  housekeeping: ImageHousekeeping;
}

export interface WorkloadDeps {
  config: AgentConfig;
  /** Where the config came from: no container may bind it (it holds the security policy). */
  configFile: string;
  logger: Logger;
  clock: Clock;
  /** The engine client main.ts built: the runtime and the image housekeeping share it. */
  docker: Docker;
  inventory: InventoryService;
  /** Where the supervisor, the housekeeping and the pressure monitor report. */
  reports: WorkloadReporter;
  status?: StatusFile;
}

/** Build the supervisor and what keeps house around it, and start it. */
export async function startWorkload(deps: WorkloadDeps): Promise<Workload> {
  const { config, logger, clock, reports } = deps;
  const labels = new Set<string>();
  const began = clock.now();
  try {
    for (const label of deviceLabelSet((await deps.inventory.report()).labels)) labels.add(label);
    logger.debug({ ms: clock.now() - began, labels: labels.size }, 'device labels read');
  } catch (err) {
    logger.warn({ err: asTsunaguError(err).toJSON() }, 'could not read the inventory; services that require labels are not deployed');
  }
  const engineSocket = config.runtime.socket ?? defaultSocket();
  const runtime = new DockerRuntime({ docker: deps.docker });
  const store = new DesiredStore(config.stateDir, logger);
  const holds = store.loadHolds();
  const secrets: { registries: RegistryCredentials } = { registries: {} };
  const housekeeping = new ImageHousekeeping({
    disk: config.disk, stateDir: config.stateDir, engine: new DockerImages({ docker: deps.docker }), deviceLabels: labels, log: logger.child({ component: 'images' }),
    auth: (ref) => registryAuthFor(secrets.registries, ref),
    emit: (event) => {
      reports.event(event);
      if (event.type === 'gc') reports.diskChanged();
    },
  });
  reports.observe(housekeeping);
  const status = deps.status;
  if (status !== undefined) reports.observe({ onSupervisorState: (state) => status.workload(state) });
  const supervisor = new Supervisor({
    runtime, logger: logger.child({ component: 'supervisor' }), clock, scope: config.runtime.scope, deviceLabels: labels,
    probationMs: config.rollout.probationMs, pullStallMs: config.runtime.pullStallMs,
    onProven: (version) => reports.proven(version),
    backoffStore: new FileBackoffStore(join(config.stateDir, 'backoff.json'), logger),
    registryAuth: (image) => registryAuthFor(secrets.registries, image),
    ...(holds.version === null ? {} : { held: { version: String(holds.version), services: holds.services } }),
    onHeldChange: ({ version, services }) => store.saveHolds({ v: 1, version: version === null ? null : Number(version), services }),
    onState: (state) => reports.supervisorState(state),
    onEvent: (event) => reports.supervisorEvent(event),
    pullGuard: housekeeping.pullGuard,
  });
  // The pull guard above is the housekeeping's, so the supervisor comes second and is handed back.
  housekeeping.attach(supervisor);
  supervisor.start();
  status?.workload(supervisor.state());
  const pressure = config.pressure.enabled ? new PressureMonitor({
    config: config.pressure, target: supervisor, logger: logger.child({ component: 'pressure' }),
    onEvent: (event) => reports.pressure(event),
  }) : undefined;
  logger.info({ policy: config.policy }, 'device security policy');
  // All findings are reported together; the first check's code leads.
  const admission: AdmissionCheck[] = [
    // First: a refusal by the device's own policy is the reason an operator must see.
    securityPolicyCheck(config.policy, hostView(protectedHostPaths({ engineSocket, stateDir: config.stateDir, configFile: deps.configFile }))),
    capabilityLabelsCheck(labels),
    hostDevicesCheck(existsSync),
    memoryFitCheck({ totalBytes: totalmem(), reserveBytes: config.memory.reserve }),
    ...housekeeping.admission,
  ];
  const workload: Workload = { runtime, supervisor, store, labels, usage: new ContainerUsage(), secrets, engineVersion: undefined, admission, pressure, housekeeping };
  void readEngineVersion(workload, logger);
  return workload;
}

/** The engine's version for the inventory, read once it answers. */
export async function readEngineVersion(workload: Workload, logger: Logger): Promise<string | undefined> {
  if (workload.engineVersion !== undefined) return workload.engineVersion;
  try {
    workload.engineVersion = `docker ${await workload.runtime.engineVersion()}`;
  } catch (err) {
    logger.warn({ err: asTsunaguError(err).toJSON() }, 'container engine not reachable yet');
  }
  return workload.engineVersion;
}
