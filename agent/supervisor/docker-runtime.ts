import Docker from 'dockerode';
import type { Readable } from 'node:stream';
import type { ContainerCreateOptions, ContainerInspectInfo } from 'dockerode';
import { TsunaguError } from '../../protocol/errors.js';
import type { ActualContainer, ContainerStatus, HealthStatus, LocalImage } from './actual-state.js';
import type { ContainerRuntime, PullProgress, RegistryAuth, RuntimeEvent } from './container-runtime.js';
import { defaultSocket, runtimeError, statusCode } from './engine-errors.js';
import { demultiplex } from './log-stream.js';
import { LABELS, MANAGED_VALUE } from './container-labels.js';
import { pinnedDigest } from './pinned-digest.js';
import { PULL_FAILURE_HINT, pullFailureCode } from '../pulls/pull-failure.js';
import { isStaleRuntimeState } from './runtime-state.js';

export interface DockerRuntimeOptions {
  /** Unix socket of the engine; default: DOCKER_HOST when it names a unix socket, else /var/run/docker.sock. */
  socketPath?: string;
}

/** Docker reports "0001-01-01T00:00:00Z" for never. */
function time(text: string | undefined): number | null {
  if (text === undefined || text.startsWith('0001-')) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

function toActual(info: ContainerInspectInfo): ActualContainer {
  const labels = info.Config.Labels ?? {};
  const state = info.State;
  const health = (state.Health?.Status ?? 'none') as HealthStatus;
  const status = state.Status as ContainerStatus;
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    service: labels[LABELS.service] ?? '',
    configHash: labels[LABELS.configHash] ?? null,
    dependsOn: (labels[LABELS.dependsOn] ?? '').split(',').filter(Boolean),
    version: labels[LABELS.version] ?? null,
    image: info.Config.Image,
    imageId: info.Image,
    status,
    health,
    exitCode: status === 'exited' || status === 'dead' ? state.ExitCode : null,
    startedAt: time(state.StartedAt),
    finishedAt: time(state.FinishedAt),
  };
}

const EVENT_ACTIONS = new Set<RuntimeEvent['action']>(['create', 'start', 'die', 'stop', 'kill', 'destroy', 'oom']);

/** The dockerode adapter. Thin on purpose: translation of types and errors only. */
export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Docker;

  constructor(options: DockerRuntimeOptions = {}) {
    this.docker = new Docker({ socketPath: options.socketPath ?? defaultSocket() });
  }

  async listOwnedContainers(scope: string, signal?: AbortSignal): Promise<ActualContainer[]> {
    try {
      const list = await this.docker.listContainers({
        all: true,
        filters: { label: [`${LABELS.managed}=${MANAGED_VALUE}`, `${LABELS.scope}=${scope}`] },
        abortSignal: signal,
      });
      const out: ActualContainer[] = [];
      for (const c of list) {
        try {
          out.push(toActual(await this.docker.getContainer(c.Id).inspect({ abortSignal: signal })));
        } catch (err) {
          if (statusCode(err) !== 404) throw err; // removed between list and inspect
        }
      }
      return out;
    } catch (err) {
      throw runtimeError('list containers', err, signal);
    }
  }

  async inspectContainer(id: string, scope: string, signal?: AbortSignal): Promise<ActualContainer | undefined> {
    try {
      const info = await this.docker.getContainer(id).inspect({ abortSignal: signal });
      const labels = info.Config.Labels ?? {};
      return labels[LABELS.managed] === MANAGED_VALUE && labels[LABELS.scope] === scope ? toActual(info) : undefined;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw runtimeError(`inspect ${id}`, err, signal);
    }
  }

  async inspectImage(ref: string, signal?: AbortSignal): Promise<LocalImage | undefined> {
    try {
      // dockerode's image inspect takes no signal; it is one short local request.
      signal?.throwIfAborted();
      const info = await this.docker.getImage(ref).inspect();
      const repo = ref.replace(/@.*$/, '').replace(/:[^/:]+$/, '');
      const repoDigests = info.RepoDigests ?? [];
      const pinned = pinnedDigest(ref);
      const digest = repoDigests.find((d) => pinned !== null && d.endsWith(`@${pinned}`)) ?? repoDigests.find((d) => d.startsWith(`${repo}@`)) ?? repoDigests[0] ?? null;
      return { id: info.Id, digest, repoDigests };
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw runtimeError(`inspect image ${ref}`, err, signal);
    }
  }

  async pullImage(ref: string, options: { auth?: RegistryAuth; onProgress?: (p: PullProgress) => void; signal?: AbortSignal }): Promise<void> {
    const { signal } = options;
    try {
      // The engine takes the whole reference in fromImage. Credentials go as the
      // first argument (the X-Registry-Auth header): dockerode's pull(ref, { authconfig })
      // would also serialise them into the request's query string.
      const stream = await this.docker.createImage(options.auth, { fromImage: ref, abortSignal: signal });
      // Once the engine answers, an abort no longer reaches the stream by itself: cut it here, which
      // also makes the engine drop the download (the pull runs as long as a client follows it).
      const cut = (): void => { (stream as Readable).destroy(); };
      signal?.addEventListener('abort', cut, { once: true });
      const layers = new Map<string, { current: number; total: number }>();
      // A pull that fails once streaming (a full disk, no variant for this platform, a cut download)
      // says so in an event of the stream, which still ends normally: that event is the outcome.
      let failed: string | undefined;
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : failed !== undefined ? reject(new Error(failed)) : resolve()), (event: {
          id?: string; status?: string; progressDetail?: { current?: number; total?: number }; error?: string; errorDetail?: { message?: string };
        }) => {
          if (event.error !== undefined || event.errorDetail !== undefined) failed ??= event.errorDetail?.message ?? event.error ?? 'the engine reported an error';
          const progress = event.progressDetail?.total ? { current: event.progressDetail.current ?? 0, total: event.progressDetail.total } : null;
          if (event.id && progress) layers.set(event.id, progress);
          let currentBytes = 0;
          let totalBytes = 0;
          for (const l of layers.values()) { currentBytes += l.current; totalBytes += l.total; }
          options.onProgress?.({ image: ref, currentBytes, totalBytes, status: event.status ?? '', id: event.id ?? null, progress });
        });
      }).finally(() => signal?.removeEventListener('abort', cut));
      // A stream cut short ends like a finished one: an aborted pull never counts as done.
      signal?.throwIfAborted();
    } catch (err) {
      const e = runtimeError(`pull ${ref}`, err, signal);
      if (e.code !== 'RUNTIME_FAILED') throw e;
      // The engine's own words are kept in the message; the code lets the fleet tell a full disk or
      // a registry serving wrong content from a bad tag.
      const code = pullFailureCode(e.message);
      const hint = PULL_FAILURE_HINT[code];
      throw new TsunaguError(code, hint === null ? e.message : `${e.message} (${hint})`, e.details, { cause: err });
    }
  }

  async createContainer(name: string, options: ContainerCreateOptions, signal?: AbortSignal): Promise<string> {
    try {
      const c = await this.docker.createContainer({ ...options, name, abortSignal: signal });
      return c.id;
    } catch (err) {
      throw runtimeError(`create ${name}`, err, signal);
    }
  }

  async startContainer(idOrName: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.docker.getContainer(idOrName).start({ abortSignal: signal });
    } catch (err) {
      if (statusCode(err) === 304) return; // already running
      const e = runtimeError(`start ${idOrName}`, err, signal);
      // Said in the details, not in a code of its own: the fleet sees the engine's failure as it is.
      if (e.code === 'RUNTIME_FAILED' && isStaleRuntimeState(e.message)) throw new TsunaguError(e.code, e.message, { ...e.details, staleRuntimeState: true }, { cause: err });
      throw e;
    }
  }

  async stopContainer(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.ceil(timeoutMs / 1000), abortSignal: signal });
    } catch (err) {
      if (statusCode(err) === 304 || statusCode(err) === 404) return; // already stopped or gone
      throw runtimeError(`stop ${id}`, err, signal);
    }
  }

  async removeContainer(id: string, signal?: AbortSignal): Promise<void> {
    try {
      // Anonymous volumes go with the container; named volumes stay (they hold data).
      await this.docker.getContainer(id).remove({ v: true, force: true, abortSignal: signal });
    } catch (err) {
      if (statusCode(err) === 404) return;
      if (statusCode(err) === 409 && /already in progress/.test(String((err as Error).message))) return;
      throw runtimeError(`remove ${id}`, err, signal);
    }
  }

  async watchEvents(scope: string, onEvent: (e: RuntimeEvent) => void, signal: AbortSignal): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.docker.getEvents({
        filters: { type: ['container'], label: [`${LABELS.managed}=${MANAGED_VALUE}`, `${LABELS.scope}=${scope}`] },
        abortSignal: signal,
      }));
    } catch (err) {
      if (signal.aborted) return;
      throw runtimeError('follow events', err, signal);
    }
    let buffered = '';
    await new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line !== '') this.dispatch(line, onEvent);
        }
      });
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
      stream.on('error', () => resolve());
    });
  }

  /** The engine's version (`docker version`), for the inventory. */
  async engineVersion(signal?: AbortSignal): Promise<string> {
    try {
      signal?.throwIfAborted();
      const v = await this.docker.version();
      return v.Version;
    } catch (err) {
      throw runtimeError('engine version', err, signal);
    }
  }

  /**
   * The last `tail` lines of a container's output, stdout and stderr
   * interleaved as the engine stored them. Containers run without a TTY, so
   * the engine sends its multiplexed framing; it is taken apart here.
   */
  async containerLogs(id: string, tail: number, signal?: AbortSignal): Promise<Buffer> {
    try {
      const raw = await this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, tail, abortSignal: signal });
      return demultiplex(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)));
    } catch (err) {
      throw runtimeError(`logs ${id}`, err, signal);
    }
  }

  private dispatch(line: string, onEvent: (e: RuntimeEvent) => void): void {
    let raw: { Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
    try {
      raw = JSON.parse(line) as typeof raw;
    } catch {
      return; // a torn line from an engine that died mid-write; the next read of the state covers it
    }
    const attrs = raw.Actor?.Attributes ?? {};
    const action = raw.Action ?? '';
    // health_status arrives as "health_status: healthy".
    const health = action.startsWith('health_status') ? (action.split(':')[1]?.trim() as HealthStatus | undefined) ?? null : null;
    const base = health !== null ? 'health_status' : action;
    onEvent({
      action: EVENT_ACTIONS.has(base as RuntimeEvent['action']) || base === 'health_status' ? (base as RuntimeEvent['action']) : 'other',
      containerId: raw.Actor?.ID ?? '',
      service: attrs[LABELS.service] ?? '',
      exitCode: attrs.exitCode === undefined ? null : Number(attrs.exitCode),
      health,
    });
  }
}
