/**
 * Chains a PostgreSQL transaction's events at its end. Every event gets its session's next seq
 * and `hash = sha256(prev_hash ‖ canonical event)` exactly as DESIGN.md §4 says (the same
 * functions as the SQLite adapter), under a row lock on each touched session head: many nodes
 * append to one session and its `seq` stays contiguous and its chain intact. The heads are locked
 * in id order, once per transaction, so two writers touching the same sessions queue instead of
 * deadlocking; `FOR NO KEY UPDATE` does not block the key-share locks foreign keys take.
 */
import { canonicalJson, type Clock, errors, hashEventWithData } from '../../core/index.ts';
import type { EventRecord, NewEvent } from '../types.ts';
import type { PgTx } from './tx.ts';

interface Head {
  seq: number;
  hash: string;
}

export async function chainEvents(
  tx: PgTx,
  pending: readonly NewEvent[],
  clock: Clock,
): Promise<EventRecord[]> {
  if (pending.length === 0) return [];
  const ids = [...new Set(pending.map((e) => e.session_id))].sort();
  const { rows } = await tx.query<{ id: string; last_seq: number; last_hash: string }>(
    'SELECT id, last_seq, last_hash FROM sessions WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE',
    [ids],
  );
  const heads = new Map<string, Head>(
    rows.map((r) => [r.id, { seq: Number(r.last_seq), hash: r.last_hash }]),
  );
  for (const id of ids) if (!heads.has(id)) throw errors.notFound('session', id);
  const now = clock.now();
  const out: EventRecord[] = [];
  const cols: unknown[][] = Array.from({ length: 11 }, () => []);
  for (const event of pending) {
    const head = heads.get(event.session_id)!;
    const body = {
      session_id: event.session_id,
      seq: head.seq + 1,
      type: event.type,
      ts: now,
      trace_id: event.trace_id,
      process_id: event.process_id ?? null,
      task_id: event.task_id ?? null,
      attempt: event.attempt ?? null,
      data: event.data ?? null,
      prev_hash: head.hash,
    };
    const dataJson = canonicalJson(body.data);
    const hash = hashEventWithData(body, dataJson);
    head.seq = body.seq;
    head.hash = hash;
    const values = [
      body.session_id,
      body.seq,
      body.type,
      body.ts,
      body.trace_id,
      body.process_id,
      body.task_id,
      body.attempt,
      dataJson,
      body.prev_hash,
      hash,
    ];
    for (let i = 0; i < values.length; i++) cols[i]!.push(values[i]);
    out.push({ ...body, hash });
  }
  await tx.query(
    `INSERT INTO events (session_id, seq, type, ts, trace_id, process_id, task_id, attempt, data, prev_hash, hash)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[],
       $8::integer[], $9::text[], $10::text[], $11::text[])`,
    cols,
  );
  const touched = [...heads.entries()].filter(([id]) => ids.includes(id));
  await tx.query(
    `UPDATE sessions s SET last_seq = h.seq, last_hash = h.hash, updated_at = $4
     FROM unnest($1::text[], $2::bigint[], $3::text[]) AS h(id, seq, hash) WHERE s.id = h.id`,
    [touched.map(([id]) => id), touched.map(([, h]) => h.seq), touched.map(([, h]) => h.hash), now],
  );
  return out;
}

/** An `events` row as an EventRecord (data is canonical JSON text). */
export function eventFromRow(r: Record<string, unknown>): EventRecord {
  return {
    session_id: r.session_id as string,
    seq: Number(r.seq),
    type: r.type as string,
    ts: Number(r.ts),
    trace_id: r.trace_id as string,
    process_id: (r.process_id as string | null) ?? null,
    task_id: (r.task_id as string | null) ?? null,
    attempt: r.attempt === null || r.attempt === undefined ? null : Number(r.attempt),
    data: JSON.parse(r.data as string) as unknown,
    prev_hash: r.prev_hash as string,
    hash: r.hash as string,
  };
}
