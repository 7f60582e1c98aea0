/**
 * The per-session event hash chain (DESIGN.md §4):
 * `hash = sha256(prev_hash ‖ canonical_json(event without hash))`, genesis `prev_hash` is 64
 * zeros, and `seq` is contiguous from 1. The audit log (one chain for the whole store) is
 * chained by the same rule. Hashing is pure computation, so it lives in core.
 */
import { hash as digest } from 'node:crypto';

import { canonicalJson } from './json.ts';
import type { AuditRecord } from './policy/types.ts';

export const GENESIS_HASH = '0'.repeat(64);

/** The hashed body of an event: every field except `hash`. */
export interface ChainedEventBody {
  readonly session_id: string;
  readonly seq: number;
  readonly type: string;
  readonly ts: number;
  readonly trace_id: string;
  readonly process_id: string | null;
  readonly task_id: string | null;
  readonly attempt: number | null;
  readonly data: unknown;
  readonly prev_hash: string;
}

export function hashEvent(body: ChainedEventBody): string {
  return hashEventWithData(body, canonicalJson(body.data));
}

/**
 * Same as {@link hashEvent} when `dataJson` is `canonical_json(body.data)`, without serialising
 * the data twice: the store keeps `dataJson` as the stored text. The body's own keys are
 * written in their canonical (sorted) order by hand; this is the hot path of every commit.
 */
export function hashEventWithData(body: ChainedEventBody, dataJson: string): string {
  const canonical =
    `{"attempt":${body.attempt === null ? 'null' : String(body.attempt)}` +
    `,"data":${dataJson}` +
    `,"prev_hash":${JSON.stringify(body.prev_hash)}` +
    `,"process_id":${body.process_id === null ? 'null' : JSON.stringify(body.process_id)}` +
    `,"seq":${String(body.seq)}` +
    `,"session_id":${JSON.stringify(body.session_id)}` +
    `,"task_id":${body.task_id === null ? 'null' : JSON.stringify(body.task_id)}` +
    `,"trace_id":${JSON.stringify(body.trace_id)}` +
    `,"ts":${String(body.ts)}` +
    `,"type":${JSON.stringify(body.type)}}`;
  // One-shot digest: about half the cost of createHash().update().digest() per event.
  return digest('sha256', body.prev_hash + canonical, 'hex');
}

export function sha256Hex(text: string): string {
  return digest('sha256', text, 'hex');
}

export interface ChainBreak {
  readonly seq: number;
  readonly reason: 'seq_gap' | 'prev_hash_mismatch' | 'hash_mismatch';
  readonly expected: string;
  readonly actual: string;
}

/**
 * Walks a session's events in order and returns the first broken link, or null. `from`
 * lets a caller continue a verification from a known-good head.
 */
export function findChainBreak(
  events: Iterable<ChainedEventBody & { readonly hash: string }>,
  from: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH },
): ChainBreak | null {
  // hashEvent reads the body's named fields only, so the stored `hash` beside them is ignored.
  return firstBreak(events, from, hashEvent);
}

/** The hashed body of an audit record: every field except `hash`. */
export type ChainedAuditBody = Omit<AuditRecord, 'hash'>;

/**
 * `sha256(prev_hash ‖ canonical_json(record without hash))`. The body must hold exactly the
 * record's fields: anything extra would be hashed but not stored.
 */
export function hashAuditRecord(body: ChainedAuditBody): string {
  return digest('sha256', body.prev_hash + canonicalJson(body), 'hex');
}

/** {@link findChainBreak} for the audit log's single chain. */
export function findAuditBreak(
  records: Iterable<AuditRecord>,
  from: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH },
): ChainBreak | null {
  return firstBreak(records, from, ({ hash: _hash, ...body }) => hashAuditRecord(body));
}

function firstBreak<
  T extends { readonly seq: number; readonly prev_hash: string; readonly hash: string },
>(
  records: Iterable<T>,
  from: { seq: number; hash: string },
  hashOf: (record: T) => string,
): ChainBreak | null {
  let expectedSeq = from.seq + 1;
  let prevHash = from.hash;
  for (const record of records) {
    if (record.seq !== expectedSeq) {
      return {
        seq: expectedSeq,
        reason: 'seq_gap',
        expected: String(expectedSeq),
        actual: String(record.seq),
      };
    }
    if (record.prev_hash !== prevHash) {
      return {
        seq: record.seq,
        reason: 'prev_hash_mismatch',
        expected: prevHash,
        actual: record.prev_hash,
      };
    }
    const recomputed = hashOf(record);
    if (recomputed !== record.hash) {
      return {
        seq: record.seq,
        reason: 'hash_mismatch',
        expected: recomputed,
        actual: record.hash,
      };
    }
    prevHash = record.hash;
    expectedSeq += 1;
  }
  return null;
}
