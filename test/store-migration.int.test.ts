/**
 * Migration 4 (`hot_path`) converts a database written by the previous schema: one row per
 * event, one row per task, the workflow inside each run's row. Built here with migrations 1–3
 * and rows in that layout, then opened by the current store.
 */
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

import { canonicalJson, GENESIS_HASH, hashEvent } from '../src/core/index.ts';
import { verifyLedger } from '../src/kernel/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { SQLITE_MIGRATIONS } from '../src/store/migrations/sqlite.ts';
import { migrate } from '../src/store/sqlite/migrate.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

afterAll(removeTempDirs);

const NOW = 1_790_000_000_000;
const OPTIONS = {
  backoff_ms: 1000,
  max_backoff_ms: 300000,
  timeout_ms: null,
  poison_threshold: 3,
  consecutive_fingerprint: null,
};

/** A version-3 database with a session log of `events` chained events, tasks and a run. */
function buildVersion3(file: string, events: number): { sessionId: string; head: string } {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  migrate(db, SQLITE_MIGRATIONS.slice(0, 3), file, NOW);
  const sessionId = 's_old';
  let prev = GENESIS_HASH;
  const insertEvent = db.prepare(
    `INSERT INTO events (session_id, seq, type, ts, trace_id, process_id, task_id, attempt, data, prev_hash, hash)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  for (let seq = 1; seq <= events; seq++) {
    const body = {
      session_id: sessionId,
      seq,
      type: seq === 1 ? 'session.created' : 'task.queued',
      ts: NOW + seq,
      trace_id: 'tr_old',
      process_id: seq % 3 === 0 ? 'p_old' : null,
      task_id: seq === 1 ? null : `t_${seq}`,
      attempt: null,
      data: { n: seq, nested: { b: 1, a: [1, 'x'] } },
      prev_hash: prev,
    };
    const hash = hashEvent(body);
    insertEvent.run(
      body.session_id,
      body.seq,
      body.type,
      body.ts,
      body.trace_id,
      body.process_id,
      body.task_id,
      body.attempt,
      canonicalJson(body.data),
      body.prev_hash,
      hash,
    );
    prev = hash;
  }
  db.prepare(
    `INSERT INTO sessions (id, key, settings, created_at, updated_at, last_seq, last_hash)
     VALUES (?, 'agent:old', '{}', ?, ?, ?, ?)`,
  ).run(sessionId, NOW, NOW, events, prev);
  const insertTask = db.prepare(
    `INSERT INTO tasks (id, kind, name, lane, session_id, process_id, payload, state, priority, sort_key,
       available_at, attempts, max_attempts, lease_owner, lease_token, lease_expires_at, claimed_at,
       idempotency_key, last_error, result, trace_id, options, created_at, updated_at)
     VALUES (@id, 'job', 'noop', 'default', @session_id, NULL, @payload, @state, 0, @available_at,
       @available_at, @attempts, 5, @lease_owner, @lease_token, @lease_expires_at, @claimed_at,
       @idempotency_key, @last_error, @result, 'tr_t', @options, @created_at, @updated_at)`,
  );
  /** A task row of the old layout: a queued task created at NOW unless `row` says otherwise. */
  const task = (row: Record<string, unknown>) =>
    insertTask.run({
      session_id: sessionId,
      state: 'queued',
      available_at: NOW,
      attempts: 0,
      lease_owner: null,
      lease_token: null,
      lease_expires_at: null,
      claimed_at: null,
      idempotency_key: null,
      last_error: null,
      result: null,
      options: JSON.stringify(OPTIONS),
      created_at: NOW,
      updated_at: NOW,
      ...row,
    });
  task({
    id: 't_done',
    payload: '{"i":1}',
    state: 'succeeded',
    attempts: 1,
    claimed_at: NOW,
    idempotency_key: 'k1',
    result: '{"ok":true}',
    updated_at: NOW + 5,
  });
  task({
    id: 't_wait',
    payload: '{"i":2}',
    available_at: NOW + 10,
    created_at: NOW + 1,
    updated_at: NOW + 1,
  });
  task({
    id: 't_run',
    payload: '{"i":3}',
    state: 'running',
    attempts: 1,
    lease_owner: 'host/1/a/jobs',
    lease_token: 'lt_x:t_run',
    lease_expires_at: NOW + 15_000,
    claimed_at: NOW,
    created_at: NOW + 2,
    updated_at: NOW + 2,
  });
  task({
    id: 't_dead',
    payload: '{"i":4}',
    state: 'dead',
    attempts: 1,
    claimed_at: NOW,
    last_error: '{"code":"JOB_FAILED","message":"boom"}',
    created_at: NOW + 3,
    updated_at: NOW + 9,
  });
  const workflow = { name: 'wf', stages: [{ name: 'a', agent: { kind: 'noop' } }] };
  const insertRun = db.prepare(
    `INSERT INTO processes (pid, session_id, user_id, parent_pid, workflow_name, workflow, workflow_hash, source,
       state, priority, quota, usage, envelope, current_stage, terminal_reason, terminal_message, trace_id, version,
       created_at, started_at, updated_at, completed_at)
     VALUES (?, ?, 'u', NULL, 'wf', ?, 'h_wf', NULL, 'terminated', 'normal', '{}', '{}', '{"outputs":{"a":1}}', 'a',
       'completed', NULL, 'tr_p', 3, ?, ?, ?, ?)`,
  );
  insertRun.run('p_old', sessionId, JSON.stringify(workflow), NOW, NOW, NOW + 1, NOW + 1);
  insertRun.run('p_old2', sessionId, JSON.stringify(workflow), NOW + 1, NOW + 1, NOW + 2, NOW + 2);
  db.close();
  return { sessionId, head: prev };
}

describe('migration 4 (hot_path) on a version-3 database', () => {
  it('keeps every event, task and run, and the ledger still verifies', async () => {
    const file = join(tempDir(), 'old.db');
    const { sessionId, head } = buildVersion3(file, 40);
    const store = await openSqliteStore({ file });
    try {
      expect((await store.health()).schemaVersion).toBe(SQLITE_MIGRATIONS.length);
      const ledger = await verifyLedger(store, sessionId);
      expect(ledger.ok).toBe(true);
      expect(ledger.sessions[0]!.events).toBe(40);
      const events = await store.readEvents({ sessionId, limit: 100 });
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(events.at(-1)!.hash).toBe(head);
      expect(events[5]!.data).toEqual({ n: 6, nested: { b: 1, a: [1, 'x'] } });
      const ofRun = await store.readEvents({ sessionId, processId: 'p_old', limit: 100 });
      expect(ofRun.map((e) => e.seq)).toEqual(Array.from({ length: 13 }, (_, i) => (i + 1) * 3));

      const task = (id: string) => store.getTask(id);
      expect(await task('t_done')).toMatchObject({
        state: 'succeeded',
        payload: { i: 1 },
        result: { ok: true },
        idempotency_key: 'k1',
        options: OPTIONS,
        attempts: 1,
      });
      expect(await task('t_wait')).toMatchObject({ state: 'queued', available_at: NOW + 10 });
      expect(await task('t_run')).toMatchObject({
        state: 'running',
        lease_token: 'lt_x:t_run',
        lease_owner: 'host/1/a/jobs',
        lease_expires_at: NOW + 15_000,
      });
      expect(await task('t_dead')).toMatchObject({
        state: 'dead',
        last_error: { code: 'JOB_FAILED', message: 'boom' },
      });
      expect((await store.listTasks({ states: ['dead'] })).map((t) => t.id)).toEqual(['t_dead']);

      const runs = await store.listProcesses({});
      expect(runs.map((p) => [p.pid, p.workflow.name, p.state])).toEqual([
        ['p_old', 'wf', 'terminated'],
        ['p_old2', 'wf', 'terminated'],
      ]);
      expect((await store.getProcess('p_old'))?.envelope).toEqual({ outputs: { a: 1 } });
    } finally {
      await store.close();
    }
    // The two runs share one stored definition; the views read like the old tables.
    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM workflows').get()).toEqual({ n: 1 });
      expect(db.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 40 });
      expect(db.prepare('SELECT count(*) AS n FROM tasks').get()).toEqual({ n: 4 });
    } finally {
      db.close();
    }
  });
});
