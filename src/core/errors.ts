/**
 * Typed errors. Every code is declared once here with its retryability and its JSON-RPC,
 * gRPC and HTTP mappings; `docs/errors.md` lists the same codes (a test keeps them in sync).
 * Test errors by code with {@link isWardenError}, never with a bare `instanceof`: errors cross
 * worker threads and process boundaries.
 */

export interface ErrorSpec {
  /** One line telling the user what the code means. */
  readonly summary: string;
  readonly retryable: boolean;
  /** JSON-RPC `error.code`: -32602 for invalid params, -32000 for application errors. */
  readonly jsonrpc: number;
  /** gRPC status name. */
  readonly grpc: string;
  readonly http: number;
}

export const ERROR_CATALOGUE = {
  INVALID_PARAMS: {
    summary: 'A parameter, flag or field is missing or has the wrong type or value.',
    retryable: false,
    jsonrpc: -32602,
    grpc: 'INVALID_ARGUMENT',
    http: 400,
  },
  WORKFLOW_INVALID: {
    summary: 'A workflow file failed to parse or validate.',
    retryable: false,
    jsonrpc: -32602,
    grpc: 'INVALID_ARGUMENT',
    http: 400,
  },
  CONFIG_INVALID: {
    summary: 'A configuration file or environment variable is invalid.',
    retryable: false,
    jsonrpc: -32602,
    grpc: 'INVALID_ARGUMENT',
    http: 400,
  },
  NOT_FOUND: {
    summary: 'The named session, process, task, interrupt or file does not exist.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'NOT_FOUND',
    http: 404,
  },
  CONFLICT: {
    summary: 'The record changed since it was read; read it again and retry.',
    retryable: true,
    jsonrpc: -32000,
    grpc: 'ABORTED',
    http: 409,
  },
  ALREADY_EXISTS: {
    summary: 'Something with that name or id exists already.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'ALREADY_EXISTS',
    http: 409,
  },
  INVALID_STATE: {
    summary: 'The transition is not legal from the current state.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'FAILED_PRECONDITION',
    http: 409,
  },
  LEASE_LOST: {
    summary: 'The lease token is stale: the task was reclaimed or finished by someone else.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'FAILED_PRECONDITION',
    http: 409,
  },
  QUEUE_FULL: {
    summary: 'The lane is at its maximum depth; retry after retry_after_ms.',
    retryable: true,
    jsonrpc: -32000,
    grpc: 'RESOURCE_EXHAUSTED',
    http: 429,
  },
  RATE_LIMITED: {
    summary: 'A rate limit was reached; retry after retry_after_ms.',
    retryable: true,
    jsonrpc: -32000,
    grpc: 'RESOURCE_EXHAUSTED',
    http: 429,
  },
  QUOTA_EXCEEDED: {
    summary: 'A process budget (calls, tokens, hops, iterations, time) is exhausted.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'RESOURCE_EXHAUSTED',
    http: 429,
  },
  IDEMPOTENCY_CONFLICT: {
    summary: 'The idempotency key was already used with a different request.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'ALREADY_EXISTS',
    http: 409,
  },
  EFFECT_IN_PROGRESS: {
    summary:
      'Another attempt holds this effect key pending and may still be running it; retry after retry_after_ms.',
    retryable: true,
    jsonrpc: -32000,
    grpc: 'ABORTED',
    http: 409,
  },
  JOB_FAILED: {
    summary:
      'A job handler threw; the task is retried with backoff unless the error says otherwise.',
    retryable: true,
    jsonrpc: -32000,
    grpc: 'ABORTED',
    http: 500,
  },
  CANCELED: {
    summary: 'The operation was canceled.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'CANCELLED',
    http: 499,
  },
  TIMEOUT: {
    summary: 'The operation did not finish within its deadline.',
    retryable: true,
    jsonrpc: -32000,
    grpc: 'DEADLINE_EXCEEDED',
    http: 504,
  },
  PROVIDER_ERROR: {
    summary: 'The model provider failed or returned something unusable.',
    retryable: true,
    jsonrpc: -32000,
    grpc: 'UNAVAILABLE',
    http: 502,
  },
  STORE_BUSY: {
    summary: 'The database stayed locked by another writer past the busy timeout.',
    retryable: true,
    jsonrpc: -32000,
    grpc: 'UNAVAILABLE',
    http: 503,
  },
  STORE_UNAVAILABLE: {
    summary:
      'The database server cannot be reached, or the connection was lost while a write was being committed.',
    retryable: true,
    jsonrpc: -32000,
    grpc: 'UNAVAILABLE',
    http: 503,
  },
  STORE_READ_ONLY: {
    summary:
      'The database cannot be written: its file, directory, -wal or -shm file is read-only for this user.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'FAILED_PRECONDITION',
    http: 500,
  },
  STORE_CORRUPT: {
    summary: 'The database file is not a Warden database or is damaged.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'DATA_LOSS',
    http: 500,
  },
  STORE_TOO_NEW: {
    summary: 'The database was written by a newer Warden; upgrade Warden to open it.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'FAILED_PRECONDITION',
    http: 500,
  },
  MIGRATION_MISMATCH: {
    summary: 'An applied migration differs from the one shipped with this Warden.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'FAILED_PRECONDITION',
    http: 500,
  },
  LEDGER_BROKEN: {
    summary: 'The event log hash chain or sequence is broken (tampering or corruption).',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'DATA_LOSS',
    http: 500,
  },
  REPLAY_GAP: {
    summary: 'The cursor is older than retention: the events after it were pruned.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'OUT_OF_RANGE',
    http: 410,
  },
  UNAUTHORIZED: {
    summary: 'No valid credentials were presented.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'UNAUTHENTICATED',
    http: 401,
  },
  FORBIDDEN: {
    summary: 'The credentials do not permit this action.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'PERMISSION_DENIED',
    http: 403,
  },
  POLICY_DENIED: {
    summary: 'The policy decision point denied the action (default deny: nothing allowed it).',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'PERMISSION_DENIED',
    http: 403,
  },
  GUARD_BLOCKED: {
    summary: 'A security guard (SSRF, command risk, prompt injection, path) blocked the action.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'PERMISSION_DENIED',
    http: 403,
  },
  APPROVAL_DENIED: {
    summary: 'A person denied the action, or its approval expired (timeout means deny).',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'PERMISSION_DENIED',
    http: 403,
  },
  POLICY_INVALID: {
    summary: 'A policy file failed to parse or validate; the previous policy stays active.',
    retryable: false,
    jsonrpc: -32602,
    grpc: 'INVALID_ARGUMENT',
    http: 400,
  },
  SECRET_MISSING: {
    summary: 'A secret named by reference is not set, or the secrets file is unsafe.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'FAILED_PRECONDITION',
    http: 412,
  },
  TOOL_ERROR: {
    summary: 'A tool ran and failed (bad arguments, an error answer, its timeout).',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'ABORTED',
    http: 502,
  },
  HANDSHAKE_REQUIRED: {
    summary: 'A protocol method was called before the handshake (`system.hello`).',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'FAILED_PRECONDITION',
    http: 428,
  },
  PROTOCOL_MISMATCH: {
    summary: 'The client and server share no protocol version.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'FAILED_PRECONDITION',
    http: 400,
  },
  DAEMON_RUNNING: {
    summary: 'A Warden daemon is running on this home, and the command needs it stopped.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'FAILED_PRECONDITION',
    http: 409,
  },
  DAEMON_UNREACHABLE: {
    summary: 'The Warden daemon could not be reached at its URL.',
    retryable: true,
    jsonrpc: -32000,
    grpc: 'UNAVAILABLE',
    http: 503,
  },
  PAYLOAD_TOO_LARGE: {
    summary: 'A payload, output or frame is larger than its configured limit.',
    retryable: false,
    jsonrpc: -32000,
    grpc: 'INVALID_ARGUMENT',
    http: 413,
  },
  INTERNAL: {
    summary: 'An unexpected internal failure; the operation changed nothing.',
    retryable: false,
    jsonrpc: -32603,
    grpc: 'INTERNAL',
    http: 500,
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

const BRAND = Symbol.for('warden.error');

export interface WardenErrorOptions {
  readonly details?: Record<string, unknown>;
  readonly retryAfterMs?: number;
  readonly cause?: unknown;
  readonly retryable?: boolean;
}

/** The one error type Warden throws. `code` is stable; `message` says what to do next. */
export class WardenError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: WardenErrorOptions = {}) {
    if (!Object.hasOwn(ERROR_CATALOGUE, code)) {
      // Checked before anything reads the catalogue entry (a raw TypeError otherwise).
      const got = typeof code === 'string' ? `'${code}'` : typeof code;
      throw new WardenError(
        'INVALID_PARAMS',
        `new WardenError: code: expected one of the codes in ERROR_CATALOGUE (docs/errors.md) (got ${got})`,
        { details: { where: 'new WardenError', code: String(code) } },
      );
    }
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WardenError';
    this.code = code;
    this.retryable = options.retryable ?? ERROR_CATALOGUE[code].retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** A plain object for JSON output and wire errors (no stack, no cause). */
  toJSON(): {
    code: ErrorCode;
    message: string;
    retryable: boolean;
    retry_after_ms?: number;
    details?: Record<string, unknown>;
  } {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.retryAfterMs === undefined ? {} : { retry_after_ms: this.retryAfterMs }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

/** True for a WardenError from any realm; narrows to a code when one is given. */
export function isWardenError(value: unknown, code?: ErrorCode): value is WardenError {
  if (typeof value !== 'object' || value === null) return false;
  const branded =
    (value as Record<symbol, unknown>)[BRAND] === true ||
    (typeof (value as { code?: unknown }).code === 'string' &&
      Object.hasOwn(ERROR_CATALOGUE, (value as { code: string }).code) &&
      (value as { name?: unknown }).name === 'WardenError');
  return branded && (code === undefined || (value as WardenError).code === code);
}

/** Wraps anything caught from foreign code; a WardenError passes through unchanged. */
export function coerceError(value: unknown, code: ErrorCode = 'INTERNAL'): WardenError {
  if (isWardenError(value)) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new WardenError(code, message, { cause: value });
}

/** Short factories for the common cases. */
export const errors = {
  invalidParams: (message: string, details?: Record<string, unknown>) =>
    new WardenError('INVALID_PARAMS', message, { details }),
  notFound: (what: string, id: string) =>
    new WardenError('NOT_FOUND', `${what} '${id}' does not exist`, { details: { what, id } }),
  invalidState: (message: string, details?: Record<string, unknown>) =>
    new WardenError('INVALID_STATE', message, { details }),
  conflict: (message: string, details?: Record<string, unknown>) =>
    new WardenError('CONFLICT', message, { details }),
  leaseLost: (taskId: string, attempt?: number) =>
    new WardenError(
      'LEASE_LOST',
      `the lease on task ${taskId} is no longer held by this token (it was reclaimed, canceled or already finished); drop the result`,
      { details: { task_id: taskId, ...(attempt === undefined ? {} : { attempt }) } },
    ),
  /** A read from `afterSeq` when the session's events up to `prunedSeq` were pruned. */
  replayGap: (sessionId: string, afterSeq: number, prunedSeq: number) =>
    new WardenError(
      'REPLAY_GAP',
      `events of session ${sessionId} up to seq ${prunedSeq} were pruned by retention, so nothing can be replayed after seq ${afterSeq}; resume from seq ${prunedSeq + 1} (the oldest kept) and re-read current state`,
      { details: { session_id: sessionId, after_seq: afterSeq, oldest_seq: prunedSeq + 1 } },
    ),
} as const;
