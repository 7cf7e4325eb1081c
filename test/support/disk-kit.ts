import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentConfigSchema, type DiskConfig } from '../../agent/config.js';
import { DockerImages } from '../../agent/images/docker-images.js';
import { ImageHousekeeping } from '../../agent/images/image-housekeeping.js';
import { DockerRuntime } from '../../agent/supervisor/docker-runtime.js';
import { parseForDevice } from '../../agent/supervisor/device-defaults.js';
import { Supervisor, type SupervisorEvent, type SupervisorState } from '../../agent/supervisor/supervisor.js';
import { startSmallDiskEngine, type SmallDiskEngine } from './small-disk-engine.js';
import { TEST_LABEL } from './supervisor-harness.js';

const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

export const MiB = 1024 * 1024;

/** The agent config's disk section: defaults with `overrides`. */
export function diskConfig(overrides: Partial<DiskConfig>): DiskConfig {
  return { ...AgentConfigSchema.parse({}).disk, ...overrides };
}

export interface Supervised {
  supervisor: Supervisor;
  hk: ImageHousekeeping;
  /** The supervisor's and the housekeeping's events, in order. */
  events: (SupervisorEvent | Record<string, unknown>)[];
  states: SupervisorState[];
  /** Parse `doc` as the device would (its log caps) and apply it. */
  apply(doc: object, version: string): Promise<SupervisorState>;
}

/**
 * What the disk tests do on a small-disk engine: the agent's image
 * housekeeping on it, a supervisor wired to it as agent.ts wires it, and a
 * filler file to take the disk down to a given free space.
 */
export function diskKit(engine: SmallDiskEngine, work: string): {
  housekeeping(disk: DiskConfig, events: unknown[], stateDir?: string): ImageHousekeeping;
  supervised(disk: DiskConfig, guarded?: boolean): Supervised;
  present(ref: string): Promise<boolean>;
  available(): Promise<number>;
  fillTo(bytes: number): Promise<void>;
  unfill(): void;
} {
  const filler = join(engine.dataRoot, 'filler');
  const housekeeping = (disk: DiskConfig, events: unknown[], stateDir = mkdtempSync(join(work, 'state-'))): ImageHousekeeping => new ImageHousekeeping({
    disk, stateDir, engine: new DockerImages({ socketPath: engine.socket }), deviceLabels: new Set(),
    auth: () => undefined, emit: (e) => { events.push(e); }, log: quiet,
  });
  const available = async (): Promise<number> => (await housekeeping(diskConfig({}), []).gauge.read()).availableBytes;
  return {
    housekeeping,
    available,
    supervised: (disk, guarded = true) => {
      const events: Supervised['events'] = [];
      const states: SupervisorState[] = [];
      const hk = housekeeping(disk, events);
      const supervisor = new Supervisor({
        runtime: new DockerRuntime({ socketPath: engine.socket }), scope: `t-disk-${randomBytes(3).toString('hex')}`,
        pullBackoff: { initialDelayMs: 500, maxDelayMs: 2000, resetAfterMs: 0 },
        ...(guarded ? { pullGuard: hk.pullGuard } : {}),
        onEvent: (e) => { events.push(e); hk.onSupervisorEvent(e); },
        onState: (s) => { states.push(s); hk.onSupervisorState(s); },
      });
      hk.attach(supervisor);
      supervisor.start();
      const apply = (doc: object, version: string): Promise<SupervisorState> => supervisor.apply(parseForDevice(doc, { containerLogs: disk.containerLogs }), version);
      return { supervisor, hk, events, states, apply };
    },
    present: (ref) => engine.docker.getImage(ref).inspect().then(() => true, () => false),
    fillTo: async (bytes) => {
      rmSync(filler, { force: true });
      const size = (await available()) - bytes;
      if (size <= 0) return;
      const r = spawnSync('fallocate', ['-l', String(size), filler], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    },
    unfill: () => rmSync(filler, { force: true }),
  };
}

/** A test file's own small-disk engine and work directory, with the {@link diskKit} on them. */
export type DiskWorld = ReturnType<typeof diskKit> & {
  engine: SmallDiskEngine;
  work: string;
  /** Stop the engine and remove the work directory. */
  close(): Promise<void>;
};

/** Start a {@link DiskWorld} on an engine whose data root is `sizeMiB` of ext4; `workPrefix` names the work directory. */
export async function startDiskWorld(workPrefix: string, sizeMiB: number): Promise<DiskWorld> {
  const work = mkdtempSync(join(tmpdir(), workPrefix));
  const engine = await startSmallDiskEngine(sizeMiB).catch((err: unknown) => {
    rmSync(work, { recursive: true, force: true });
    throw err;
  });
  return {
    ...diskKit(engine, work), engine, work,
    close: async () => {
      await engine.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** A desired state of one always-restarted service `app`. */
export function app(image: string): object {
  return { services: { app: { image, network_mode: 'none', restart: 'always', labels: { [TEST_LABEL]: 'disk' } } } };
}
