import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';

export interface RegistryFrontOptions {
  /** Hold every manifest request this long before passing it on: a slow pull. */
  manifestDelayMs?: number;
  /** Demand HTTP Basic credentials, as a private registry does. */
  basicAuth?: { username: string; password: string };
  /**
   * Demand a Bearer token, as Docker Hub and GHCR do: the challenge names a
   * token realm on this front (`/token`), which hands out tokens for these
   * Basic credentials.
   */
  bearerAuth?: { username: string; password: string };
  /** Serve HTTPS with this key and certificate instead of HTTP. */
  tls?: { key: string; cert: string };
  /** Stall layer downloads from the start (see `RegistryFront.stallBlobs`). */
  blobStall?: BlobStall;
}

/**
 * A layer download that stops moving: the blob's first `afterBytes` bytes
 * (counted from the start of the blob, also across the engine's resumed
 * downloads) pass, then the connection is held open without another byte
 * (`hold`: a registry or proxy that hangs) or cut (`cut`: the engine tries
 * again, resuming where it got, and gets no further).
 */
export interface BlobStall {
  afterBytes: number;
  mode: 'hold' | 'cut';
}

export interface RegistryFront {
  /** `127.0.0.1:PORT`, to put in front of an image reference. */
  host: string;
  /** Requests that came with the right credentials. */
  authorized: number;
  /** Tokens the realm handed out (bearerAuth). */
  tokensIssued: number;
  /** Layer downloads that were stalled so far. */
  blobsStalled: number;
  /** Stall layer downloads from now on, or (null) let them through again. */
  stallBlobs(stall: BlobStall | null): void;
  close(): Promise<void>;
}

/**
 * A front on loopback for the test registry: passes every request on to the
 * real registry, optionally slowly or only with credentials. The engine
 * pulls through it for real.
 */
export async function startRegistryFront(upstream: string, options: RegistryFrontOptions = {}): Promise<RegistryFront> {
  const [upHost = '', upPort = ''] = upstream.split(':');
  const expected = options.basicAuth && `Basic ${Buffer.from(`${options.basicAuth.username}:${options.basicAuth.password}`).toString('base64')}`;
  let blobStall = options.blobStall ?? null;
  const front: RegistryFront = {
    host: '', authorized: 0, tokensIssued: 0, blobsStalled: 0, stallBlobs: (stall) => { blobStall = stall; }, close: () => Promise.resolve(),
  };
  const bearerBasic = options.bearerAuth && `Basic ${Buffer.from(`${options.bearerAuth.username}:${options.bearerAuth.password}`).toString('base64')}`;
  const tokens = new Set<string>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (bearerBasic !== undefined) {
      const url = new URL(req.url ?? '/', 'http://front');
      if (url.pathname === '/token') {
        if (req.headers.authorization !== bearerBasic) {
          res.writeHead(401, { 'Content-Type': 'application/json' });
          res.end('{"details":"incorrect username or password"}');
          return;
        }
        const token = randomBytes(16).toString('hex');
        tokens.add(token);
        front.tokensIssued += 1;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ token, expires_in: 300 }));
        return;
      }
      const given = req.headers.authorization?.replace(/^Bearer /, '');
      if (given === undefined || !tokens.has(given)) {
        const repo = /^\/v2\/(.+)\/(?:manifests|blobs)\//.exec(url.pathname)?.[1];
        const scheme = options.tls === undefined ? 'http' : 'https';
        res.writeHead(401, {
          'WWW-Authenticate': `Bearer realm="${scheme}://${front.host}/token",service="tsunagu-test"${repo === undefined ? '' : `,scope="repository:${repo}:pull"`}`,
          'Content-Type': 'application/json',
        });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      front.authorized += 1;
    }
    if (expected !== undefined) {
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="tsunagu-test"', 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      front.authorized += 1;
    }
    const forward = (): void => {
      const stall = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') ? blobStall : null;
      const up = request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        // Only a layer's bytes stall (a config blob is small, read whole before any layer).
        if (stall === null || (upRes.statusCode !== 200 && upRes.statusCode !== 206) || Number(upRes.headers['content-length'] ?? 0) <= stall.afterBytes) {
          upRes.pipe(res);
          return;
        }
        front.blobsStalled += 1;
        // A resumed download asks for `Range: bytes=N-`: it is let through up to the same point of the blob.
        const from = Number(/^bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
        let allowed = Math.max(0, stall.afterBytes - from);
        const stop = (): void => {
          upRes.destroy();
          if (stall.mode === 'cut') res.destroy();
          // hold: the response stays open, without another byte, until the engine gives up or the front closes.
        };
        if (allowed === 0) { res.flushHeaders(); stop(); return; }
        upRes.on('data', (chunk: Buffer) => {
          if (allowed <= 0) return;
          res.write(chunk.subarray(0, allowed));
          allowed -= chunk.length;
          if (allowed <= 0) stop();
        });
        upRes.on('end', () => res.end());
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (options.manifestDelayMs && req.url?.includes('/manifests/')) setTimeout(forward, options.manifestDelayMs);
    else forward();
  };
  const server: Server = options.tls === undefined ? createServer(handler) : createTlsServer({ key: options.tls.key, cert: options.tls.cert }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  front.host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  front.close = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return front;
}
