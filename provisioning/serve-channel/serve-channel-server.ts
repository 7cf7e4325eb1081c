import { chmodSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import { asTsunaguError } from '../../protocol/errors.js';
import { ServeRequestSchema, type ServeReply, type ServeRequest } from './serve-channel-wire.js';

/** Most a request line may hold: a compose document is at most 64 KiB, its secrets and framing a little more. */
const MAX_REQUEST_BYTES = 512 * 1024;

/** What `serve` does for a request; `reply` writes one line back, `signal` aborts when the CLI goes away. */
export type ServeRequestHandler = (request: ServeRequest, reply: (r: ServeReply) => void, signal: AbortSignal) => Promise<void>;

/** Whether something already answers on the socket (another `serve` of this fleet). */
function answering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
}

/**
 * The local end of `serve` that takes work from the CLI on this host, so
 * that a `deploy` is published by a process already connected and holding
 * the signer instead of one that must start, connect and read the broker
 * first. Owner-only: the socket is made with mode 0600 (umask set around
 * the bind, so it never exists with more) inside the 0700 fleet directory.
 * A second `serve` of the same fleet finds the socket answering and leaves
 * it to the first; a socket left by a dead `serve` is replaced.
 */
export class ServeChannel {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly path: string, private readonly handle: ServeRequestHandler, private readonly logger: Logger) {}

  /** Resolves true when listening; false (logged) when another `serve` has the socket or it cannot be made. */
  async start(): Promise<boolean> {
    if (await answering(this.path)) {
      this.logger.warn({ path: this.path }, 'another serve of this fleet takes the CLI\'s work; this one does not');
      return false;
    }
    try { unlinkSync(this.path); } catch { /* none was left */ }
    // Half-open: a CLI interrupted (Ctrl-C) ends its side and still reads the result.
    const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    const listening = new Promise<boolean>((resolve) => {
      server.once('listening', () => resolve(true));
      server.once('error', (err) => {
        this.logger.warn({ path: this.path, err: err.message }, 'no local channel for the CLI; it connects to the broker itself');
        resolve(false);
      });
    });
    // The bind happens inside listen(): the umask makes the socket 0600 from its first instant.
    const umask = process.umask(0o177);
    try {
      server.listen(this.path);
    } finally {
      process.umask(umask);
    }
    if (!(await listening)) return false;
    chmodSync(this.path, 0o600);
    this.server = server;
    return true;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const abort = new AbortController();
    let buffered = '';
    let taken = false;
    const reply = (r: ServeReply): void => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(r)}\n`);
    };
    socket.setEncoding('utf8');
    socket.on('end', () => abort.abort());
    socket.on('close', () => { this.sockets.delete(socket); abort.abort(); });
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      if (taken) return;
      buffered += chunk;
      if (buffered.length > MAX_REQUEST_BYTES) {
        reply({ kind: 'error', code: 'TOO_LARGE', message: 'request too large' });
        socket.end();
        return;
      }
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      taken = true;
      let request: ServeRequest;
      try {
        request = ServeRequestSchema.parse(JSON.parse(buffered.slice(0, nl)));
      } catch (err) {
        reply({ kind: 'error', code: 'MALFORMED', message: `not a serve request: ${(err as Error).message.slice(0, 200)}` });
        socket.end();
        return;
      }
      this.handle(request, reply, abort.signal).catch((err: unknown) => {
        const e = asTsunaguError(err);
        reply({ kind: 'error', code: e.code, message: e.message });
      }).finally(() => socket.end());
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    try { unlinkSync(this.path); } catch { /* already gone */ }
  }
}
