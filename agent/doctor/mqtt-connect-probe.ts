import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { DEVICE_SESSION_EXPIRY_SECONDS } from '../link/mqtt-options.js';
import { MQTT_PORT, MQTT_TLS_PORT } from '../../protocol/mqtt-ports.js';

export interface ConnectProbeTarget {
  url: string;
  ca?: string | undefined;
  protocolVersion: 4 | 5;
  clientId: string;
  username: string;
  password: string;
}

export type ConnectProbeResult =
  | { outcome: 'accepted'; tls: boolean }
  | { outcome: 'refused'; returnCode: number; tls: boolean }
  | { outcome: 'unreachable'; error: string }
  | { outcome: 'unsupported'; scheme: string };

/**
 * One MQTT CONNECT with the device's own credentials, and nothing after the
 * CONNACK: a client library would acknowledge the commands queued in the
 * device's persistent session and they would be lost to the agent; here the
 * socket closes unanswered and the broker keeps them. clean=false for the
 * same reason: clean=true would discard the session, and so would MQTT 5's
 * default session expiry of 0 (the agent's own expiry is asked for).
 */
export function probeMqttConnect(target: ConnectProbeTarget, timeoutMs = 10_000): Promise<ConnectProbeResult> {
  const url = new URL(target.url);
  const scheme = url.protocol.replace(/:$/, '');
  const tls = scheme === 'mqtts' || scheme === 'ssl';
  if (!tls && scheme !== 'mqtt' && scheme !== 'tcp') return Promise.resolve({ outcome: 'unsupported', scheme });
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (tls ? MQTT_TLS_PORT : MQTT_PORT));
  return new Promise((resolve) => {
    let settled = false;
    let received = Buffer.alloc(0);
    const done = (result: ConnectProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const socket: Socket = tls
      ? tlsConnect({ host, port, servername: host, ...(target.ca === undefined ? {} : { ca: target.ca }) }, () => socket.write(connectPacket(target)))
      : tcpConnect({ host, port }, () => socket.write(connectPacket(target)));
    const timer = setTimeout(() => done({ outcome: 'unreachable', error: `no CONNACK within ${timeoutMs} ms` }), timeoutMs);
    socket.on('error', (err) => done({ outcome: 'unreachable', error: err.message }));
    socket.on('close', () => done({ outcome: 'unreachable', error: 'the broker closed the connection before answering' }));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4) return;
      if (received[0] !== 0x20) return done({ outcome: 'unreachable', error: `not an MQTT broker (first byte 0x${received[0]!.toString(16)})` });
      const returnCode = received[3]!;
      done(returnCode === 0 ? { outcome: 'accepted', tls } : { outcome: 'refused', returnCode, tls });
    });
  });
}

function utf8Field(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/** CONNECT (MQTT 3.1.1 or 5): username and password, clean=false, no will; in 5 the device's session expiry. */
export function connectPacket(t: Pick<ConnectProbeTarget, 'protocolVersion' | 'clientId' | 'username' | 'password'>): Buffer {
  const flags = 0x80 | 0x40; // username, password; clean session off
  const keepalive = Buffer.from([0, 30]);
  const expiry = Buffer.alloc(5);
  expiry.writeUInt8(0x11, 0); // Session Expiry Interval
  expiry.writeUInt32BE(DEVICE_SESSION_EXPIRY_SECONDS, 1);
  const properties = t.protocolVersion === 5 ? Buffer.concat([Buffer.from([expiry.length]), expiry]) : Buffer.alloc(0);
  const variable = Buffer.concat([utf8Field('MQTT'), Buffer.from([t.protocolVersion, flags]), keepalive, properties]);
  const payload = Buffer.concat([utf8Field(t.clientId), utf8Field(t.username), utf8Field(t.password)]);
  const body = Buffer.concat([variable, payload]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}
