/**
 * Workflow definitions are stored once per content hash (`workflows`) and shared by every run of
 * that workflow; retention and session deletion remove a definition once no run uses it.
 *
 * On PostgreSQL that check races with a run being inserted on another node: its
 * `INSERT INTO workflows … ON CONFLICT DO NOTHING` finds the row and locks nothing, and the
 * deleter's `NOT EXISTS (run with this hash)` cannot see that node's uncommitted run — both
 * commit, and the new run's definition is gone. So the two sides meet on a transaction-scoped
 * advisory lock per hash: a writer that inserts a run MUST first call {@link pinWorkflow}
 * (shared: writers never wait for each other), and {@link deleteUnusedWorkflows} takes it
 * exclusively, then checks for runs in a NEW statement (READ COMMITTED: it sees every run whose
 * writer held the lock before). A writer that comes after waits until the deletion commits, and
 * its `INSERT … ON CONFLICT DO NOTHING` then inserts the definition again.
 */
import type { PgTx } from './tx.ts';

type Queryable = Pick<PgTx, 'query'>;

/** The advisory lock key of a workflow hash ($1), scoped to the store's schema. */
const LOCK_KEY = `hashtextextended(current_schema() || ':warden:workflow:' || $1, 0)`;

/**
 * Pins a workflow definition for the caller's transaction: call it before inserting a run (and
 * its `workflows` row), so no concurrent deletion removes the definition the run needs.
 */
export async function pinWorkflow(tx: Queryable, hash: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock_shared(${LOCK_KEY})`, [hash]);
}

/** Deletes those of these definitions no run uses any more; → how many went. */
export async function deleteUnusedWorkflows(
  tx: Queryable,
  hashes: Iterable<string>,
): Promise<number> {
  // Sorted, and locked in array order: two deleters never wait for each other in a cycle.
  const sorted = [...new Set(hashes)].sort();
  if (sorted.length === 0) return 0;
  await tx.query(
    `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':warden:workflow:' || h, 0))
     FROM unnest($1::text[]) WITH ORDINALITY AS x(h, i) ORDER BY i`,
    [sorted],
  );
  const { rowCount } = await tx.query(
    `DELETE FROM workflows w WHERE w.hash = ANY($1::text[])
       AND NOT EXISTS (SELECT 1 FROM processes p WHERE p.workflow_hash = w.hash)`,
    [sorted],
  );
  return rowCount;
}
