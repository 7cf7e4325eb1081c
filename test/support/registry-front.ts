import { createServer, request, type Server } from 'node:http';

export interface RegistryFrontOptions {
  /** Hold every manifest request this long before passing it on: a slow pull. */
  manifestDelayMs?: number;
  /** Demand HTTP Basic credentials, as a private registry does. */
  basicAuth?: { username: string; password: string };
}

export interface RegistryFront {
  /** `127.0.0.1:PORT`, to put in front of an image reference. */
  host: string;
  /** Requests that came with the right credentials. */
  authorized: number;
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
  const front: RegistryFront = { host: '', authorized: 0, close: () => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    if (expected !== undefined) {
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="tsunagu-test"', 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      front.authorized += 1;
    }
    const forward = (): void => {
      const up = request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (options.manifestDelayMs && req.url?.includes('/manifests/')) setTimeout(forward, options.manifestDelayMs);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  front.host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  front.close = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return front;
}
