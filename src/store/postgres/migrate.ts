/**
 * Forward-only, checksummed migrations of a PostgreSQL schema, safe with many nodes starting at
 * once: the check and the apply run in one transaction holding a transaction-scoped advisory lock
 * on the schema, so a second node waits and then finds the work done. Refuses a schema from a
 * newer Warden (STORE_TOO_NEW), a schema holding other tables but no Warden history
 * (STORE_CORRUPT) and an applied migration whose checksum differs (MIGRATION_MISMATCH) — the
 * same rules as the SQLite runner (sqlite/migrate.ts).
 */
import type { ClientBase } from 'pg';

import { WardenError } from '../../core/index.ts';
import type { Migration } from '../migrations/sqlite.ts';
import { checksum, latestVersion } from '../sqlite/migrate.ts';

const HISTORY = 'warden_migrations';

/** Quotes an identifier for SQL (schema names come from configuration). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Creates the schema when missing and applies every pending migration; returns the schema
 * version. `where` names the database in messages (the URL without its password).
 */
export async function migratePostgres(
  client: ClientBase,
  schema: string,
  migrations: readonly Migration[],
  where: string,
  now: number,
): Promise<number> {
  const latest = latestVersion(migrations);
  await client.query('BEGIN');
  try {
    // One lock per schema: nodes sharing a database but not a schema do not wait on each other.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`warden:migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
    const version = await appliedVersion(client, schema, migrations, where);
    if (version === 0) {
      await client.query(`CREATE TABLE IF NOT EXISTS ${HISTORY} (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at bigint NOT NULL)`);
    }
    for (const migration of migrations) {
      if (migration.version <= version) continue;
      await client.query(migration.sql);
      await client.query(
        `INSERT INTO ${HISTORY} (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)`,
        [migration.version, migration.name, checksum(migration), now],
      );
    }
    await client.query('COMMIT');
    return latest;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** The schema's applied version after checking it is Warden's and unaltered (0 when empty). */
async function appliedVersion(
  client: ClientBase,
  schema: string,
  migrations: readonly Migration[],
  where: string,
): Promise<number> {
  const tables = await client.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1`,
    [schema],
  );
  const names = new Set(tables.rows.map((r) => r.name));
  if (!names.has(HISTORY)) {
    if (names.size > 0) {
      throw new WardenError(
        'STORE_CORRUPT',
        `schema '${schema}' of ${where} holds tables but is not a Warden schema; choose another schema with ?schema=<name> in the store URL`,
        { details: { schema, tables: [...names].slice(0, 20) } },
      );
    }
    return 0;
  }
  const rows = (
    await client.query<{ version: number; name: string; checksum: string }>(
      `SELECT version, name, checksum FROM ${HISTORY} ORDER BY version`,
    )
  ).rows;
  const version = rows.at(-1)?.version ?? 0;
  const latest = latestVersion(migrations);
  if (version > latest) {
    throw new WardenError(
      'STORE_TOO_NEW',
      `schema '${schema}' of ${where} has schema version ${version}, but this Warden knows versions up to ${latest}; upgrade Warden to use it (nothing was changed)`,
      { details: { schema, schema_version: version, supported: latest } },
    );
  }
  for (const migration of migrations) {
    if (migration.version > version) break;
    const row = rows.find((r) => r.version === migration.version);
    if (!row || row.checksum !== checksum(migration)) {
      throw new WardenError(
        'MIGRATION_MISMATCH',
        `schema '${schema}' of ${where}: migration ${migration.version} (${migration.name}) ${row ? 'was applied with different SQL' : 'is recorded as applied but missing'}; it was changed outside Warden or by a different build`,
        { details: { schema, version: migration.version } },
      );
    }
  }
  return version;
}
