/**
 * Connecting to PostgreSQL: the store URL (`postgres://…[?schema=name]`), a bounded pool whose
 * connections start in the store's schema with a statement timeout, int8 read as numbers, and a
 * table of which driver errors are transient (retry), which mean the server is gone (reconnect)
 * and which are Warden errors.
 */
import { createHash } from 'node:crypto';

import pg from 'pg';

import { WardenError } from '../../core/index.ts';

/** Largest integer times and counts Warden stores fit in a double exactly. */
const int8AsNumber = (value: string): number => Number(value);

const INT8_OID = 20;

export const PG_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? int8AsNumber
      : (pg.types.getTypeParser(
          oid,
          format ?? 'text',
        ) as unknown)) as typeof pg.types.getTypeParser,
};

export interface PgTarget {
  /** The connection string without Warden's own parameters. */
  readonly connectionString: string;
  readonly schema: string;
  /** The URL with any password replaced by `***`, for messages and logs. */
  readonly display: string;
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/** True for a `postgres://` or `postgresql://` URL (the PostgreSQL store's location). */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

/** Replaces a URL's password with `***` (any text that is not a URL comes back unchanged). */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    for (const key of [...url.searchParams.keys()])
      if (/pass|secret|token/i.test(key)) url.searchParams.set(key, '***');
    return url.toString();
  } catch {
    return value;
  }
}

/**
 * Parses a store URL. `schema` (the option) wins over `?schema=`; the default is `warden`.
 * CONFIG_INVALID, naming the problem and never the password, for anything else.
 */
export function parsePgTarget(url: string, schemaOption?: string): PgTarget {
  const display = redactUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new WardenError(
      'CONFIG_INVALID',
      `store URL '${display}' is not a URL; write it as postgres://user@host:5432/database`,
      { details: { store: display } },
    );
  }
  if (!isPostgresUrl(url)) {
    throw new WardenError(
      'CONFIG_INVALID',
      `store URL '${display}' must start with postgres:// or postgresql://`,
      { details: { store: display } },
    );
  }
  const schema = schemaOption ?? parsed.searchParams.get('schema') ?? 'warden';
  if (!SCHEMA_NAME.test(schema)) {
    throw new WardenError(
      'CONFIG_INVALID',
      `schema '${schema}' in store URL '${display}' is not a plain identifier; use letters, digits and _ (≤ 63 characters, not starting with a digit)`,
      { details: { store: display, schema } },
    );
  }
  parsed.searchParams.delete('schema');
  return { connectionString: parsed.toString(), schema, display };
}

export interface PoolSettings {
  readonly max: number;
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** `off` trades the last moments of commits on a server crash for speed (durability 'fast'). */
  readonly synchronousCommit: 'on' | 'off';
}

/** Client settings every connection of the store uses (the pool's and the LISTEN one's). */
export function clientConfig(target: PgTarget, settings: PoolSettings): pg.ClientConfig {
  return {
    connectionString: target.connectionString,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    keepAlive: true,
    // Operators (and tests) find a schema's connections in pg_stat_activity by it.
    application_name: `warden:${target.schema}`.slice(0, 63),
    statement_timeout: settings.statementTimeoutMs,
    options: `-c search_path=${target.schema} -c synchronous_commit=${settings.synchronousCommit}`,
    types: PG_TYPES,
  };
}

export function createPool(target: PgTarget, settings: PoolSettings): pg.Pool {
  const pool = new pg.Pool({
    ...clientConfig(target, settings),
    max: settings.max,
    idleTimeoutMillis: 30_000,
  });
  // An idle connection the server dropped (restart, failover) must not crash the process; the
  // pool discards it and the next checkout connects afresh.
  pool.on('error', () => undefined);
  // The same for a checked-out connection the server drops between two statements: the next
  // statement on it fails and the transaction's retry takes over; the event itself must not
  // reach the process as an uncaught 'error'.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** The NOTIFY channel of a schema (an identifier of at most 63 bytes). */
export function channelFor(schema: string): string {
  return `warden_${createHash('sha256').update(schema).digest('hex').slice(0, 24)}`;
}

export type Failure = 'retry' | 'connection' | 'timeout' | 'other';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

/** What a driver error means for the transaction that met it. */
export function classifyPgError(error: unknown): Failure {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === '40P01' || code === '40001' || code === '55P03') return 'retry';
  if (code === '57014') return 'timeout';
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08')))
    return 'connection';
  const message = error instanceof Error ? error.message : '';
  if (
    /Connection terminated|connection error|not queryable|timeout expired|Connection ended|ECONNRE|socket/i.test(
      message,
    )
  )
    return 'connection';
  return 'other';
}

/** A driver error as a Warden error (after retries, if any, gave up). */
export function pgWardenError(error: unknown, where: string): WardenError {
  const failure = classifyPgError(error);
  const message = error instanceof Error ? error.message : String(error);
  const pgCode = (error as { code?: unknown } | null)?.code;
  const details = { store: where, ...(typeof pgCode === 'string' ? { pg_code: pgCode } : {}) };
  if (failure === 'connection' || failure === 'retry')
    return new WardenError(
      'STORE_UNAVAILABLE',
      `PostgreSQL at ${where} is unavailable (${message}); check the server is up and reachable, then retry`,
      { cause: error, details },
    );
  if (failure === 'timeout')
    return new WardenError(
      'STORE_BUSY',
      `a statement on ${where} ran past the statement timeout; retry, and check the server for long-held locks`,
      { cause: error, details },
    );
  return new WardenError('INTERNAL', `PostgreSQL store failed: ${message}`, {
    cause: error,
    details,
  });
}
