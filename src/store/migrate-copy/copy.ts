/**
 * `warden migrate`: copies a single-node installation's SQLite database, with its full history,
 * into an empty PostgreSQL schema.
 *
 * In order, stopping at the first refusal:
 *
 * 1. The target URL is parsed (CONFIG_INVALID), and the SQLite file opened for reading only and
 *    checked: this Warden's current schema (see SqliteSource.open), read in one read
 *    transaction, so the copy is the database at one instant.
 * 2. The target schema must hold no Warden rows (CONFIG_INVALID, nothing changed); it is then
 *    created and migrated by the store's own runner (migratePostgres, its own transaction).
 * 3. ONE PostgreSQL transaction copies every table: it takes the schema's migration lock and
 *    locks every table against writers (a node started on the schema meanwhile waits), checks
 *    again that they are empty, inserts in batches (≈1,000 rows or 8 MiB per statement, SQLite
 *    rows streamed, never all in memory), expands each event segment into one `events` row per
 *    event with every field as stored (seq, ts, prev_hash, hash…), and moves the tasks' identity
 *    sequence past the copied keys. Before COMMIT it compares row counts per table with SQLite's
 *    and verifies every session's hash chain and the audit chain on the target
 *    (verify-target.ts); any difference rolls the whole copy back.
 *
 * A copy that fails after step 2 leaves the schema migrated and empty: a valid target for the
 * next attempt.
 */
import type pg from 'pg';

import { canonicalJson, type Clock, systemClock, WardenError } from '../../core/index.ts';
import { POSTGRES_MIGRATIONS } from '../migrations/postgres.ts';
import { parsePgTarget, type PgTarget, pgWardenError } from '../postgres/connection.ts';
import { migratePostgres, quoteIdent } from '../postgres/migrate.ts';
import { asWardenError } from '../sqlite/backup.ts';
import type { AuditVerification } from '../types.ts';
import {
  BatchInserter,
  checkTargetTables,
  columnsOf,
  connectTarget,
  nonEmptyTables,
  notEmptyError,
  tablesOf,
  type TargetColumn,
} from './pg-target.ts';
import { SqliteSource } from './sqlite-source.ts';
import { POSTGRES_BOOKKEEPING, TABLE_SOURCES, type TableSource } from './tables.ts';
import { type SessionBreak, verifyTargetAudit, verifyTargetChains } from './verify-target.ts';

export interface CopyToPostgresOptions {
  /** The SQLite database file (only read). */
  readonly from: string;
  /** `postgres://…[?schema=name]`; the schema defaults to `warden`. */
  readonly to: string;
  /** Rows per INSERT statement at most. @default 1000 */
  readonly batchRows?: number;
  /** @default 5000 */
  readonly connectTimeoutMs?: number;
  /** Longest one statement of the copy may run. @default 300000 */
  readonly statementTimeoutMs?: number;
  /** How long to wait for a table lock held by another process (STORE_BUSY). @default 10000 */
  readonly lockTimeoutMs?: number;
  /** Told about each step and every batch. */
  readonly onProgress?: (progress: CopyProgress) => void;
  /** Stamps the target's migration history. @default systemClock */
  readonly clock?: Clock;
}

export type CopyProgress =
  | { readonly phase: 'source'; readonly schemaVersion: number; readonly rows: number }
  | { readonly phase: 'target'; readonly schema: string; readonly schemaVersion: number }
  | {
      readonly phase: 'copy';
      readonly table: string;
      readonly rows: number;
      readonly total: number;
    }
  | { readonly phase: 'verify'; readonly events: number; readonly total: number };

export interface TableCount {
  readonly table: string;
  readonly sqlite: number;
  readonly postgres: number;
}

export interface CopyReport {
  readonly source: string;
  /** The target URL without its password. */
  readonly target: string;
  readonly schema: string;
  readonly sqlite_schema_version: number;
  readonly postgres_schema_version: number;
  /** Rows per PostgreSQL table: what SQLite held and what the target holds (always equal). */
  readonly tables: readonly TableCount[];
  readonly sessions: number;
  readonly events: number;
  /**
   * Every session's chain and the audit chain verified on the target (a copy that fails is not
   * committed).
   */
  readonly ledger_ok: true;
  readonly elapsed_ms: number;
}

const MAX_BATCH_BYTES = 8 * 1_048_576;
const PROGRESS_EVERY = 100_000;

export async function copySqliteToPostgres(options: CopyToPostgresOptions): Promise<CopyReport> {
  const started = Date.now();
  const target = parsePgTarget(options.to);
  const batchRows = options.batchRows ?? 1_000;
  if (!Number.isInteger(batchRows) || batchRows < 1 || batchRows > 100_000)
    throw new WardenError(
      'INVALID_PARAMS',
      `batchRows must be an integer 1-100000, got ${batchRows}`,
    );
  const progress = options.onProgress ?? (() => undefined);
  const source = SqliteSource.open(options.from);
  let client: pg.Client | null = null;
  try {
    const counts = new Map(TABLE_SOURCES.map((s) => [s.table, source.count(s)]));
    progress({
      phase: 'source',
      schemaVersion: source.schemaVersion,
      rows: [...counts.values()].reduce((a, b) => a + b, 0),
    });
    client = await connectTarget(target, {
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      statementTimeoutMs: options.statementTimeoutMs ?? 300_000,
    });
    const tables = TABLE_SOURCES.map((s) => s.table);
    await refuseNonEmpty(client, target, tables);
    const version = await migratePostgres(
      client,
      target.schema,
      POSTGRES_MIGRATIONS,
      target.display,
      (options.clock ?? systemClock).now(),
    );
    progress({ phase: 'target', schema: target.schema, schemaVersion: version });
    const copied = await inTransaction(client, async (tx) => {
      await lockTarget(tx, target, tables, options.lockTimeoutMs ?? 10_000);
      for (const s of TABLE_SOURCES)
        await copyTable(tx, target.schema, source, s, counts.get(s.table)!, {
          maxRows: batchRows,
          progress,
        });
      await advanceIdentities(tx, target.schema, tables);
      const found = await countTarget(tx, target.schema, tables);
      const table = TABLE_SOURCES.map((s) => ({
        table: s.table,
        sqlite: counts.get(s.table)!,
        postgres: found.get(s.table)!,
      }));
      const off = table.filter((t) => t.sqlite !== t.postgres);
      if (off.length > 0)
        throw new WardenError(
          'INTERNAL',
          `the copy holds different row counts than ${source.file} (${off.map((t) => `${t.table}: ${t.sqlite} → ${t.postgres}`).join(', ')}); it was rolled back, nothing was changed`,
          { details: { tables: off } },
        );
      const events = counts.get('events')!;
      let reported = 0;
      const chains = await verifyTargetChains(tx, target.schema, (n) => {
        if (n - reported < PROGRESS_EVERY) return;
        reported = n;
        progress({ phase: 'verify', events: n, total: events });
      });
      if (chains.broken.length > 0) throw ledgerBroken(source.file, chains.broken);
      progress({ phase: 'verify', events: chains.events, total: events });
      const audit = await verifyTargetAudit(tx);
      if (!audit.ok) throw auditBroken(source.file, audit);
      return { table, sessions: chains.sessions, events };
    });
    return {
      source: source.file,
      target: target.display,
      schema: target.schema,
      sqlite_schema_version: source.schemaVersion,
      postgres_schema_version: version,
      tables: copied.table,
      sessions: copied.sessions,
      events: copied.events,
      ledger_ok: true,
      elapsed_ms: Date.now() - started,
    };
  } catch (error) {
    throw asCopyError(error, target, source.file);
  } finally {
    source.close();
    await client?.end().catch(() => undefined);
  }
}

/** Before anything is created or migrated: a Warden schema with rows is refused untouched. */
async function refuseNonEmpty(
  client: pg.ClientBase,
  target: PgTarget,
  tables: readonly string[],
): Promise<void> {
  const present = await tablesOf(client, target.schema);
  if (!present.includes(POSTGRES_BOOKKEEPING[0])) return; // none, or not Warden's: the runner decides
  const full = await nonEmptyTables(
    client,
    target.schema,
    tables.filter((t) => present.includes(t)),
  );
  if (full.length > 0) throw notEmptyError(target, full);
}

async function inTransaction<T>(
  client: pg.ClientBase,
  work: (tx: pg.ClientBase) => Promise<T>,
): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Serialises with migrators and other copies (the runner's advisory lock), keeps writers out
 * until COMMIT (SHARE ROW EXCLUSIVE: readers proceed, writers and a second copy wait), and
 * checks — under those locks — that the schema is the one expected and still empty.
 */
async function lockTarget(
  tx: pg.ClientBase,
  target: PgTarget,
  tables: readonly string[],
  lockTimeoutMs: number,
): Promise<void> {
  const q = quoteIdent(target.schema);
  await tx.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`warden:migrate:${target.schema}`]);
  checkTargetTables(target, await tablesOf(tx, target.schema), tables);
  await tx.query(
    `LOCK TABLE ${tables.map((t) => `${q}.${quoteIdent(t)}`).join(', ')} IN SHARE ROW EXCLUSIVE MODE`,
  );
  const full = await nonEmptyTables(tx, target.schema, tables);
  if (full.length > 0) throw notEmptyError(target, full);
}

async function copyTable(
  tx: pg.ClientBase,
  schema: string,
  source: SqliteSource,
  spec: TableSource,
  total: number,
  options: { maxRows: number; progress: (p: CopyProgress) => void },
): Promise<void> {
  const columns = await columnsOf(tx, schema, spec.table);
  const provided = spec.select ? source.columns(spec) : EVENT_COLUMNS;
  checkColumns(spec.table, columns, provided);
  const inserter = new BatchInserter(tx, schema, spec.table, columns, {
    maxRows: options.maxRows,
    maxBytes: MAX_BATCH_BYTES,
  });
  const rows: Iterable<Readonly<Record<string, unknown>>> = spec.select
    ? source.rows(spec)
    : eventRows(source);
  let reported = 0;
  for (const row of rows) {
    if (!inserter.push(row)) continue;
    await inserter.flush();
    if (inserter.inserted - reported < PROGRESS_EVERY) continue;
    reported = inserter.inserted;
    options.progress({ phase: 'copy', table: spec.table, rows: reported, total });
  }
  await inserter.flush();
  options.progress({ phase: 'copy', table: spec.table, rows: inserter.inserted, total });
}

const EVENT_COLUMNS = [
  'session_id',
  'seq',
  'type',
  'ts',
  'trace_id',
  'process_id',
  'task_id',
  'attempt',
  'data',
  'prev_hash',
  'hash',
];

/**
 * Each event of each segment as an `events` row. `data` is stored as the PostgreSQL adapter
 * stores it, canonical JSON text: exactly the text the event's hash covers.
 */
function* eventRows(source: SqliteSource): Generator<Record<string, unknown>> {
  for (const e of source.events()) yield { ...e, data: canonicalJson(e.data) };
}

/** INTERNAL when the source query and the target table disagree on columns (schema drift). */
function checkColumns(
  table: string,
  target: readonly TargetColumn[],
  provided: readonly string[],
): void {
  const names = target.map((c) => c.name);
  const missing = names.filter((n) => !provided.includes(n));
  const extra = provided.filter((n) => !names.includes(n));
  if (missing.length > 0 || extra.length > 0)
    throw new WardenError(
      'INTERNAL',
      `table ${table}: the SQLite rows and the PostgreSQL table have different columns (not in SQLite: ${missing.join(', ') || 'none'}; not in PostgreSQL: ${extra.join(', ') || 'none'}); nothing was copied`,
      { details: { table, missing, extra } },
    );
}

/** Identity columns continue after the largest copied value (tasks.n). */
async function advanceIdentities(
  tx: pg.ClientBase,
  schema: string,
  tables: readonly string[],
): Promise<void> {
  const { rows } = await tx.query<{ table: string; column: string }>(
    `SELECT table_name AS table, column_name AS column FROM information_schema.columns
     WHERE table_schema = $1 AND is_identity = 'YES' AND table_name = ANY($2)`,
    [schema, tables],
  );
  const q = quoteIdent(schema);
  for (const { table, column } of rows) {
    const qualified = `${q}.${quoteIdent(table)}`;
    await tx.query(
      `SELECT setval(pg_get_serial_sequence($1, $2), max(${quoteIdent(column)})) FROM ${qualified} HAVING count(*) > 0`,
      [qualified, column],
    );
  }
}

async function countTarget(
  tx: pg.ClientBase,
  schema: string,
  tables: readonly string[],
): Promise<Map<string, number>> {
  const q = quoteIdent(schema);
  const { rows } = await tx.query<Record<string, number>>(
    `SELECT ${tables.map((t, i) => `(SELECT count(*) FROM ${q}.${quoteIdent(t)}) AS c${i}`).join(', ')}`,
  );
  return new Map(tables.map((t, i) => [t, Number(rows[0]![`c${i}`])]));
}

function ledgerBroken(file: string, broken: readonly SessionBreak[]): WardenError {
  const first = broken[0]!;
  return new WardenError(
    'LEDGER_BROKEN',
    `the event log of ${file} fails verification (session ${first.key} at seq ${first.break.seq}: ${first.break.reason}${broken.length > 1 ? `, and ${broken.length - 1} more sessions` : ''}); the copy was rolled back, nothing was changed. Run warden --db ${file} ledger verify for every broken link.`,
    {
      details: {
        file,
        sessions: broken.map((b) => ({ session_id: b.session_id, key: b.key, ...b.break })),
      },
    },
  );
}

function auditBroken(file: string, audit: AuditVerification): WardenError {
  const broken = audit.first_broken!;
  return new WardenError(
    'LEDGER_BROKEN',
    `the audit log of ${file} fails verification (seq ${broken.seq}: ${broken.reason}); the copy was rolled back, nothing was changed. The source's audit records were changed or removed outside Warden.`,
    { details: { file, audit: broken } },
  );
}

/** Driver errors as Warden errors; integrity violations mean rows PostgreSQL refuses. */
function asCopyError(error: unknown, target: PgTarget, file: string): WardenError {
  if (error instanceof WardenError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_')) return asWardenError(error, file);
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && code.startsWith('23'))
    return new WardenError(
      'STORE_CORRUPT',
      `PostgreSQL refused a row of the SQLite database (${message}); the copy was rolled back, nothing was changed. Check the source with warden doctor.`,
      { cause: error, details: { store: target.display, pg_code: code } },
    );
  if (code === '55P03')
    return new WardenError(
      'STORE_BUSY',
      `schema '${target.schema}' of ${target.display} is in use by another process (a Warden node or another migrate); stop it and migrate again. Nothing was changed.`,
      { cause: error, details: { store: target.display, pg_code: code } },
    );
  return pgWardenError(error, target.display);
}
