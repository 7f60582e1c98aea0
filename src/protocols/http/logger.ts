/**
 * The daemon's structured logger (DESIGN.md §12): pino, one JSON object per line, with `time`
 * (ms since the epoch, like event `ts`), `level` as a label (`"info"`), `msg`, and the
 * correlation fields a line has (`trace_id`, `session_id`, `process_id`, `task_id`, `attempt`,
 * `connection_id`; bind them with `logger.child({...})`).
 *
 * Secrets never reach the log (DESIGN.md §2.10): the {@link REDACT_PATHS} are censored
 * `[redacted]`, a logged `req` keeps only its method, its URL without credential query values
 * ({@link redactUrl}) and its user agent, and a URL logged on its own should go through
 * {@link redactUrl}. What redaction cannot see is a secret pasted into a message string: never
 * interpolate credentials into `msg`.
 */
import { mkdirSync, openSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { dirname } from 'node:path';

import { type DestinationStream, type Logger, pino } from 'pino';
import { z } from 'zod';

import { checkParams } from '../../core/index.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Fields that tie a log line to events (DESIGN.md §2.10). */
export const CORRELATION_FIELDS = [
  'trace_id',
  'session_id',
  'process_id',
  'task_id',
  'attempt',
  'connection_id',
] as const;

/** Object paths censored in every log line. */
export const REDACT_PATHS: readonly string[] = [
  'authorization',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'cookie',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'attempt_token',
  '*.attempt_token',
  'params.attempt_token',
  'params.token',
];

export const REDACTED = '[redacted]';

export interface LoggerOptions {
  /** @default 'info' */
  readonly level?: LogLevel;
  /** A file descriptor, a file path (appended to, directories created), or a stream. @default 1 (stdout) */
  readonly destination?: number | string | NodeJS.WritableStream;
  /** Fields on every line (e.g. `{service: 'warden'}`). @default pid and hostname */
  readonly base?: Record<string, unknown>;
}

const optionsSchema = z.object({
  level: z.enum(LOG_LEVELS).optional(),
  destination: z
    .union([
      z.number().int().min(0),
      z.string().min(1),
      z.custom<NodeJS.WritableStream>(
        (v) => typeof (v as { write?: unknown } | null)?.write === 'function',
        'expected a writable stream',
      ),
    ])
    .optional(),
  base: z.record(z.string(), z.unknown()).optional(),
});

/**
 * Creates the logger. Writes to a file or descriptor are asynchronous (sonic-boom): call
 * `logger.flush()` before exiting.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  checkParams('createLogger', optionsSchema, options);
  const dest = options.destination ?? 1;
  const stream: DestinationStream =
    typeof dest === 'number'
      ? pino.destination({ fd: dest, sync: false })
      : typeof dest === 'string'
        ? pino.destination({ fd: openLogFile(dest), sync: false })
        : dest;
  return pino(
    {
      level: options.level ?? 'info',
      ...(options.base === undefined ? {} : { base: options.base }),
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
      serializers: { req: serializeRequest, err: pino.stdSerializers.err },
    },
    stream,
  );
}

/**
 * Opens the log file for appending now (mode 0600: logs name sessions and tasks), so a bad
 * path fails `createLogger` instead of the first write, and `flush()` never races the open.
 */
function openLogFile(path: string): number {
  mkdirSync(dirname(path), { recursive: true });
  return openSync(path, 'a', 0o600);
}

/** Query parameters whose values are credentials. */
const SECRET_QUERY_KEYS = new Set(['token', 'access_token', 'auth', 'key', 'password']);

/**
 * The URL with the values of credential query parameters (`token`, `access_token`, `auth`,
 * `key`, `password`, any letter case) replaced by `[redacted]`; everything else as given. A
 * relative URL (`/acp?token=…`, as in `req.url`) stays relative.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash === -1 ? undefined : hash);
  const redacted = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawKey = eq === -1 ? pair : pair.slice(0, eq);
      let key: string;
      try {
        key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
      } catch {
        key = rawKey;
      }
      return SECRET_QUERY_KEYS.has(key.trim().toLowerCase()) ? `${rawKey}=${REDACTED}` : pair;
    })
    .join('&');
  return `${url.slice(0, q + 1)}${redacted}${hash === -1 ? '' : url.slice(hash)}`;
}

/** What a log line keeps of a request: no headers (credentials, cookies), no secret query values. */
function serializeRequest(req: IncomingMessage): Record<string, unknown> {
  return {
    method: req.method,
    url: redactUrl(req.url ?? ''),
    remote_address: req.socket?.remoteAddress,
    user_agent: req.headers?.['user-agent'],
  };
}
