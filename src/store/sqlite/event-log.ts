/**
 * Appends events to per-session hash chains inside a write transaction. A batch reads each
 * session's head once, chains its events in memory, inserts them, and moves the head once at
 * the end, so a batch of N events costs N inserts plus one head update per session.
 */
import type Database from 'better-sqlite3';

import { type Clock, errors, hashEvent } from '../../core/index.ts';
import type { EventRecord, NewEvent } from '../types.ts';

interface Head {
  seq: number;
  hash: string;
  changed: boolean;
}

export interface EventBatch {
  readonly heads: Map<string, Head>;
  readonly out: EventRecord[];
}

export class EventLog {
  readonly #head: Database.Statement;
  readonly #insert: Database.Statement;
  readonly #setHead: Database.Statement;
  readonly #clock: Clock;

  constructor(
    statements: {
      sessionHead: Database.Statement;
      eventInsert: Database.Statement;
      sessionSetHead: Database.Statement;
    },
    clock: Clock,
  ) {
    this.#head = statements.sessionHead;
    this.#insert = statements.eventInsert;
    this.#setHead = statements.sessionSetHead;
    this.#clock = clock;
  }

  batch(): EventBatch {
    return { heads: new Map(), out: [] };
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
    const hash = hashEvent(body);
    this.#insert.run(
      body.session_id,
      body.seq,
      body.type,
      body.ts,
      body.trace_id,
      body.process_id,
      body.task_id,
      body.attempt,
      JSON.stringify(body.data),
      body.prev_hash,
      hash,
    );
    head.seq = body.seq;
    head.hash = hash;
    head.changed = true;
    batch.out.push({ ...body, hash });
  }

  /** Moves every touched session's head; call once, at the end of the transaction. */
  finish(batch: EventBatch): EventRecord[] {
    const now = this.#clock.now();
    for (const [sessionId, head] of batch.heads) {
      if (head.changed) this.#setHead.run(head.seq, head.hash, now, sessionId);
    }
    return batch.out;
  }
}
