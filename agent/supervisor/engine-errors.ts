import { TsunaguError } from '../../protocol/errors.js';

/** The engine socket the agent uses when its config names none. */
export function defaultSocket(): string {
  const host = process.env.DOCKER_HOST;
  return host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
}

export function statusCode(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : undefined;
}

/** Engine failures become RUNTIME_FAILED, an unreachable engine RUNTIME_UNAVAILABLE, an abort CANCELLED. */
export function runtimeError(what: string, err: unknown, signal?: AbortSignal): TsunaguError {
  if (signal?.aborted) return new TsunaguError('CANCELLED', `${what}: cancelled`, undefined, { cause: err });
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'EPIPE' || code === 'ECONNRESET') {
    return new TsunaguError('RUNTIME_UNAVAILABLE', `${what}: ${(err as Error).message}`, undefined, { cause: err });
  }
  const json = (err as { json?: { message?: string } } | undefined)?.json;
  const message = json?.message ?? (err instanceof Error ? err.message : String(err));
  return new TsunaguError('RUNTIME_FAILED', `${what}: ${message}`, { status: statusCode(err) }, { cause: err });
}
