/**
 * File-level copies of a Warden SQLite database, for `warden backup` and `warden restore`.
 *
 * **Why VACUUM INTO and not the online backup API.** Both produce a consistent copy, but they
 * behave differently while other processes keep committing (a daemon, `warden run`), in WAL
 * mode:
 *
 * - `VACUUM INTO` is ONE statement in ONE read transaction. In WAL mode a reader sees the
 *   database as of the moment its transaction began and never blocks writers, so the copy is
 *   the database at a single instant, however many commits land meanwhile, and it always
 *   finishes. (The WAL cannot be checkpointed past that snapshot while the copy runs; it is
 *   checkpointed afterwards as usual.)
 * - The backup API (`sqlite3_backup_step`, better-sqlite3's `db.backup()`) copies a few pages
 *   per step and lets go of its read transaction between steps; when another connection writes
 *   in between, it starts over from the first page. Against a writer that never pauses it can
 *   restart forever on a large database.
 *
 * VACUUM INTO also writes a compact file (no free pages) with the same `application_id`,
 * `user_version` and page size, in rollback-journal mode: a single self-contained file. It
 * needs the destination not to exist; callers copy to a temp name and rename.
 */
import { existsSync } from 'node:fs';

import Database from 'better-sqlite3';

import { WardenError } from '../../core/index.ts';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite.ts';
import { classifySqliteError } from './driver-errors.ts';
import { checkCompatible, latestVersion } from './migrate.ts';
import { openReadOnly } from './read-only-open.ts';
import { writeAccessProblem } from './write-access.ts';

/** The schema version this Warden writes (its newest migration). */
export const SQLITE_SCHEMA_VERSION = latestVersion(SQLITE_MIGRATIONS);

const BUSY_TIMEOUT_MS = 5_000;

/**
 * Copies the Warden database `source` into the new file `dest` as of one instant, while other
 * processes may keep writing to it. Only reads `source`; one this process cannot write is read
 * read-only as the store would (read-only-open.ts). Refuses a file that is not a Warden database
 * (STORE_CORRUPT), is from a newer Warden (STORE_TOO_NEW) or has altered migrations
 * (MIGRATION_MISMATCH); NOT_FOUND when `source` is missing. Returns the source's schema version.
 */
export function copySqliteDatabase(source: string, dest: string): { schemaVersion: number } {
  const db = openForReading(source);
  try {
    const schemaVersion = checkCompatible(db, SQLITE_MIGRATIONS, source);
    db.prepare('VACUUM INTO ?').run(dest);
    return { schemaVersion };
  } catch (error) {
    throw asWardenError(error, source);
  } finally {
    db.close();
  }
}

export interface SqliteFileCheck {
  /** `ok`, or the problems `PRAGMA integrity_check` found, joined with `; `. */
  readonly integrity: string;
  readonly schemaVersion: number;
}

/**
 * Checks a database file that nobody else uses (a fresh copy): `PRAGMA integrity_check` and the
 * Warden compatibility checks (STORE_CORRUPT, STORE_TOO_NEW, MIGRATION_MISMATCH thrown).
 */
export function checkSqliteFile(file: string): SqliteFileCheck {
  const db = openForReading(file);
  try {
    const schemaVersion = checkCompatible(db, SQLITE_MIGRATIONS, file);
    const integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>)
      .map((r) => r.integrity_check)
      .join('; ');
    return { integrity, schemaVersion };
  } catch (error) {
    throw asWardenError(error, file);
  } finally {
    db.close();
  }
}

/**
 * A connection that only reads `file`. A writable file gets an ordinary connection — when it is
 * the last one to close, SQLite checkpoints and removes `-wal`/`-shm` as usual, where a
 * read-only connection would leave them behind; one this process cannot write is opened as the
 * read-only store opens it.
 */
export function openForReading(file: string): Database.Database {
  if (!existsSync(file))
    throw new WardenError('NOT_FOUND', `no database file at ${file}`, { details: { file } });
  const problem = writeAccessProblem(file);
  try {
    if (problem)
      return openReadOnly(file, problem, { busyTimeoutMs: BUSY_TIMEOUT_MS, lockSliceMs: 20 }).db;
    return new Database(file, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  } catch (error) {
    throw asWardenError(error, file);
  }
}

/** A failure reading `file` as a Warden error (driver errors classified, others INTERNAL). */
export function asWardenError(error: unknown, file: string): WardenError {
  if (error instanceof WardenError) return error;
  return (
    classifySqliteError(error, file) ??
    new WardenError('INTERNAL', `cannot read ${file}: ${String(error)}`, { cause: error })
  );
}
