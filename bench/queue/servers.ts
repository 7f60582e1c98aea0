/**
 * The Redis and PostgreSQL servers the client–server peers use: their durability settings as
 * the servers report them (so the report never repeats a hard-coded claim), the databases the
 * peers need, and a CHECKPOINT before each PostgreSQL-backed run (so one run's dirty pages are
 * not flushed during the next one's clock).
 */
import pg from 'pg';

/** The database used for administrative statements (it exists on the benchmark's server). */
export const ADMIN_DB = 'test';

export interface PostgresSettings {
  readonly version: string;
  readonly host: string;
  readonly fsync: string;
  readonly synchronous_commit: string;
  readonly full_page_writes: string;
  readonly wal_sync_method: string;
  readonly autovacuum: string;
}

export interface RedisSettings {
  readonly version: string;
  readonly host: string;
  readonly appendonly: string;
  readonly appendfsync: string;
  readonly save: string;
}

export interface ServerSettings {
  readonly postgres?: PostgresSettings;
  readonly postgresError?: string;
  readonly redis?: RedisSettings;
  readonly redisError?: string;
}

export async function readRedisSettings(redisUrl: string): Promise<RedisSettings> {
  const { Redis } = await import('ioredis');
  const url = new URL(redisUrl);
  const redis = new Redis({
    host: url.hostname,
    port: Number(url.port || 6379),
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const info = await redis.info('server');
    const get = async (key: string) => ((await redis.config('GET', key)) as string[])[1] ?? '?';
    return {
      version: /redis_version:(\S+)/.exec(info)?.[1] ?? '?',
      host: url.host,
      appendonly: await get('appendonly'),
      appendfsync: await get('appendfsync'),
      save: await get('save'),
    };
  } finally {
    redis.disconnect();
  }
}

export async function withPg<T>(
  pgBase: string,
  database: string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: `${pgBase}/${database}` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export function readPostgresSettings(pgBase: string): Promise<PostgresSettings> {
  return withPg(pgBase, ADMIN_DB, async (client) => {
    const show = async (name: string) =>
      String(Object.values((await client.query(`show ${name}`)).rows[0] as object)[0]);
    return {
      version: await show('server_version'),
      host: new URL(pgBase).host,
      fsync: await show('fsync'),
      synchronous_commit: await show('synchronous_commit'),
      full_page_writes: await show('full_page_writes'),
      wal_sync_method: await show('wal_sync_method'),
      autovacuum: await show('autovacuum'),
    };
  });
}

export async function readServerSettings(
  redisUrl: string,
  pgBase: string,
): Promise<ServerSettings> {
  const out: {
    -readonly [K in keyof ServerSettings]: ServerSettings[K];
  } = {};
  try {
    out.redis = await readRedisSettings(redisUrl);
  } catch (error) {
    out.redisError = (error as Error).message || String(error);
  }
  try {
    out.postgres = await readPostgresSettings(pgBase);
  } catch (error) {
    out.postgresError = (error as Error).message || String(error);
  }
  return out;
}

/** Creates the peers' databases when they are missing. */
export function ensureDatabases(pgBase: string, databases: readonly string[]): Promise<void> {
  return withPg(pgBase, ADMIN_DB, async (client) => {
    for (const db of databases) {
      const exists = await client.query('select 1 from pg_database where datname = $1', [db]);
      if (exists.rowCount === 0) await client.query(`create database ${db}`);
    }
  });
}

/** Forces a checkpoint (needs superuser or pg_checkpoint); returns how long it took, ms. */
export function checkpoint(pgBase: string): Promise<number> {
  return withPg(pgBase, ADMIN_DB, async (client) => {
    const t0 = performance.now();
    await client.query('checkpoint');
    return performance.now() - t0;
  });
}

export function describePostgres(s: PostgresSettings): string {
  return `PostgreSQL ${s.version} at ${s.host} (fsync ${s.fsync}, synchronous_commit ${s.synchronous_commit}, full_page_writes ${s.full_page_writes}, wal_sync_method ${s.wal_sync_method}, autovacuum ${s.autovacuum})`;
}

export function describeRedis(s: RedisSettings): string {
  return `Redis ${s.version} at ${s.host} (appendonly ${s.appendonly}, appendfsync ${s.appendfsync}, save "${s.save}")`;
}
