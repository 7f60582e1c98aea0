/**
 * PostgreSQL for tests: the local server (WARDEN_TEST_PG_URL, default the machine's
 * trust-auth database `test`), one fresh schema per store, dropped when the file's tests end.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { openPostgresStore, type PostgresStoreOptions } from '../../src/store/index.ts';

export const PG_URL = process.env.WARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const created: string[] = [];

/** A new schema name (not created yet: the store creates it), dropped by {@link dropSchemas}. */
export function freshSchema(prefix = 'wt'): string {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  created.push(name);
  return name;
}

/** The store URL of a fresh schema. */
export function freshUrl(prefix?: string): string {
  return `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${freshSchema(prefix)}`;
}

export function openFreshPgStore(options: Partial<PostgresStoreOptions> = {}) {
  return openPostgresStore({ url: PG_URL, schema: freshSchema(), poolSize: 4, ...options });
}

/** Runs SQL on the test database outside any store. */
export async function pgQuery<R extends pg.QueryResultRow = Record<string, unknown>>(
  text: string,
  values?: unknown[],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function dropSchemas(): Promise<void> {
  const names = created.splice(0);
  if (names.length === 0) return;
  // One transaction per schema: dropping a file's worth of schemas at once can take more locks
  // than the server's lock table holds ("out of shared memory").
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    for (const name of names) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}
