/**
 * Chains a PostgreSQL transaction's audit records at its end (after its events): the audit log
 * is one chain for the whole schema, so every appender on every node locks its single head row
 * (`audit_head`, FOR UPDATE) and the next one waits for that transaction's COMMIT, then reads
 * the head it left: `seq` stays contiguous and the chain unforked. Taking the lock last keeps it
 * for the shortest time; it is always taken after the session heads (event-log.ts), so the two
 * never deadlock. The head row is created by the first append (a migrated schema stays empty,
 * as `warden migrate` requires).
 */
import { GENESIS_HASH } from '../../core/index.ts';
import { type AuditHead, chainAudit, type PreparedAudit } from '../security-rules.ts';
import type { PgTx } from './tx.ts';

const LOCK_HEAD = 'SELECT last_seq, last_hash FROM audit_head WHERE id = 1 FOR UPDATE';

export async function chainAuditRecords(
  tx: PgTx,
  pending: readonly PreparedAudit[],
): Promise<void> {
  if (pending.length === 0) return;
  const { rows, head } = chainAudit(await lockHead(tx), pending);
  const cols: unknown[][] = Array.from({ length: 13 }, () => []);
  for (const { record: r, reasons, context } of rows) {
    const values = [
      r.seq,
      r.ts,
      r.trace_id,
      r.principal,
      r.action,
      r.resource,
      r.decision,
      r.decided,
      reasons,
      r.policy_version,
      context,
      r.prev_hash,
      r.hash,
    ];
    for (let i = 0; i < values.length; i++) cols[i]!.push(values[i]);
  }
  await tx.query(
    `WITH appended AS (
       INSERT INTO audit (seq, ts, trace_id, principal, action, resource, decision, decided, reasons,
         policy_version, context, prev_hash, hash)
       SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]))
     UPDATE audit_head SET last_seq = $14, last_hash = $15 WHERE id = 1`,
    [...cols, head.seq, head.hash],
  );
}

async function lockHead(tx: PgTx): Promise<AuditHead> {
  let row = (await tx.query<{ last_seq: number; last_hash: string }>(LOCK_HEAD)).rows[0];
  if (!row) {
    // Two first appenders: the second insert waits for the first and then inserts nothing.
    await tx.query(
      'INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, $1) ON CONFLICT (id) DO NOTHING',
      [GENESIS_HASH],
    );
    row = (await tx.query<{ last_seq: number; last_hash: string }>(LOCK_HEAD)).rows[0]!;
  }
  return { seq: Number(row.last_seq), hash: row.last_hash };
}
