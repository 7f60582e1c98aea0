/**
 * Appends events to per-session hash chains inside a write transaction. A batch reads each
 * session's head once, chains its events in memory, inserts them with multi-row statements at
 * the end, and moves each head once, so N events cost about N/64 statements plus one head update
 * per session. The stored `data` text is the canonical JSON that was hashed.
 */
import type Database from 'better-sqlite3';

import { canonicalJson, type Clock, errors, hashEventWithData } from '../../core/index.ts';
import type { EventRecord, NewEvent } from '../types.ts';

interface Head {
  seq: number;
  hash: string;
  changed: boolean;
}

export interface EventBatch {
  readonly heads: Map<string, Head>;
  readonly out: EventRecord[];
  /** Row values waiting to be inserted, 11 per event. */
  readonly rows: unknown[];
}

const COLUMNS = 11;
const CHUNK = 64;
const INSERT =
  'INSERT INTO events (session_id, seq, type, ts, trace_id, process_id, task_id, attempt, data, prev_hash, hash) VALUES ';

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
    return { heads: new Map(), out: [], rows: [] };
  }

  append(batch: EventBatch, event: NewEvent): void {
    let head = batch.heads.get(event.session_id);
    if (!head) {
      const row = this.#head.get(event.session_id) as
        { last_seq: number; last_hash: string } | undefined;
      if (!row) throw errors.notFound('session', event.session_id);
      head = { seq: row.last_seq, hash: row.last_hash, changed: false };
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
    batch.rows.push(
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
    );
    head.seq = body.seq;
    head.hash = hash;
    head.changed = true;
    batch.out.push({ ...body, hash });
  }

  /** Inserts the buffered events and moves every touched session's head; once, at the end. */
  finish(batch: EventBatch): EventRecord[] {
    const rows = batch.rows;
    const width = COLUMNS * CHUNK;
    let i = 0;
    for (; i + width <= rows.length; i += width) this.#insertChunk.run(rows.slice(i, i + width));
    for (; i < rows.length; i += COLUMNS) this.#insertOne.run(rows.slice(i, i + COLUMNS));
    rows.length = 0;
    const now = this.#clock.now();
    for (const [sessionId, head] of batch.heads) {
      if (head.changed) this.#setHead.run(head.seq, head.hash, now, sessionId);
    }
    return batch.out;
  }
}

function placeholders(): string {
  return Array.from({ length: COLUMNS }, () => '?').join(',');
}
