/**
 * What only the PostgreSQL adapter has to show (the port contract is in test/store-contract):
 * nodes sharing a schema hear each other's commits through LISTEN/NOTIFY without polling, many
 * writers keep one session's chain contiguous, migrations are safe when nodes start together and
 * refuse foreign or altered schemas, the database clock wins over a node's wrong clock, and lost
 * connections are survived.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { findChainBreak, isWardenError, type WardenError } from '../../src/core/index.ts';
import { openPostgresStore, type PostgresStore } from '../../src/store/index.ts';
import { POSTGRES_MIGRATIONS } from '../../src/store/migrations/postgres.ts';
import { dropSchemas, freshSchema, PG_URL, pgQuery } from '../helpers/postgres.ts';
import { waitFor } from '../helpers/wait.ts';
import { sessionRow, T0, taskRow } from '../store-contract/contract.ts';

afterAll(dropSchemas);

const open = (schema: string, extra: Partial<Parameters<typeof openPostgresStore>[0]> = {}) =>
  openPostgresStore({ url: PG_URL, schema, poolSize: 4, ...extra });

async function rejection(promise: Promise<unknown>): Promise<WardenError> {
  try {
    await promise;
  } catch (error) {
    if (isWardenError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('two nodes on one schema', () => {
  it('hear each other through NOTIFY and stay idle while nothing happens', async () => {
    const schema = freshSchema();
    const a = await open(schema);
    const b = await open(schema);
    try {
      let heard = 0;
      const off = b.watchChanges(() => (heard += 1));
      // The first LISTEN announces itself once (a look-again for anything missed before it).
      await waitFor(() => heard >= 1);
      const before = heard;
      const writesBefore = b.writeTransactions;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(heard).toBe(before); // idle: nobody notifies, nobody polls
      expect(b.writeTransactions).toBe(writesBefore);
      const s = sessionRow();
      await a.commit([
        { op: 'session.insert', row: s },
        {
          op: 'event',
          event: { session_id: s.id, type: 'session.created', trace_id: 't', data: {} },
        },
      ]);
      await waitFor(() => heard > before);
      const events = await b.readEvents({ sessionId: s.id });
      expect(events.map((e) => e.seq)).toEqual([1]);
      off();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('keeps one session contiguous and chained with many writers on two nodes', async () => {
    const schema = freshSchema();
    const a = await open(schema);
    const b = await open(schema);
    try {
      const s = sessionRow();
      await a.commit([{ op: 'session.insert', row: s }]);
      const writers = Array.from({ length: 16 }, (_, w) =>
        (async () => {
          const store = w % 2 === 0 ? a : b;
          for (let i = 0; i < 25; i++)
            await store.commit([
              {
                op: 'event',
                event: {
                  session_id: s.id,
                  type: 'task.progress',
                  trace_id: `w${w}`,
                  data: { w, i },
                },
              },
              {
                op: 'event',
                event: {
                  session_id: s.id,
                  type: 'task.progress',
                  trace_id: `w${w}`,
                  data: { w, i, second: true },
                },
              },
            ]);
        })(),
      );
      await Promise.all(writers);
      const events = await b.readEvents({ sessionId: s.id, limit: 10_000 });
      expect(events).toHaveLength(16 * 25 * 2);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(findChainBreak(events)).toBeNull();
      // A transaction's two events are adjacent: nobody interleaved inside a commit.
      for (let i = 0; i < events.length; i += 2)
        expect((events[i + 1]!.data as { second?: boolean }).second).toBe(true);
      const session = await a.getSession(s.id);
      expect(session?.last_seq).toBe(events.length);
      expect(session?.last_hash).toBe(events.at(-1)!.hash);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('migrations', () => {
  it('migrate once when many nodes open a new schema at the same time', async () => {
    const schema = freshSchema();
    const stores = await Promise.all(Array.from({ length: 6 }, () => open(schema)));
    try {
      const rows = await pgQuery<{ version: number }>(
        `SELECT version FROM "${schema}".warden_migrations ORDER BY version`,
      );
      const versions = POSTGRES_MIGRATIONS.map((m) => m.version);
      expect(rows.map((r) => Number(r.version))).toEqual(versions);
      for (const store of stores) expect(store.schemaVersion).toBe(versions.at(-1));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('refuse an altered migration, a newer schema and a foreign schema, changing nothing', async () => {
    const altered = freshSchema();
    await (await open(altered)).close();
    await pgQuery(`UPDATE "${altered}".warden_migrations SET checksum = 'x' WHERE version = 1`);
    expect((await rejection(open(altered))).code).toBe('MIGRATION_MISMATCH');

    const newer = freshSchema();
    await (await open(newer)).close();
    await pgQuery(
      `INSERT INTO "${newer}".warden_migrations (version, name, checksum, applied_at) VALUES (99, 'future', 'c', 0)`,
    );
    const tooNew = await rejection(open(newer));
    expect(tooNew.code).toBe('STORE_TOO_NEW');
    expect(tooNew.message).toContain('upgrade Warden');

    const foreign = freshSchema();
    await pgQuery(`CREATE SCHEMA "${foreign}"; CREATE TABLE "${foreign}".orders (id int)`);
    const refused = await rejection(open(foreign));
    expect(refused.code).toBe('STORE_CORRUPT');
    const tables = await pgQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1`,
      [foreign],
    );
    expect(tables[0]!.n).toBe(1); // nothing was created next to the foreign table
  });

  it('answer a bad URL or schema name with CONFIG_INVALID and never echo the password', async () => {
    const bad = await rejection(openPostgresStore({ url: 'mysql://u:hunter2@h/db' }));
    expect(bad.code).toBe('CONFIG_INVALID');
    expect(bad.message).not.toContain('hunter2');
    const schema = await rejection(openPostgresStore({ url: PG_URL, schema: 'no; drop' }));
    expect(schema.code).toBe('CONFIG_INVALID');
    const down = await rejection(
      openPostgresStore({
        url: 'postgres://u:hunter2@127.0.0.1:1/db',
        retryMs: 200,
        connectTimeoutMs: 200,
      }),
    );
    expect(down.code).toBe('STORE_UNAVAILABLE');
    expect(down.message).not.toContain('hunter2');
    expect(down.message).toContain('***');
  });
});

describe('the database clock', () => {
  it('corrects a node clock that is 30 s off', async () => {
    for (const skew of [30_000, -30_000]) {
      const store = await open(freshSchema(), { clock: { now: () => Date.now() + skew } });
      try {
        expect(Math.abs(store.clock.now() - Date.now())).toBeLessThan(1_000);
        expect(Math.abs(store.clock.offsetMs + skew)).toBeLessThan(1_000);
      } finally {
        await store.close();
      }
    }
  });

  it('never claims early nor reclaims a live lease on a node whose `now` runs ahead', async () => {
    const store = await open(freshSchema());
    try {
      const s = sessionRow();
      await store.commit([{ op: 'session.insert', row: s }]);
      const dbNow = Date.now();
      const later = taskRow(s.id, { available_at: dbNow + 10_000, sort_key: dbNow + 10_000 });
      const due = taskRow(s.id, { available_at: T0, sort_key: T0 });
      await store.submitTasks({ tasks: [later, due], idempotencyWindowMs: 0, now: dbNow });
      const ahead = dbNow + 30_000; // a node whose clock runs 30 s fast
      const claimed = await store.claimTasks({
        lanes: [due.lane],
        workerId: 'w',
        limit: 10,
        leaseMs: 5_000,
        now: ahead,
      });
      expect(claimed.map((c) => c.task.id)).toEqual([due.id]);
      // The lease runs to ahead + 5 s by that node's clock; a reclaim by another fast node
      // claiming the lease expired "by now" is refused: the database says it has not.
      const [outcome] = await store.settleTasks([
        {
          id: due.id,
          leaseToken: claimed[0]!.leaseToken,
          state: 'queued',
          attemptOutcome: 'lease_expired',
          expiredBy: ahead + 60_000,
          now: ahead + 60_000,
          events: [],
        },
      ]);
      expect(outcome!.ok).toBe(false);
      expect(outcome!.error?.code).toBe('LEASE_LOST');
      expect((await store.getTask(due.id))?.state).toBe('running');
    } finally {
      await store.close();
    }
  });
});

describe('connection loss', () => {
  it('survives every connection being killed mid-load: nothing lost, nothing doubled', async () => {
    const schema = freshSchema();
    const store: PostgresStore = await open(schema, { retryMs: 20_000 });
    try {
      const s = sessionRow();
      await store.commit([{ op: 'session.insert', row: s }]);
      let killing = true;
      const killer = (async () => {
        while (killing) {
          await pgQuery(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()`,
            [`warden:${schema}`],
          );
          await new Promise((resolve) => setTimeout(resolve, 40));
        }
      })();
      const tasks = Array.from({ length: 200 }, (_, i) =>
        taskRow(s.id, { idempotency_key: `k${i}` }),
      );
      for (let i = 0; i < tasks.length; i += 10)
        await store.submitTasks({
          tasks: tasks.slice(i, i + 10),
          idempotencyWindowMs: 3_600_000,
          now: Date.now(),
        });
      killing = false;
      await killer;
      const queued = await store.listTasks({ limit: 1_000 });
      expect(queued).toHaveLength(200);
      const events = await store.readEvents({ sessionId: s.id, limit: 10_000 });
      expect(events.filter((e) => e.type === 'task.queued')).toHaveLength(200);
      expect(findChainBreak(events)).toBeNull();
    } finally {
      await store.close();
    }
  });
});
