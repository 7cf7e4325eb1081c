import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A unix socket in front of an engine's socket that a test can take away and bring back. */
export interface EngineLink {
  /** The socket to give the runtime under test. */
  path: string;
  up(): Promise<void>;
  /** Cut every connection and stop listening: the engine gone, as its clients see it. */
  down(): Promise<void>;
  close(): void;
}

/**
 * The engine "restarting" as a client sees it, without touching the engine
 * that other tests share. Starts down: call `up()`.
 */
export function engineLink(target: string): EngineLink {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-engine-link-'));
  const path = join(dir, 'docker.sock');
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  return {
    path,
    up: () => new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(target);
        for (const s of [client, upstream]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => s.destroy()); }
        client.pipe(upstream).pipe(client);
      });
      server.listen(path, resolve);
    }),
    down: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      if (server) server.close(() => resolve());
      else resolve();
      server = undefined;
    }),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
