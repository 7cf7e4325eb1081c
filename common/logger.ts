import pino from 'pino';
import { isoTimeUtc } from './iso-time.js';

export type Logger = pino.Logger;

/**
 * Structured JSON logs, one line per event, written synchronously: on a
 * device that loses power the last lines before the cut matter most.
 * Secrets never reach the logger: callers pass ids and codes, not payloads.
 */
/** A warning or error as logged, for a display of the last problems (agent/status). */
export interface LoggedProblem {
  level: 'warn' | 'error';
  message: string;
  /** The `code` field, or `err.code`, when the line carried one. */
  code?: string;
}

const WARN = 40;

export function createLogger(options: { name: string; level?: string; fd?: 1 | 2; onProblem?: (problem: LoggedProblem) => void }): Logger {
  const onProblem = options.onProblem;
  return pino(
    {
      ...(onProblem === undefined ? {} : {
        hooks: {
          logMethod(args: Parameters<pino.LogFn>, method: pino.LogFn, level: number) {
            if (level >= WARN) {
              try {
                onProblem(problemOf(args, level));
              } catch { /* the display must never break logging */ }
            }
            return method.apply(this, args);
          },
        },
      }),
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

function problemOf(args: unknown[], level: number): LoggedProblem {
  const [first, ...rest] = args;
  const fields = typeof first === 'object' && first !== null ? first as Record<string, unknown> : {};
  const message = typeof first === 'string' ? first : typeof rest[0] === 'string' ? rest[0] : '';
  const err = typeof fields.err === 'object' && fields.err !== null ? fields.err as Record<string, unknown> : {};
  const code = typeof fields.code === 'string' ? fields.code : typeof err.code === 'string' ? err.code : undefined;
  const detail = typeof fields.err === 'string' ? `: ${fields.err}` : typeof err.message === 'string' ? `: ${err.message}` : '';
  return { level: level >= 50 ? 'error' : 'warn', message: `${message}${detail}`, ...(code === undefined ? {} : { code }) };
}
