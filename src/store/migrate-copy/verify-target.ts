/**
 * Verifies what `warden migrate` wrote, inside its transaction before it commits: every
 * session's hash chain recomputed from the target's own rows with core's `findChainBreak`
 * (from the retention anchor when events were pruned) and its head compared with the session
 * row — the checks `warden ledger verify` makes (kernel/ledger.ts), which the store layer cannot
 * import — and the audit chain, as `Store.verifyAudit` checks it. A copy that fails them is
 * rolled back.
 */
import type pg from 'pg';

import { type ChainBreak, findChainBreak, GENESIS_HASH } from '../../core/index.ts';
import { eventFromRow } from '../postgres/event-log.ts';
import { quoteIdent } from '../postgres/migrate.ts';
import { verifyAudit } from '../postgres/security-writes.ts';
import type { AuditVerification } from '../types.ts';

/** Events read back per query. */
const PAGE = 10_000;

export interface SessionBreak {
  readonly session_id: string;
  readonly key: string;
  readonly break:
    ChainBreak | { seq: number; reason: 'head_mismatch'; expected: string; actual: string };
}

export interface ChainCheck {
  readonly sessions: number;
  /** Events verified (those after each session's retention anchor). */
  readonly events: number;
  /** The first broken link of each broken session (empty: the ledger verifies). */
  readonly broken: readonly SessionBreak[];
}

export async function verifyTargetChains(
  client: pg.ClientBase,
  schema: string,
  onEvents?: (verified: number) => void,
): Promise<ChainCheck> {
  const q = quoteIdent(schema);
  const sessions = (
    await client.query<{
      id: string;
      key: string;
      last_seq: number;
      last_hash: string;
      pruned_seq: number;
      pruned_hash: string | null;
    }>(
      `SELECT id, key, last_seq, last_hash, pruned_seq, pruned_hash FROM ${q}.sessions ORDER BY id`,
    )
  ).rows;
  const broken: SessionBreak[] = [];
  let events = 0;
  for (const session of sessions) {
    const pruned = Number(session.pruned_seq);
    let head = { seq: pruned, hash: pruned > 0 ? (session.pruned_hash ?? '') : GENESIS_HASH };
    let failed: SessionBreak['break'] | null = null;
    for (;;) {
      const { rows } = await client.query(
        `SELECT * FROM ${q}.events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT ${PAGE}`,
        [session.id, head.seq],
      );
      if (rows.length === 0) break;
      const page = rows.map(eventFromRow);
      failed = findChainBreak(page, head);
      if (failed) break;
      events += page.length;
      onEvents?.(events);
      const last = page.at(-1)!;
      head = { seq: last.seq, hash: last.hash };
    }
    if (!failed && (head.seq !== Number(session.last_seq) || head.hash !== session.last_hash))
      failed = {
        seq: head.seq + 1,
        reason: 'head_mismatch',
        expected: `seq ${session.last_seq} ${session.last_hash}`,
        actual: `seq ${head.seq} ${head.hash}`,
      };
    if (failed) broken.push({ session_id: session.id, key: session.key, break: failed });
  }
  return { sessions: sessions.length, events, broken };
}

/**
 * The audit chain of the target, read in the copy's transaction by the store's own verifier
 * (the copy's connection, like the store's, starts in the target schema).
 */
export function verifyTargetAudit(client: pg.ClientBase): Promise<AuditVerification> {
  return verifyAudit({
    query: async <R extends pg.QueryResultRow>(text: string, values?: readonly unknown[]) => {
      const result = await client.query<R>(text, values as unknown[] | undefined);
      return { rows: result.rows, rowCount: result.rowCount ?? 0 };
    },
  });
}
