/**
 * `warden ledger verify`: walks every session's event log in pages, checks that `seq` is
 * contiguous from the session's retention anchor (1 when nothing was pruned), that each
 * `prev_hash` names the previous event's hash — the first kept event's names the anchor hash —,
 * that each hash matches the event's content, and that the session's recorded head (last seq and
 * hash) is the last event — so a deleted tail is caught too. Reports the first broken link per
 * session.
 *
 * Everything is read from ONE store snapshot ({@link Store.openSnapshot}): the session heads and
 * every page of events agree with each other, so events appended while the verification runs
 * (by this or any other process) are simply not seen, and never look like a broken head.
 */
import { type ChainBreak, checkParams, findChainBreak, GENESIS_HASH } from '../core/index.ts';
import type { SessionRecord, Store, StoreSnapshot } from '../store/index.ts';
import { verifyLedgerArgs } from './params.ts';

export interface SessionVerification {
  readonly session_id: string;
  readonly key: string;
  /** Events checked (those kept by retention). */
  readonly events: number;
  readonly head_seq: number;
  /** The retention anchor verification started from: events up to it were pruned (0: none). */
  readonly pruned_seq: number;
  readonly ok: boolean;
  readonly break:
    ChainBreak | { seq: number; reason: 'head_mismatch'; expected: string; actual: string } | null;
}

export interface LedgerVerification {
  readonly ok: boolean;
  readonly sessions: readonly SessionVerification[];
  readonly events: number;
}

const PAGE = 5_000;

/** Verifies every session's chain, or one session's. INVALID_PARAMS for bad arguments. */
export async function verifyLedger(store: Store, sessionId?: string): Promise<LedgerVerification> {
  checkParams('verifyLedger', verifyLedgerArgs, { store, sessionId });
  const snapshot = await store.openSnapshot();
  try {
    const sessions = sessionId
      ? [await snapshot.getSession(sessionId)].filter((s): s is SessionRecord => !!s)
      : await snapshot.listSessions();
    const results: SessionVerification[] = [];
    for (const session of sessions) results.push(await verifySession(snapshot, session));
    return {
      ok: results.every((r) => r.ok),
      sessions: results,
      events: results.reduce((n, r) => n + r.events, 0),
    };
  } finally {
    await snapshot.close();
  }
}

async function verifySession(
  snapshot: StoreSnapshot,
  session: SessionRecord,
): Promise<SessionVerification> {
  const prunedSeq = session.pruned_seq ?? 0;
  // The anchor: the hash of the last pruned event, which the first kept event must chain to.
  let head = { seq: prunedSeq, hash: prunedSeq > 0 ? (session.pruned_hash ?? '') : GENESIS_HASH };
  let count = 0;
  const result = (brk: SessionVerification['break']): SessionVerification => ({
    session_id: session.id,
    key: session.key,
    events: count,
    head_seq: session.last_seq,
    pruned_seq: prunedSeq,
    ok: brk === null,
    break: brk,
  });
  for (;;) {
    const page = await snapshot.readEvents({
      sessionId: session.id,
      afterSeq: head.seq,
      limit: PAGE,
    });
    if (page.length === 0) break;
    const broken = findChainBreak(page, head);
    if (broken) return result(broken);
    count += page.length;
    const last = page.at(-1)!;
    head = { seq: last.seq, hash: last.hash };
  }
  if (head.seq !== session.last_seq || head.hash !== session.last_hash) {
    return result({
      seq: head.seq + 1,
      reason: 'head_mismatch',
      expected: `seq ${session.last_seq} ${session.last_hash}`,
      actual: `seq ${head.seq} ${head.hash}`,
    });
  }
  return result(null);
}
