/**
 * Classifies better-sqlite3 errors as Warden errors (one table per adapter, STYLE.md):
 * busy/locked are retryable STORE_BUSY; corruption and "not a database" are STORE_CORRUPT;
 * a refused write (SQLITE_READONLY*, SQLITE_PERM) is STORE_READ_ONLY, a permission problem;
 * a path SQLite cannot open is CONFIG_INVALID.
 */
import { WardenError } from '../../core/index.ts';
import { readOnlyError } from './write-access.ts';

const CORRUPT = new Set([
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
  'SQLITE_CORRUPT_INDEX',
  'SQLITE_CORRUPT_VTAB',
  'SQLITE_CORRUPT_SEQUENCE',
]);
const BUSY = new Set([
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_BUSY_SNAPSHOT',
  'SQLITE_BUSY_RECOVERY',
  'SQLITE_BUSY_TIMEOUT',
]);

export function classifySqliteError(error: unknown, file: string): WardenError | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return null;
  if (CORRUPT.has(code)) {
    return new WardenError(
      'STORE_CORRUPT',
      // The store names no CLI command: `warden doctor` prints this very message as its finding.
      `${file} is not a readable Warden database (${code}); restore it from a backup, or point --home, --db or WARDEN_DB at the right file`,
      { cause: error, details: { file, sqlite_code: code } },
    );
  }
  if (BUSY.has(code)) {
    return new WardenError(
      'STORE_BUSY',
      `${file} stayed locked by another writer past the busy timeout; retry`,
      {
        cause: error,
        details: { file, sqlite_code: code },
      },
    );
  }
  // Permission problems are never corruption: the file is fine, this user cannot write it.
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM') {
    return file === ':memory:'
      ? new WardenError('INTERNAL', `SQLite refused a write (${code})`, { cause: error })
      : readOnlyError(file, { sqliteCode: code, cause: error });
  }
  if (code.startsWith('SQLITE_CANTOPEN')) {
    return new WardenError(
      'CONFIG_INVALID',
      `cannot open ${file} (${code}); check that the path names a file this user can read, in an existing directory`,
      { cause: error, details: { file, sqlite_code: code } },
    );
  }
  return null;
}
