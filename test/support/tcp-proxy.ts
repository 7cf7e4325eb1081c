import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * What the proxy does with traffic:
 * - `forward`: a plain TCP relay to the target;
 * - `cut`: every connection reset, new ones reset on accept (a link that is down and says so);
 * - `blackhole`: nothing forwarded and nothing closed — bytes are neither read nor answered,
 *   as when a route silently drops packets; only the client's own timers can notice.
 */
export type ProxyMode = 'forward' | 'cut' | 'blackhole';

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
  /** Caught in a black hole: nothing passes, not even a close from the broker's side. */
  holed: boolean;
}

/**
 * A TCP relay on loopback that the device connects through instead of the
 * broker, so that a test can cut or black-hole the link without touching the
 * broker, and count the connections the broker would have seen.
 */
export class TcpProxy {
  /** Accept time (ms since epoch) of every connection, whatever the mode. */
  readonly accepted: number[] = [];
  private mode: ProxyMode = 'forward';
  private readonly pairs = new Set<Pair>();

  private constructor(private readonly server: Server, readonly port: number, private readonly target: { host: string; port: number }) {
    server.on('connection', (client) => this.onConnection(client));
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });
    return new TcpProxy(server, port, target);
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Connections currently held open (forwarded or black-holed). */
  get open(): number {
    return this.pairs.size;
  }

  private onConnection(client: Socket): void {
    this.accepted.push(Date.now());
    client.on('error', () => undefined);
    if (this.mode === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = { client, upstream: undefined, holed: false };
    this.pairs.add(pair);
    client.once('close', () => this.drop(pair));
    if (this.mode === 'blackhole') {
      pair.holed = true;
      client.pause();
      return;
    }
    this.relay(pair);
  }

  private relay(pair: Pair): void {
    const upstream = connect(this.target.port, this.target.host);
    pair.upstream = upstream;
    upstream.on('error', () => undefined);
    // The broker's keepalive gives up on a black-holed connection too; its close
    // must not reach the device, or the test would measure the broker's timer.
    upstream.once('close', () => { if (!pair.holed) this.drop(pair); });
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }

  /** Reset every connection and every new one until `restore()`. */
  cut(): void {
    this.mode = 'cut';
    for (const pair of [...this.pairs]) {
      this.pairs.delete(pair);
      pair.client.resetAndDestroy();
      pair.upstream?.destroy();
    }
  }

  /**
   * Stop moving bytes in either direction without closing anything. The
   * broker side is paused too, so the broker's own keepalive check (1.5×
   * the client's keepalive) is what eventually closes that half.
   */
  blackhole(): void {
    this.mode = 'blackhole';
    for (const pair of this.pairs) {
      pair.holed = true;
      pair.client.unpipe();
      pair.upstream?.unpipe();
      pair.client.pause();
      pair.upstream?.pause();
    }
  }

  /**
   * Forward new connections again. Connections caught in a black hole stay
   * dead (their state is lost on both ends) and are dropped, as a client
   * would find once its packets pass again.
   */
  restore(): void {
    if (this.mode === 'blackhole') {
      for (const pair of [...this.pairs]) if (pair.holed) this.drop(pair);
    }
    this.mode = 'forward';
  }

  async close(): Promise<void> {
    for (const pair of [...this.pairs]) this.drop(pair);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The most connections accepted within any `windowMs` (a sliding window over the accept times). */
export function peakRate(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let peak = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++;
    peak = Math.max(peak, end - start + 1);
  }
  return peak;
}
