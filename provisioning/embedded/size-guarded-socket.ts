import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { scanHeaders, START_OF_STREAM, type HeaderScanState, type HeaderScanVerdict } from './packet-header-scan.js';

export type PacketRefusal = Exclude<HeaderScanVerdict, { kind: 'ok' }>;

/**
 * A client's socket as the embedded broker reads it: every fixed header is
 * judged (packet-header-scan.ts) before a byte reaches Aedes. Aedes has no
 * packet size limit, and mqtt-packet collects a whole packet before it
 * parses it, so a 100 MB PUBLISH would be 100 MB (and more) of broker memory.
 * Here the socket is destroyed as soon as a header declares a packet over
 * the limit; none of that packet is passed on, and no more is read. MQTT
 * 3.1.1 has no way to refuse a single packet: like Mosquitto with
 * `max_packet_size`, the broker closes the connection (the client's will, if
 * any, is published).
 *
 * Reading is paused while Aedes does not read (back-pressure), so what waits
 * here is at most one socket chunk.
 */
export class SizeGuardedSocket extends Duplex {
  private scan: HeaderScanState = START_OF_STREAM;

  constructor(private readonly socket: Socket, private readonly maxPacketBytes: number, private readonly onRefused: (refusal: PacketRefusal) => void) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.once('end', () => this.push(null));
    socket.once('error', (err) => this.destroy(err));
    socket.once('close', () => this.destroy());
  }

  private onData(chunk: Buffer): void {
    const { state, verdict } = scanHeaders(this.scan, chunk, this.maxPacketBytes);
    this.scan = state;
    if (verdict.kind !== 'ok') {
      this.socket.pause();
      this.onRefused(verdict);
      this.socket.destroy();
      return;
    }
    if (!this.push(chunk)) this.socket.pause();
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.socket.write(chunk)) callback();
    else this.socket.once('drain', () => callback());
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.socket.end(() => callback());
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.socket.destroy();
    callback(err);
  }
}
