/**
 * Appends events to per-session hash chains inside a write transaction, stored in segments.
 *
 * Every event is chained exactly as DESIGN.md §4 says (its own seq, `hash = sha256(prev_hash ‖
 * canonical_json(event))`), but the events one transaction appends to one session — and one
 * process — are stored together in one `event_segments` row: a JSON array of
 * `[seq, type, ts, trace_id, task_id, attempt, data, hash]`, with the prev_hash of its first event and
 * the hash of its last. A batch of 1,000 task transitions is one row and one index entry instead
 * of 1,000, which is most of what the event log used to cost the queue. Readers expand segments
 * back into events ({@link expandSegment}); a segment is never merged with
 * another; retention may cut its oldest events off.
 */
import type Database from 'better-sqlite3';

import { canonicalJson, type Clock, errors, hashEventWithData } from '../../core/index.ts';
import type { Row } from '../rows.ts';
import type { EventRecord, NewEvent } from '../types.ts';

interface Head {
  seq: number;
  hash: string;
  changed: boolean;
  /** The segment this session's next event joins while it has the same process. */
  open: Segment | null;
}

interface Segment {
  readonly session_id: string;
  readonly process_id: string | null;
  readonly first_seq: number;
  readonly prev_hash: string;
  last_seq: number;
  /** Of its first event: retention finds old events by it. */
  readonly ts: number;
  hash: string;
  body: string;
}

export interface EventBatch {
  readonly heads: Map<string, Head>;
  readonly out: EventRecord[];
  readonly segments: Segment[];
}

/** Events per segment at most, so one read never expands an unbounded row. */
const MAX_SEGMENT_EVENTS = 512;
const COLUMNS = 8;
const CHUNK = 32;
const INSERT =
  'INSERT INTO event_segments (session_id, last_seq, first_seq, process_id, ts, body, prev_hash, hash) VALUES ';

export class EventLog {
  readonly #head: Database.Statement;
  readonly #insertOne: Database.Statement;
  readonly #insertChunk: Database.Statement;
  readonly #setHead: Database.Statement;
  readonly #clock: Clock;

  constructor(
    db: Database.Database,
    statements: { sessionHead: Database.Statement; sessionSetHead: Database.Statement },
    clock: Clock,
  ) {
    this.#head = statements.sessionHead;
    this.#setHead = statements.sessionSetHead;
    this.#insertOne = db.prepare(`${INSERT}(${placeholders()})`);
    this.#insertChunk = db.prepare(
      INSERT + Array.from({ length: CHUNK }, () => `(${placeholders()})`).join(','),
    );
    this.#clock = clock;
  }

  batch(): EventBatch {
    return { heads: new Map(), out: [], segments: [] };
  }

  append(batch: EventBatch, event: NewEvent): void {
    let head = batch.heads.get(event.session_id);
    if (!head) {
      const row = this.#head.get(event.session_id) as
        { last_seq: number; last_hash: string } | undefined;
      if (!row) throw errors.notFound('session', event.session_id);
      head = { seq: row.last_seq, hash: row.last_hash, changed: false, open: null };
      batch.heads.set(event.session_id, head);
    }
    const body = {
      session_id: event.session_id,
      seq: head.seq + 1,
      type: event.type,
      ts: this.#clock.now(),
      trace_id: event.trace_id,
      process_id: event.process_id ?? null,
      task_id: event.task_id ?? null,
      attempt: event.attempt ?? null,
      data: event.data ?? null,
      prev_hash: head.hash,
    };
    const dataJson = canonicalJson(body.data);
    const hash = hashEventWithData(body, dataJson);
    const item =
      `[${body.seq},${JSON.stringify(body.type)},${body.ts},${JSON.stringify(body.trace_id)},` +
      `${body.task_id === null ? 'null' : JSON.stringify(body.task_id)},` +
      `${body.attempt === null ? 'null' : body.attempt},${dataJson},"${hash}"]`;
    let segment = head.open;
    if (
      segment &&
      segment.process_id === body.process_id &&
      segment.last_seq - segment.first_seq + 1 < MAX_SEGMENT_EVENTS
    ) {
      segment.body += `,${item}`;
    } else {
      segment = {
        session_id: body.session_id,
        process_id: body.process_id,
        first_seq: body.seq,
        prev_hash: body.prev_hash,
        last_seq: body.seq,
        ts: body.ts,
        hash,
        body: `[${item}`,
      };
      head.open = segment;
      batch.segments.push(segment);
    }
    segment.last_seq = body.seq;
    segment.hash = hash;
    head.seq = body.seq;
    head.hash = hash;
    head.changed = true;
    batch.out.push({ ...body, hash });
  }

  /** Inserts the batch's segments and moves every touched session's head; once, at the end. */
  finish(batch: EventBatch): EventRecord[] {
    const segments = batch.segments;
    let i = 0;
    if (segments.length >= CHUNK) {
      const values: unknown[] = [];
      for (; i + CHUNK <= segments.length; i += CHUNK) {
        values.length = 0;
        for (let j = i; j < i + CHUNK; j++) pushValues(values, segments[j]!);
        this.#insertChunk.run(values);
      }
    }
    for (; i < segments.length; i++) this.#insertOne.run(pushValues([], segments[i]!));
    segments.length = 0;
    const now = this.#clock.now();
    for (const [sessionId, head] of batch.heads) {
      head.open = null;
      if (head.changed) this.#setHead.run(head.seq, head.hash, now, sessionId);
    }
    return batch.out;
  }
}

function pushValues(values: unknown[], s: Segment): unknown[] {
  values.push(
    s.session_id,
    s.last_seq,
    s.first_seq,
    s.process_id,
    s.ts,
    `${s.body}]`,
    s.prev_hash,
    s.hash,
  );
  return values;
}

function placeholders(): string {
  return Array.from({ length: COLUMNS }, () => '?').join(',');
}

type Item = [number, string, number, string, string | null, number | null, unknown, string];

/**
 * The events of one `event_segments` row, in stored order, after `afterSeq`. Each event's prev_hash
 * is the hash stored for the one before it (the segment's prev_hash for the first), so a
 * verifier that recomputes every hash finds a changed event at its own seq.
 */
export function expandSegment(row: Row, afterSeq = 0, out: EventRecord[] = []): EventRecord[] {
  const items = JSON.parse(row.body as string) as Item[];
  let prev = row.prev_hash as string;
  for (const [seq, type, ts, trace_id, task_id, attempt, data, hash] of items) {
    // Each event carries its seq, so an event cut out of a segment shows as a gap.
    if (seq > afterSeq) {
      out.push({
        session_id: row.session_id as string,
        seq,
        type,
        ts,
        trace_id,
        process_id: (row.process_id as string | null) ?? null,
        task_id,
        attempt,
        data,
        prev_hash: prev,
        hash,
      });
    }
    prev = hash;
  }
  return out;
}
