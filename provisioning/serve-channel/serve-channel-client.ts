import { createConnection } from 'node:net';
import { TsunaguError } from '../../protocol/errors.js';
import type { ServeReply, ServeRequest } from './serve-channel-wire.js';

export interface ServeCall {
  /** Ends the CLI's side (Ctrl-C): `serve` stops following and sends the result it has. */
  interrupt(): void;
  /** Resolves 'unavailable' when no `serve` answers on the socket (nothing was sent), 'answered' after the last reply. */
  finished: Promise<'unavailable' | 'answered'>;
}

/**
 * Hand one request to the running `serve` of this fleet, if one listens on
 * its socket. Replies are passed to `onReply` as they come; a `serve` that
 * goes away before its final reply is an error (the work may have been done).
 */
export function callServe(socketPath: string, request: ServeRequest, onReply: (r: ServeReply) => void): ServeCall {
  const socket = createConnection({ path: socketPath, allowHalfOpen: true });
  let connected = false;
  let final = false;
  const finished = new Promise<'unavailable' | 'answered'>((resolve, reject) => {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.once('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify(request)}\n`);
    });
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const reply = JSON.parse(line) as ServeReply;
        if (reply.kind === 'result' || reply.kind === 'done' || reply.kind === 'error') final = true;
        onReply(reply);
      }
    });
    // Half-open only while waiting: once serve has said everything, close, or nothing would keep the process alive to read the result.
    socket.on('end', () => socket.end());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // No socket, or one left by a `serve` that is gone: the CLI does the work itself.
      if (!connected) resolve('unavailable');
      else reject(new TsunaguError('INTERNAL', `serve's local channel failed: ${err.message}`));
    });
    socket.on('close', () => {
      if (!connected) return;
      if (final) resolve('answered');
      else reject(new TsunaguError('INTERNAL', '`tsunagu-fleet serve` went away before it answered (see its log)'));
    });
  });
  return { interrupt: () => socket.end(), finished };
}
