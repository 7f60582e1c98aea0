/**
 * The PostgreSQL side of `warden migrate`: one connection to the target schema, the checks that
 * it is empty, and batched multi-row inserts (one `INSERT … SELECT * FROM unnest($1::text[], …)`
 * per batch, one array parameter per column: a batch of 1,000 rows is one round trip and one
 * statement, prepared once per table).
 */
import pg from 'pg';

import { WardenError } from '../../core/index.ts';
import { clientConfig, type PgTarget, pgWardenError } from '../postgres/connection.ts';
import { quoteIdent } from '../postgres/migrate.ts';
import { POSTGRES_BOOKKEEPING } from './tables.ts';

/** What PostgreSQL says about one column of a target table. */
export interface TargetColumn {
  readonly name: string;
  /** `text`, `bigint`, `integer`, `double precision`… (information_schema's data_type). */
  readonly type: string;
  /** A `GENERATED ALWAYS AS IDENTITY` column: inserted with OVERRIDING SYSTEM VALUE. */
  readonly identity: boolean;
}

export async function connectTarget(
  target: PgTarget,
  settings: { connectTimeoutMs: number; statementTimeoutMs: number },
): Promise<pg.Client> {
  const client = new pg.Client(
    clientConfig(target, {
      max: 1,
      connectTimeoutMs: settings.connectTimeoutMs,
      statementTimeoutMs: settings.statementTimeoutMs,
      synchronousCommit: 'on',
    }),
  );
  client.on('error', () => undefined); // a dropped connection fails the pending query instead
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw pgWardenError(error, target.display);
  }
  return client;
}

/** The tables of `schema` (none when it does not exist). */
export async function tablesOf(client: pg.ClientBase, schema: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
    [schema],
  );
  return rows.map((r) => r.name);
}

/** Of `tables`, those holding at least one row (one statement). */
export async function nonEmptyTables(
  client: pg.ClientBase,
  schema: string,
  tables: readonly string[],
): Promise<string[]> {
  if (tables.length === 0) return [];
  const q = quoteIdent(schema);
  const text = tables
    .map(
      (t) =>
        `SELECT ${pg.escapeLiteral(t)} AS name WHERE EXISTS (SELECT 1 FROM ${q}.${quoteIdent(t)})`,
    )
    .join(' UNION ALL ');
  return (await client.query<{ name: string }>(text)).rows.map((r) => r.name);
}

/**
 * CONFIG_INVALID when any Warden table of the target holds rows: migrate only ever fills an
 * empty schema, so it can neither mix two installations nor overwrite one.
 */
export function notEmptyError(target: PgTarget, tables: readonly string[]): WardenError {
  return new WardenError(
    'CONFIG_INVALID',
    `schema '${target.schema}' of ${target.display} already holds Warden data (${tables.join(', ')}); migrate copies into an empty schema only: name a new one with ?schema=<name> in the --to URL, or another database. Nothing was changed.`,
    { details: { store: target.display, schema: target.schema, tables: [...tables] } },
  );
}

/**
 * INTERNAL unless the target's tables are exactly `expected` (plus its migration history): a
 * table this Warden's migrate does not fill, or one it expects and the schema lacks.
 */
export function checkTargetTables(
  target: PgTarget,
  actual: readonly string[],
  expected: readonly string[],
): void {
  const want = new Set<string>([...expected, ...POSTGRES_BOOKKEEPING]);
  const missing = [...want].filter((t) => !actual.includes(t));
  const extra = actual.filter((t) => !want.has(t));
  if (missing.length > 0 || extra.length > 0)
    throw new WardenError(
      'INTERNAL',
      `schema '${target.schema}' of ${target.display} does not have the tables this Warden's migrate copies into (missing: ${missing.join(', ') || 'none'}; not copied: ${extra.join(', ') || 'none'}); nothing was copied`,
      { details: { schema: target.schema, missing, extra } },
    );
}

export async function columnsOf(
  client: pg.ClientBase,
  schema: string,
  table: string,
): Promise<TargetColumn[]> {
  const { rows } = await client.query<{ name: string; type: string; identity: string }>(
    `SELECT column_name AS name, data_type AS type, is_identity AS identity
     FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2
     ORDER BY ordinal_position`,
    [schema, table],
  );
  return rows.map((r) => ({ name: r.name, type: r.type, identity: r.identity === 'YES' }));
}

/**
 * Accumulates rows of one table column by column and inserts them in batches. `push` returns
 * true when the batch is full (by rows, or by bytes of text for large payloads); the caller
 * then awaits `flush`.
 */
export class BatchInserter {
  readonly table: string;
  readonly #client: pg.ClientBase;
  readonly #statement: string;
  readonly #name: string;
  readonly #columns: readonly string[];
  readonly #maxRows: number;
  readonly #maxBytes: number;
  #values: unknown[][];
  #rows = 0;
  #bytes = 0;
  inserted = 0;

  constructor(
    client: pg.ClientBase,
    schema: string,
    table: string,
    columns: readonly TargetColumn[],
    limits: { maxRows: number; maxBytes: number },
  ) {
    this.table = table;
    this.#client = client;
    this.#columns = columns.map((c) => c.name);
    this.#maxRows = limits.maxRows;
    this.#maxBytes = limits.maxBytes;
    this.#values = columns.map(() => []);
    const overriding = columns.some((c) => c.identity) ? ' OVERRIDING SYSTEM VALUE' : '';
    this.#statement =
      `INSERT INTO ${quoteIdent(schema)}.${quoteIdent(table)} (${columns.map((c) => quoteIdent(c.name)).join(', ')})` +
      `${overriding} SELECT * FROM unnest(${columns.map((c, i) => `$${i + 1}::${c.type}[]`).join(', ')})`;
    // Prepared once per connection under this name (a schema per migrate: no clash).
    this.#name = `warden_copy_${table}`;
  }

  /** Adds one row (values by column name); true when the batch should be flushed now. */
  push(row: Readonly<Record<string, unknown>>): boolean {
    for (let i = 0; i < this.#columns.length; i++) {
      const value = row[this.#columns[i]!] ?? null;
      if (typeof value === 'string') this.#bytes += value.length;
      this.#values[i]!.push(value);
    }
    this.#rows += 1;
    return this.#rows >= this.#maxRows || this.#bytes >= this.#maxBytes;
  }

  async flush(): Promise<void> {
    if (this.#rows === 0) return;
    const values = this.#values;
    const rows = this.#rows;
    this.#values = this.#columns.map(() => []);
    this.#rows = 0;
    this.#bytes = 0;
    await this.#client.query({ name: this.#name, text: this.#statement, values });
    this.inserted += rows;
  }
}
