/**
 * Forward-only, checksummed migrations. Safe against concurrent migrators: the check and the
 * apply run in one BEGIN IMMEDIATE transaction, so a second process waits and then sees the
 * work done. Refuses a database from a newer Warden (STORE_TOO_NEW), a non-Warden SQLite file
 * (STORE_CORRUPT), and an applied migration whose checksum differs (MIGRATION_MISMATCH).
 */
import type Database from 'better-sqlite3';

import { sha256Hex, WardenError } from '../../core/index.ts';
import type { Migration } from '../migrations/sqlite.ts';

/** `PRAGMA application_id` of a Warden database ("WARD"). */
export const WARDEN_APPLICATION_ID = 0x57415244;

export function checksum(migration: Migration): string {
  return sha256Hex(migration.sql.trim());
}

export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.at(-1)?.version ?? 0;
}

export function migrate(
  db: Database.Database,
  migrations: readonly Migration[],
  file: string,
  now: number,
): number {
  const latest = latestVersion(migrations);
  const run = db.transaction(() => {
    const version = checkCompatible(db, migrations, file);
    if (version === latest) return version;
    if (version === 0) {
      db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`);
    }
    const insert = db.prepare(
      'INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)',
    );
    for (const migration of migrations) {
      if (migration.version <= version) continue;
      db.exec(migration.sql);
      insert.run(migration.version, migration.name, checksum(migration), now);
    }
    db.pragma(`application_id = ${WARDEN_APPLICATION_ID}`);
    db.pragma(`user_version = ${latest}`);
    return latest;
  });
  return run.immediate();
}

/**
 * Read-only checks. The store runs them before anything writes to the file (even the switch to
 * WAL), so a refused database is left byte for byte as it was; `migrate` repeats them inside its
 * transaction. Returns the schema version.
 */
export function checkCompatible(
  db: Database.Database,
  migrations: readonly Migration[],
  file: string,
): number {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = (
    db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as {
      n: number;
    }
  ).n;
  refuseForeignOrNewer(file, { appId, version, hasTables: tables > 0 }, latestVersion(migrations));
  if (version > 0) verifyApplied(db, migrations, version, file);
  return version;
}

/**
 * STORE_CORRUPT for another application's SQLite database, STORE_TOO_NEW for a newer Warden's;
 * from the database's `application_id`, `user_version` and whether it has tables.
 */
export function refuseForeignOrNewer(
  file: string,
  header: { appId: number; version: number; hasTables: boolean },
  latest: number,
): void {
  const { appId, version } = header;
  if (appId !== WARDEN_APPLICATION_ID && (header.hasTables || version !== 0)) {
    throw new WardenError(
      'STORE_CORRUPT',
      `${file} is an SQLite database but not a Warden database (application_id ${appId}); point WARDEN_HOME or --db at a Warden database`,
      { details: { file, application_id: appId } },
    );
  }
  if (version > latest) {
    throw new WardenError(
      'STORE_TOO_NEW',
      `${file} has schema version ${version}, but this Warden knows versions up to ${latest}; upgrade Warden to open it (nothing was changed)`,
      { details: { file, schema_version: version, supported: latest } },
    );
  }
}

function verifyApplied(
  db: Database.Database,
  migrations: readonly Migration[],
  version: number,
  file: string,
): void {
  const rows = db
    .prepare('SELECT version, name, checksum FROM schema_migrations ORDER BY version')
    .all() as Array<{
    version: number;
    name: string;
    checksum: string;
  }>;
  for (const migration of migrations) {
    if (migration.version > version) break;
    const row = rows.find((r) => r.version === migration.version);
    if (!row || row.checksum !== checksum(migration)) {
      throw new WardenError(
        'MIGRATION_MISMATCH',
        `${file}: migration ${migration.version} (${migration.name}) ${row ? 'was applied with different SQL' : 'is recorded as applied but missing'}; this database was changed outside Warden or by a different build`,
        { details: { file, version: migration.version } },
      );
    }
  }
}
