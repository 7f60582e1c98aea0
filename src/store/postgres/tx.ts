/**
 * One PostgreSQL write transaction as the adapter's write paths see it: statements run on the
 * transaction's connection, events and audit records are collected and chained at the end
 * (event-log.ts, audit-log.ts), and the commit tells every node through NOTIFY.
 */
import type { PoolClient, QueryResultRow } from 'pg';

import type { PreparedAudit } from '../security-rules.ts';
import type { NewEvent } from '../types.ts';

export type PgRow = Record<string, unknown>;

export interface PgTx {
  /** Runs one statement on the transaction's connection ($1… parameters). */
  query<R extends QueryResultRow = PgRow>(
    text: string,
    values?: readonly unknown[],
  ): Promise<{ rows: R[]; rowCount: number }>;
  /**
   * Appends an event to its session's log. Its seq and hash are assigned when the transaction
   * finishes, in append order, under a lock on every touched session head (taken in id order, so
   * writers touching the same sessions never deadlock on them); an event for a session that does
   * not exist aborts the transaction with NOT_FOUND.
   */
  append(event: NewEvent): void;
  /**
   * Appends checked audit records to the audit chain. Their seq and hash are assigned when the
   * transaction finishes (after its events), in append order, under a lock on the audit head:
   * the lock is held only from there to COMMIT.
   */
  appendAudit(records: readonly PreparedAudit[]): void;
}

export class PgTransaction implements PgTx {
  readonly client: PoolClient;
  readonly pending: NewEvent[] = [];
  readonly audits: PreparedAudit[] = [];

  constructor(client: PoolClient) {
    this.client = client;
  }

  async query<R extends QueryResultRow = PgRow>(
    text: string,
    values?: readonly unknown[],
  ): Promise<{ rows: R[]; rowCount: number }> {
    const result = await this.client.query<R>(text, values as unknown[] | undefined);
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  }

  append(event: NewEvent): void {
    this.pending.push(event);
  }

  appendAudit(records: readonly PreparedAudit[]): void {
    this.audits.push(...records);
  }
}
