/**
 * Errors that cross the wire, rebuilt as {@link WardenError}s, and the errors of the transport
 * itself (refused connection, HTTP status at the upgrade).
 */
import { ERROR_CATALOGUE, type ErrorCode, isWardenError, WardenError } from '../core/index.ts';

/** A JSON-RPC 2.0 error object as the server sends it. */
export interface WireError {
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

/**
 * The WardenError a JSON-RPC error stands for: `data` carries Warden's typed error (code,
 * message, retryable, retry_after_ms, details). Plain JSON-RPC errors without it map by their
 * number; a code this client does not know (a newer server) becomes INTERNAL, keeping the
 * server's code in `details.server_code`.
 */
export function fromWireError(error: WireError, method: string): WardenError {
  const data = isObject(error.data) ? error.data : undefined;
  const message =
    typeof data?.message === 'string' ? data.message : String(error.message ?? 'error');
  const details = isObject(data?.details) ? data.details : undefined;
  const retryAfterMs = typeof data?.retry_after_ms === 'number' ? data.retry_after_ms : undefined;
  const retryable = typeof data?.retryable === 'boolean' ? data.retryable : undefined;
  const code = typeof data?.code === 'string' ? data.code : undefined;
  if (code !== undefined && Object.hasOwn(ERROR_CATALOGUE, code)) {
    return new WardenError(code as ErrorCode, message, { details, retryAfterMs, retryable });
  }
  if (code !== undefined) {
    return new WardenError('INTERNAL', `${method}: ${message}`, {
      details: { ...details, server_code: code },
      retryAfterMs,
      retryable,
    });
  }
  switch (error.code) {
    case -32602:
      return new WardenError('INVALID_PARAMS', `${method}: ${message}`, { details });
    case -32601:
      return new WardenError(
        'NOT_FOUND',
        `the daemon does not know the method ${method}: it is older than this client; upgrade the daemon`,
        { details: { what: 'method', id: method } },
      );
    default:
      return new WardenError('INTERNAL', `${method}: ${message} (JSON-RPC ${error.code})`, {
        details: { jsonrpc_code: error.code },
      });
  }
}

/** The error for an HTTP answer to the upgrade instead of a WebSocket. */
export function upgradeRefused(url: string, status: number): WardenError {
  if (status === 401) {
    return new WardenError(
      'UNAUTHORIZED',
      `the Warden daemon at ${url} refused the token (HTTP 401): pass a valid token (the admin token is in WARDEN_HOME/auth.token; others come from \`warden token create\`), in the Authorization header, never in the URL`,
      { details: { url, status } },
    );
  }
  if (status === 403) {
    return new WardenError(
      'FORBIDDEN',
      `the Warden daemon at ${url} refused the connection (HTTP 403): the Origin sent is not in the daemon's server.allowed_origins; add it there, or send no Origin from a program`,
      { details: { url, status } },
    );
  }
  return new WardenError(
    'DAEMON_UNREACHABLE',
    `${url} answered HTTP ${status} instead of opening a WebSocket: check that the URL is a Warden daemon's ACP endpoint (…/acp)`,
    { details: { url, status } },
  );
}

/** The error for a connection that could not be made or was lost. */
export function unreachable(url: string, cause?: unknown): WardenError {
  if (isWardenError(cause)) return cause;
  const why = cause instanceof Error ? `: ${cause.message}` : '';
  return new WardenError(
    'DAEMON_UNREACHABLE',
    `cannot reach the Warden daemon at ${url}${why}; start it with \`warden serve\` or check the URL`,
    { details: { url }, cause },
  );
}

/** The error that in-flight calls get when the connection drops under them. */
export function connectionLost(url: string, method: string, code: number): WardenError {
  return new WardenError(
    'DAEMON_UNREACHABLE',
    `the connection to ${url} closed (code ${code}) before ${method} was answered; the call may or may not have taken effect on the daemon: check before repeating a call that is not idempotent`,
    { details: { url, method, close_code: code } },
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
