import pino from 'pino';
import { isoTimeUtc } from './iso-time.js';

export type Logger = pino.Logger;

/**
 * Structured JSON logs, one line per event, written synchronously: on a
 * device that loses power the last lines before the cut matter most.
 * Secrets never reach the logger: callers pass ids and codes, not payloads.
 */
export function createLogger(options: { name: string; level?: string; fd?: 1 | 2 }): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? process.env.TSUNAGU_LOG_LEVEL ?? 'info',
      base: undefined,
      // pino.stdTimeFunctions.isoTime, without toISOString (see iso-time.ts).
      timestamp: () => `,"time":"${isoTimeUtc(Date.now())}"`,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['password', '*.password', 'claimToken', '*.claimToken', 'secret', '*.secret'], censor: '[redacted]' },
    },
    pino.destination({ fd: options.fd ?? 1, sync: true }),
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
