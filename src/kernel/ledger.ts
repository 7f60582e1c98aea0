/**
 * `warden ledger verify`: walks every session's event log in pages, checks that `seq` is
 * contiguous from 1, that each `prev_hash` names the previous event's hash, that each hash
 * matches the event's content, and that the session's recorded head (last seq and hash) is the
 * last event — so a deleted tail is caught too. Reports the first broken link per session.
 */
import { type ChainBreak, findChainBreak, GENESIS_HASH } from '../core/index.ts';
import type { SessionRecord, Store } from '../store/index.ts';

export interface SessionVerification {
  readonly session_id: string;
  readonly key: string;
  readonly events: number;
  readonly head_seq: number;
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

export async function verifyLedger(store: Store, sessionId?: string): Promise<LedgerVerification> {
  const sessions = sessionId
    ? [await store.getSession(sessionId)].filter((s): s is SessionRecord => !!s)
    : await store.listSessions();
  const results: SessionVerification[] = [];
  for (const session of sessions) results.push(await verifySession(store, session));
  return {
    ok: results.every((r) => r.ok),
    sessions: results,
    events: results.reduce((n, r) => n + r.events, 0),
  };
}

async function verifySession(store: Store, session: SessionRecord): Promise<SessionVerification> {
  let head = { seq: 0, hash: GENESIS_HASH };
  let count = 0;
  for (;;) {
    const page = await store.readEvents({ sessionId: session.id, afterSeq: head.seq, limit: PAGE });
    if (page.length === 0) break;
    const broken = findChainBreak(page, head);
    if (broken)
      return {
        session_id: session.id,
        key: session.key,
        events: count,
        head_seq: session.last_seq,
        ok: false,
        break: broken,
      };
    count += page.length;
    const last = page.at(-1)!;
    head = { seq: last.seq, hash: last.hash };
  }
  if (head.seq !== session.last_seq || head.hash !== session.last_hash) {
    return {
      session_id: session.id,
      key: session.key,
      events: count,
      head_seq: session.last_seq,
      ok: false,
      break: {
        seq: head.seq + 1,
        reason: 'head_mismatch',
        expected: `seq ${session.last_seq} ${session.last_hash}`,
        actual: `seq ${head.seq} ${head.hash}`,
      },
    };
  }
  return {
    session_id: session.id,
    key: session.key,
    events: count,
    head_seq: session.last_seq,
    ok: true,
    break: null,
  };
}
