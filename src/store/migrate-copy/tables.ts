/**
 * Where each PostgreSQL table's rows come from in a Warden SQLite database (schema version 6).
 * Most tables have the same shape on both sides; three differ (see the PostgreSQL migrations):
 *
 * - `tasks` is one row in PostgreSQL and two in SQLite (`task_data` + `task_state`, joined on
 *   their integer key `n`, which is copied too: it is the claim tie-break and lease-token
 *   suffix, and the identity sequence continues after the largest).
 * - `events` is one row per event in PostgreSQL; SQLite stores the events one transaction
 *   appended as a JSON array in an `event_segments` row (expanded by the copy, copy.ts).
 * - `processes` is SQLite's `process_rows` (the definitions live in `workflows` on both sides).
 *
 * Column names and types are not listed here: the copy reads the target's columns from
 * `information_schema` and refuses (INTERNAL) when a source query and its target table do not
 * have the same columns, so a migration that adds a column on one side only cannot be copied
 * into a table silently missing it.
 */

export interface TableSource {
  /** The PostgreSQL table. */
  readonly table: string;
  /**
   * The SQLite query yielding its rows, columns named as the target's, in primary-key order
   * (`null` for `events`, which the copy expands from `event_segments` itself).
   */
  readonly select: string | null;
  /** The SQLite query counting the same rows, in the same read transaction. */
  readonly count: string;
  /** The SQLite tables it reads (every SQLite table must be read by some source). */
  readonly reads: readonly string[];
}

/** In insertion order: a table comes after the ones its foreign keys name (sessions first). */
export const TABLE_SOURCES: readonly TableSource[] = [
  same('sessions', 'id'),
  same('workflows', 'hash'),
  {
    table: 'processes',
    select: 'SELECT * FROM process_rows ORDER BY pid',
    count: 'SELECT count(*) AS n FROM process_rows',
    reads: ['process_rows'],
  },
  {
    table: 'tasks',
    select: `SELECT d.n AS n, d.id AS id, s.kind AS kind, d.name AS name, s.lane AS lane,
  d.session_id AS session_id, d.process_id AS process_id, d.payload AS payload, s.state AS state,
  d.priority AS priority, s.sort_key AS sort_key, s.available_at AS available_at,
  s.attempts AS attempts, d.max_attempts AS max_attempts, s.lease_owner AS lease_owner,
  s.lease_token AS lease_token, s.lease_expires_at AS lease_expires_at, s.claimed_at AS claimed_at,
  d.idempotency_key AS idempotency_key, d.last_error AS last_error, d.result AS result,
  d.trace_id AS trace_id, d.options AS options, d.created_at AS created_at,
  s.updated_at AS updated_at
FROM task_data d JOIN task_state s ON s.n = d.n ORDER BY d.n`,
    // Both halves are counted: a row without its other half would be lost by the join.
    count: `SELECT (SELECT count(*) FROM task_data) AS n, (SELECT count(*) FROM task_state) AS m`,
    reads: ['task_data', 'task_state'],
  },
  same('attempts', 'task_id, attempt'),
  same('interrupts', 'id'),
  {
    table: 'events',
    select: null,
    // Each segment holds the events first_seq..last_seq (retention trims a segment's head by
    // moving first_seq): the count does not depend on expanding the bodies.
    count: 'SELECT coalesce(sum(last_seq - first_seq + 1), 0) AS n FROM event_segments',
    reads: ['event_segments'],
  },
  same('effects', 'idempotency_key'),
  same('fair_clock', 'lane, session_id, rank'),
  same('schedules', 'id'),
  same('lanes', 'name'),
  same('rate_windows', 'key, window_ms, bucket'),
  same('services', 'name'),
  same('tokens', 'id'),
  same('policy_versions', 'id'),
  same('grants', 'id'),
  // The audit chain as stored (seq, prev_hash, hash) with its head; verified on the target.
  same('audit', 'seq'),
  same('audit_head', 'id'),
  same('quarantine', 'id'),
  same('kv', 'namespace, key'),
];

/** SQLite's segments of the event log, in each session's order. */
export const SEGMENTS_SELECT = 'SELECT * FROM event_segments ORDER BY session_id, last_seq';

/** Tables of either side that hold no Warden data to copy (each side's migration history). */
export const SQLITE_BOOKKEEPING = ['schema_migrations'] as const;
export const POSTGRES_BOOKKEEPING = ['warden_migrations'] as const;

function same(table: string, key: string): TableSource {
  return {
    table,
    select: `SELECT * FROM ${table} ORDER BY ${key}`,
    count: `SELECT count(*) AS n FROM ${table}`,
    reads: [table],
  };
}
