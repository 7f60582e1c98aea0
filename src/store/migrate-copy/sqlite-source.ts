/**
 * The SQLite side of `warden migrate`: the database opened only for reading, checked to be this
 * Warden's current schema, and read in ONE read transaction — every table and count comes from
 * the same instant, whatever other processes commit meanwhile. Rows are streamed (statement
 * iterators), never loaded whole.
 */
import type Database from 'better-sqlite3';

import { WardenError } from '../../core/index.ts';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite.ts';
import type { Row } from '../rows.ts';
import { asWardenError, openForReading, SQLITE_SCHEMA_VERSION } from '../sqlite/backup.ts';
import { expandSegment } from '../sqlite/event-log.ts';
import { checkCompatible } from '../sqlite/migrate.ts';
import type { EventRecord } from '../types.ts';
import { SEGMENTS_SELECT, SQLITE_BOOKKEEPING, TABLE_SOURCES, type TableSource } from './tables.ts';

export class SqliteSource {
  readonly file: string;
  readonly schemaVersion: number;
  readonly #db: Database.Database;

  private constructor(file: string, db: Database.Database, schemaVersion: number) {
    this.file = file;
    this.#db = db;
    this.schemaVersion = schemaVersion;
  }

  /**
   * Opens `file` and starts the read transaction. NOT_FOUND without a file; STORE_CORRUPT (not
   * a Warden database), STORE_TOO_NEW (a newer Warden's) and MIGRATION_MISMATCH as the store
   * would; INVALID_STATE for an older schema, which this Warden must migrate first (that
   * writes, and migrate only reads).
   */
  static open(file: string): SqliteSource {
    const db = openForReading(file);
    try {
      // Nothing this connection runs may change the file.
      db.pragma('query_only = ON');
      const version = checkCompatible(db, SQLITE_MIGRATIONS, file);
      if (version === 0)
        throw new WardenError(
          'STORE_CORRUPT',
          `${file} holds no Warden schema (an empty SQLite database); name the database of a Warden installation`,
          { details: { file } },
        );
      if (version < SQLITE_SCHEMA_VERSION)
        throw new WardenError(
          'INVALID_STATE',
          `${file} has schema version ${version}, older than this Warden's (${SQLITE_SCHEMA_VERSION}); open it once with this Warden so it migrates (e.g. warden --db ${file} doctor), then run migrate again. Nothing was changed.`,
          { details: { file, schema_version: version, needs: SQLITE_SCHEMA_VERSION } },
        );
      // A deferred transaction takes its snapshot at its first read, the table check below.
      db.exec('BEGIN');
      checkTables(db, file);
      return new SqliteSource(file, db, version);
    } catch (error) {
      db.close();
      throw asWardenError(error, file);
    }
  }

  /** The rows `source` copies, counted in the read transaction. */
  count(source: TableSource): number {
    const row = this.#db.prepare(source.count).get() as { n: number; m?: number };
    if (row.m !== undefined && row.m !== row.n)
      throw new WardenError(
        'STORE_CORRUPT',
        `${this.file}: task_data has ${row.n} rows and task_state ${row.m}; every task has one of each, so the database is damaged (run warden doctor). Nothing was copied.`,
        { details: { file: this.file, task_data: row.n, task_state: row.m } },
      );
    return row.n;
  }

  /** The column names `source`'s query yields. */
  columns(source: TableSource): string[] {
    return this.#db
      .prepare(source.select!)
      .columns()
      .map((c) => c.name);
  }

  /** Streams `source`'s rows; only one stream may be open at a time. */
  rows(source: TableSource): IterableIterator<Row> {
    return this.#db.prepare(source.select!).iterate() as IterableIterator<Row>;
  }

  /** Streams every event, expanded from its segment, session by session in seq order. */
  *events(): Generator<EventRecord> {
    const segments = this.#db.prepare(SEGMENTS_SELECT).iterate() as IterableIterator<Row>;
    for (const segment of segments) yield* expandSegment(segment);
  }

  close(): void {
    if (!this.#db.open) return;
    try {
      this.#db.exec('ROLLBACK');
    } finally {
      this.#db.close();
    }
  }
}

/**
 * Every SQLite table must be one the sources read: a table this code does not know (a newer
 * migration's) would otherwise be left behind without a word.
 */
function checkTables(db: Database.Database, file: string): void {
  const known = new Set<string>([...SQLITE_BOOKKEEPING, ...TABLE_SOURCES.flatMap((s) => s.reads)]);
  const tables = (
    db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .all() as Array<{ name: string }>
  ).map((r) => r.name);
  const unknown = tables.filter((t) => !known.has(t));
  if (unknown.length > 0)
    throw new WardenError(
      'INTERNAL',
      `${file} has tables this Warden's migrate does not copy (${unknown.join(', ')}); nothing was copied (a bug: migrate must know every table of schema version ${SQLITE_SCHEMA_VERSION})`,
      { details: { file, tables: unknown } },
    );
}
