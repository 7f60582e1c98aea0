/**
 * Classifies better-sqlite3 errors as Warden errors (one table per adapter, STYLE.md):
 * busy/locked are retryable STORE_BUSY; corruption and "not a database" are STORE_CORRUPT.
 */
import { WardenError } from '../../core/index.ts';

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
      `${file} is not a readable Warden database (${code}); restore it from a backup or point WARDEN_HOME elsewhere. Run 'warden doctor' for details.`,
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
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_PERM') {
    return new WardenError(
      'CONFIG_INVALID',
      `cannot open ${file} for writing (${code}); check the path and its permissions`,
      {
        cause: error,
        details: { file, sqlite_code: code },
      },
    );
  }
  return null;
}
