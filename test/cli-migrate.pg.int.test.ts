/**
 * `warden migrate` through the real CLI, into the local PostgreSQL: an installation with real
 * history (a run waiting for a person, a token, 1,200 jobs with their events in batches of many
 * segments, a dead task, a schedule, lanes, a service, rate windows, an effect, a session
 * whose oldest events were pruned by retention, and the security entities: policy versions,
 * grants, an audit log of many batches, quarantine, kv) arrives with every row and every event
 * as stored, and its hash chains (the sessions' and the audit log's) verify from the same
 * anchors; the refusals (a target holding data, bad --to, bad --from, an older schema, a
 * tampered audit log, a running daemon) change nothing anywhere.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  canonicalJson,
  findChainBreak,
  GENESIS_HASH,
  IdGenerator,
  ManualClock,
} from '../src/core/index.ts';
import { JobQueue } from '../src/queue/index.ts';
import {
  type EventRecord,
  type NewAuditRecord,
  openPostgresStore,
  openSqliteStore,
  SessionDirectory,
  SQLITE_SCHEMA_VERSION,
  type TaskSettle,
} from '../src/store/index.ts';
import { SQLITE_MIGRATIONS } from '../src/store/migrations/sqlite.ts';
import { PG_TYPES } from '../src/store/postgres/connection.ts';
import { migrate as migrateSqlite } from '../src/store/sqlite/migrate.ts';
import { type CliResult, json, runCli } from './helpers/cli.ts';
import { type DaemonProcess, startDaemon } from './helpers/daemon.ts';
import { dropSchemas, freshSchema, PG_URL } from './helpers/postgres.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const DAY = 86_400_000;
const JOBS = 1_200;
/** Audit records: more than one insert batch (1,000 rows) on the target. */
const AUDITS = 1_500;

interface Report {
  source: string;
  target: string;
  schema: string;
  tables: Array<{ table: string; sqlite: number; postgres: number }>;
  sessions: number;
  events: number;
  ledger_ok: boolean;
}

/** A PostgreSQL client reading bigint as numbers, as the store does. */
async function pgClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: PG_URL, types: PG_TYPES });
  await client.connect();
  return client;
}

let client: pg.Client;
const daemons: DaemonProcess[] = [];

function urlFor(schema: string, password?: string): string {
  const url = new URL(PG_URL);
  if (password) url.password = password;
  url.searchParams.set('schema', schema);
  return url.toString();
}

async function schemaExists(schema: string): Promise<boolean> {
  const { rows } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  return rows.length > 0;
}

function fileHash(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function migrateCli(home: string, args: readonly string[]): Promise<CliResult> {
  return runCli(['migrate', ...args], { home, timeoutMs: 120_000 });
}

/**
 * `warden init`, a run waiting for a person and a token through the CLI; then, with a clock 10
 * days back, 1,200 jobs in session `bulk` worked off (every 100th dead), a schedule, a service,
 * a rate window and an effect; finally retention prunes `bulk`'s events of its first 2.5 s
 * (submits and the first two batches; more than a thousand events stay). Returns the home and
 * its database.
 */
async function buildInstallation(): Promise<{ home: string; db: string }> {
  const home = tempDir();
  const db = join(home, 'warden.db');
  expect((await runCli(['init'], { home })).code).toBe(0);
  const run = await runCli(
    ['run', 'examples/review-loop.yaml', '--no-interactive', '--input', '{"topic": "migrate"}'],
    { home },
  );
  expect(run.code, run.stderr).toBe(4);
  const token = await runCli(['token', 'create', '--name', 'ci', '--scopes', 'read,write'], {
    home,
  });
  expect(token.code, token.stderr).toBe(0);

  const start = Date.now() - 10 * DAY;
  const clock = new ManualClock(start);
  const store = await openSqliteStore({ file: db, clock });
  try {
    const queue = new JobQueue({ store, clock, lanes: { bulk: { concurrency: 64 } } });
    await queue.ready();
    const ids = new IdGenerator(clock);
    const sessions = new SessionDirectory(store, ids, clock);
    const bulk = await sessions.ensure('bulk');
    await queue.submitMany(
      Array.from({ length: JOBS }, (_, i) => ({
        name: 'crunch',
        payload: { i, text: `payload ${i} "quoted" \\ é ✓` },
        options: { lane: 'bulk', session: 'bulk', attempts: 1 },
      })),
    );
    let settled = 0;
    for (;;) {
      clock.advance(1_000);
      const claimed = await store.claimTasks({
        lanes: ['bulk'],
        kinds: ['job'],
        workerId: 'migrate-test',
        limit: 250,
        leaseMs: 60_000,
        now: clock.now(),
      });
      if (claimed.length === 0) break;
      const settles: TaskSettle[] = claimed.map((c) => {
        settled += 1;
        const dead = settled % 100 === 0;
        return {
          id: c.task.id,
          leaseToken: c.leaseToken,
          state: dead ? 'dead' : 'succeeded',
          result: dead ? undefined : { ok: settled, nested: { list: [1, 2.5, null, 'x'] } },
          error: dead ? { code: 'JOB_FAILED', message: 'boom' } : null,
          attemptOutcome: dead ? 'failed' : 'succeeded',
          now: clock.now(),
          events: [
            {
              session_id: c.task.session_id,
              type: dead ? 'task.dead' : 'task.succeeded',
              trace_id: c.task.trace_id,
              task_id: c.task.id,
              attempt: c.attempt,
              data: { n: settled, unicode: 'ü ✓ 𝄞', big: 2 ** 52, frac: 0.1 + 0.2 },
            },
          ],
        };
      });
      expect((await store.settleTasks(settles)).every((o) => o.ok)).toBe(true);
    }
    expect(settled).toBe(JOBS);
    await queue.schedule('nightly', { everyMs: DAY, job: 'crunch', payload: { nightly: true } });
    const now = clock.now();
    await store.commit([
      {
        op: 'service.upsert',
        row: {
          name: 'svc-crunch',
          type: 'worker',
          capabilities: ['crunch'],
          max_concurrency: 4,
          owner: 'host/1/abc/default',
          health: 'ok',
          registered_at: now,
          updated_at: now,
        },
      },
      {
        op: 'rate.take',
        key: 'model:scripted',
        limits: { per_minute: 60, per_hour: 600, per_day: 6_000, burst: 10 },
        now,
      },
      {
        op: 'effect.insert',
        row: {
          idempotency_key: 'effect:mail:1',
          tool: 'mail',
          request_hash: 'h1',
          status: 'pending',
          result_hash: null,
          result: null,
          owner: 'lt_x',
          owner_worker: 'w',
          task_id: null,
          session_id: bulk.id,
          error: null,
          created_at: now,
          updated_at: now,
        },
      },
    ]);
    // Later events in `bulk`, kept by retention.
    clock.set(Date.now());
    for (let i = 0; i < 5; i++)
      await store.commit([
        {
          op: 'event',
          event: { session_id: bulk.id, type: 'task.progress', trace_id: 'tr_late', data: { i } },
        },
      ]);
    await addSecurityEntities(store, clock.now());
    const system = await sessions.system();
    const pruned = await store.prune({
      policy: { finishedBefore: 0, deadBefore: 0, eventsBefore: start + 2_500 },
      limit: 1_000_000,
      event: { session_id: system.id, trace_id: 'tr_retention' },
    });
    expect(pruned.events).toBeGreaterThan(JOBS);
    const after = await store.getSession(bulk.id);
    expect(after!.pruned_seq).toBeGreaterThan(0);
  } finally {
    await store.close();
  }
  return { home, db };
}

/** Policy versions, grants (one used, one revoked), the audit log, quarantine and kv. */
async function addSecurityEntities(
  store: Awaited<ReturnType<typeof openSqliteStore>>,
  now: number,
): Promise<void> {
  const grant = (id: string, budget: number | null) => ({
    id,
    principal: 'agent:review/draft',
    action: 'tool.call',
    resource: 'tool:http.get',
    ask: false,
    budget,
    expires_at: now + DAY,
    created_at: now,
    created_by: 'user:ops',
    reason: 'migrate test',
  });
  await store.commit([
    {
      op: 'policy.version',
      id: 'pv-a',
      source: { 'p.yaml': 'a' },
      loaded_at: now,
      activate: true,
      now,
    },
    {
      op: 'policy.version',
      id: 'pv-b',
      source: { 'p.yaml': 'b ✓' },
      loaded_at: now + 1,
      activate: false,
      now,
    },
    { op: 'grant.create', grant: grant('grant-a', 3) },
    { op: 'grant.create', grant: grant('grant-b', null) },
    { op: 'grant.use', id: 'grant-a', now },
    { op: 'grant.revoke', id: 'grant-b', by: 'user:ops', reason: 'done', now },
    {
      op: 'quarantine.add',
      record: {
        id: 'quar-a',
        ts: now,
        trace_id: 'tr_q',
        kind: 'ssrf',
        principal: 'agent:review/draft',
        action: 'http.request',
        resource: 'url:http://169.254.169.254/',
        reasons: ['metadata address'],
        context: { resolved: ['169.254.169.254'], big: 2 ** 52 },
        process_id: null,
        session_id: null,
      },
    },
    ...['b/2', 'a', 'é', 'b/1'].map((key, i) => ({
      op: 'kv.set' as const,
      namespace: 'agents',
      key,
      value: { i, text: 'ü ✓ 𝄞' },
      now,
    })),
  ]);
  const audit = (i: number): NewAuditRecord => ({
    ts: now + i,
    trace_id: `tr_audit_${i}`,
    principal: 'agent:review/draft',
    action: 'tool.call',
    resource: `tool:t${i % 7}`,
    decision: i % 5 === 0 ? 'deny' : 'allow',
    decided: i % 5 === 0 ? 'deny' : 'allow',
    reasons: [`rule ${i}`],
    policy_version: 'pv-a',
    context: { i, frac: 0.1 + 0.2, nested: { z: 'é', a: [1, null] } },
  });
  for (let i = 0; i < AUDITS; i += 500)
    await store.commit([
      { op: 'audit.append', records: Array.from({ length: 500 }, (_, j) => audit(i + j)) },
    ]);
  expect(await store.verifyAudit()).toEqual({ ok: true, count: AUDITS });
}

/** Every row of a SQLite query, its integers as numbers. */
function sqliteRows(db: string, sql: string): Array<Record<string, unknown>> {
  const conn = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return conn.prepare(sql).all() as Array<Record<string, unknown>>;
  } finally {
    conn.close();
  }
}

/** Every event the SQLite store holds, per session, read through the store. */
async function sqliteEvents(db: string): Promise<Map<string, EventRecord[]>> {
  const store = await openSqliteStore({ file: db, mustExist: true, intent: 'read' });
  try {
    const out = new Map<string, EventRecord[]>();
    for (const session of await store.listSessions()) {
      const events: EventRecord[] = [];
      let after = session.pruned_seq ?? 0;
      for (;;) {
        const page = await store.readEvents({
          sessionId: session.id,
          afterSeq: after,
          limit: 5_000,
        });
        if (page.length === 0) break;
        events.push(...page);
        after = page.at(-1)!.seq;
      }
      out.set(session.id, events);
    }
    return out;
  } finally {
    await store.close();
  }
}

const SAME_SHAPE: ReadonlyArray<readonly [string, string]> = [
  ['sessions', 'id'],
  ['workflows', 'hash'],
  ['attempts', 'task_id, attempt'],
  ['interrupts', 'id'],
  ['effects', 'idempotency_key'],
  ['fair_clock', 'lane, session_id, rank'],
  ['schedules', 'id'],
  ['lanes', 'name'],
  ['rate_windows', 'key, window_ms, bucket'],
  ['services', 'name'],
  ['tokens', 'id'],
  ['policy_versions', 'id'],
  ['grants', 'id'],
  ['audit', 'seq'],
  ['audit_head', 'id'],
  ['quarantine', 'id'],
  ['kv', 'namespace, key'],
];

describe('warden migrate (SQLite → PostgreSQL)', () => {
  let home: string;
  let db: string;
  let report: Report;
  let schema: string;

  beforeAll(async () => {
    client = await pgClient();
    ({ home, db } = await buildInstallation());
    schema = freshSchema('wmig');
    const before = fileHash(db);
    const result = await migrateCli(home, [
      '--from',
      `sqlite:${db}`,
      '--to',
      urlFor(schema),
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    report = json<Report>(result);
    // Progress went to stderr; the SQLite file was only read.
    expect(result.stderr).toContain('migrate: events');
    expect(fileHash(db)).toBe(before);
  }, 240_000);

  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
  });

  afterAll(async () => {
    await client?.end();
    await dropSchemas();
    removeTempDirs();
  });

  it('reports equal row counts for every table and a verified ledger', async () => {
    expect(report.ledger_ok).toBe(true);
    expect(report.schema).toBe(schema);
    const byTable = Object.fromEntries(report.tables.map((t) => [t.table, t]));
    expect(Object.keys(byTable).sort()).toEqual(
      [...SAME_SHAPE.map(([t]) => t), 'processes', 'tasks', 'events'].sort(),
    );
    for (const t of report.tables) expect(t.postgres, t.table).toBe(t.sqlite);
    // The counts are what each side really holds.
    for (const t of report.tables) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${schema}"."${t.table}"`,
      );
      expect(rows[0]!.n, t.table).toBe(t.postgres);
    }
    expect(byTable.tasks!.postgres).toBeGreaterThanOrEqual(JOBS);
    expect(byTable.events!.postgres).toBe(report.events);
    expect(byTable.events!.postgres).toBeGreaterThan(1_000); // more than one batch
    expect(byTable.tokens!.postgres).toBe(1);
    expect(byTable.interrupts!.postgres).toBe(1);
    expect(byTable.audit!.postgres).toBe(AUDITS);
    expect(byTable.kv!.postgres).toBe(4);
  });

  it('the security entities read back through a PostgreSQL store, and its audit chain goes on', async () => {
    // A copy of its own: this test writes to the target.
    const target = freshSchema('wmig');
    const copied = await migrateCli(home, ['--from', `sqlite:${db}`, '--to', urlFor(target)]);
    expect(copied.code, copied.stderr).toBe(0);
    const store = await openPostgresStore({ url: PG_URL, schema: target, poolSize: 2 });
    try {
      expect(await store.verifyAudit()).toEqual({ ok: true, count: AUDITS });
      expect(await store.activePolicyVersion()).toMatchObject({
        id: 'pv-a',
        source: { 'p.yaml': 'a' },
      });
      expect(await store.getGrant('grant-a')).toMatchObject({ used: 1, budget: 3 });
      expect(await store.getGrant('grant-b')).toMatchObject({ revoke_reason: 'done' });
      expect((await store.kvList('agents')).map((e) => e.key)).toEqual(['a', 'b/1', 'b/2', 'é']);
      expect(await store.getQuarantine('quar-a')).toMatchObject({ context: { big: 2 ** 52 } });
      // The chain continues on the target.
      await store.commit([
        {
          op: 'audit.append',
          records: [
            {
              ts: Date.now(),
              trace_id: 'tr_after',
              principal: 'agent:review/draft',
              action: 'kv.get',
              resource: 'kv:agents/a',
              decision: 'allow',
              decided: 'allow',
              reasons: ['after migrate'],
              policy_version: 'pv-a',
              context: {},
            },
          ],
        },
      ]);
      expect((await store.readAudit({ afterSeq: AUDITS })).map((r) => r.seq)).toEqual([AUDITS + 1]);
      expect(await store.verifyAudit()).toEqual({ ok: true, count: AUDITS + 1 });
    } finally {
      await store.close();
    }
  });

  it('copies every row of every table exactly', async () => {
    for (const [table, key] of SAME_SHAPE) {
      const want = sqliteRows(db, `SELECT * FROM ${table} ORDER BY ${key}`);
      const got = (await client.query(`SELECT * FROM "${schema}".${table} ORDER BY ${key}`)).rows;
      expect(got, table).toEqual(want);
    }
    const processes = sqliteRows(db, 'SELECT * FROM process_rows ORDER BY pid');
    expect((await client.query(`SELECT * FROM "${schema}".processes ORDER BY pid`)).rows).toEqual(
      processes,
    );
    // tasks = task_data JOIN task_state, key n included.
    const tasks = sqliteRows(db, 'SELECT * FROM tasks ORDER BY n');
    const pgTasks = (
      await client.query<Record<string, unknown>>(`SELECT * FROM "${schema}".tasks ORDER BY n`)
    ).rows;
    expect(pgTasks).toEqual(tasks);
    expect(pgTasks.filter((t) => t.state === 'dead')).toHaveLength(JOBS / 100);
    // New tasks continue after the copied keys.
    const { rows } = await client.query<{ next: number }>(
      `SELECT nextval(pg_get_serial_sequence('"${schema}".tasks', 'n')) AS next`,
    );
    expect(rows[0]!.next).toBe(Math.max(...tasks.map((t) => t.n as number)) + 1);
  });

  it('has every event with every field as stored, and every chain verifies from its anchor', async () => {
    const events = await sqliteEvents(db);
    const sessions = (await client.query(`SELECT * FROM "${schema}".sessions ORDER BY id`))
      .rows as Array<{
      id: string;
      key: string;
      last_seq: number;
      last_hash: string;
      pruned_seq: number;
      pruned_hash: string | null;
    }>;
    expect(sessions.map((s) => s.id).sort()).toEqual([...events.keys()].sort());
    const bulk = sessions.find((s) => s.key === 'bulk')!;
    expect(bulk.pruned_seq).toBeGreaterThan(0);
    expect(bulk.pruned_hash).toMatch(/^[0-9a-f]{64}$/);
    let total = 0;
    for (const session of sessions) {
      const rows = (
        await client.query(`SELECT * FROM "${schema}".events WHERE session_id = $1 ORDER BY seq`, [
          session.id,
        ])
      ).rows as Array<Record<string, unknown>>;
      const want = events.get(session.id)!;
      expect(rows, session.key).toHaveLength(want.length);
      total += rows.length;
      const got = rows.map((r) => ({ ...r, data: JSON.parse(r.data as string) as unknown }));
      expect(got, session.key).toEqual(want);
      // Stored as the PostgreSQL adapter stores it: the canonical text the hash covers.
      rows.forEach((r, i) => expect(r.data).toBe(canonicalJson(want[i]!.data)));
      // Nothing before the retention anchor; the chain verifies from it to the head.
      const anchor =
        session.pruned_seq > 0
          ? { seq: session.pruned_seq, hash: session.pruned_hash! }
          : { seq: 0, hash: GENESIS_HASH };
      expect(findChainBreak(got as unknown as EventRecord[], anchor), session.key).toBeNull();
      const last = rows.at(-1);
      expect(last?.seq ?? anchor.seq).toBe(session.last_seq);
      expect(last?.hash ?? anchor.hash).toBe(session.last_hash);
    }
    expect(total).toBe(report.events);
  });

  it('refuses a target that already holds Warden data, changing nothing', async () => {
    const counts = async () =>
      (
        await client.query(
          `SELECT (SELECT count(*) FROM "${schema}".events) AS e, (SELECT count(*) FROM "${schema}".tasks) AS t,
             (SELECT count(*) FROM "${schema}".warden_migrations) AS m`,
        )
      ).rows[0] as Record<string, number>;
    const before = await counts();
    const result = await migrateCli(home, ['--to', urlFor(schema), '--json']);
    expect(result.code).toBe(2);
    expect(json<{ error: { code: string; message: string } }>(result).error.code).toBe(
      'CONFIG_INVALID',
    );
    expect(result.stderr).toContain('empty schema only');
    expect(await counts()).toEqual(before);
  });

  it('refuses a bad --to before touching anything', async () => {
    const target = freshSchema('wmig');
    for (const to of [
      'mysql://root@127.0.0.1/test',
      'not a url',
      `${PG_URL}?schema=bad-name`,
      `postgres://postgres@127.0.0.1:99999/test?schema=${target}`,
    ]) {
      const result = await migrateCli(home, ['--to', to]);
      expect(result.code, `${to}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(/error \[(INVALID_PARAMS|CONFIG_INVALID)\]/);
    }
    expect(await schemaExists(target)).toBe(false);
  });

  it('refuses a bad --from or an older schema before touching the target', async () => {
    const target = freshSchema('wmig');
    const to = urlFor(target);
    const dir = tempDir();
    const foreign = join(dir, 'other.db');
    const other = new Database(foreign);
    other.exec('CREATE TABLE t (x)');
    other.close();
    const older = join(dir, 'older.db');
    const conn = new Database(older);
    migrateSqlite(conn, SQLITE_MIGRATIONS.slice(0, SQLITE_SCHEMA_VERSION - 1), older, Date.now());
    conn.close();
    const olderHash = fileHash(older);
    const cases: Array<[string, number, string]> = [
      [`sqlite:${join(dir, 'missing.db')}`, 5, 'NOT_FOUND'],
      [dir, 2, 'INVALID_PARAMS'],
      ['sqlite:', 2, 'INVALID_PARAMS'],
      [`postgres://postgres:pw@127.0.0.1/test`, 2, 'INVALID_PARAMS'],
      [foreign, 6, 'STORE_CORRUPT'],
      [`sqlite:${older}`, 8, 'INVALID_STATE'],
    ];
    for (const [from, code, error] of cases) {
      const result = await migrateCli(home, ['--from', from, '--to', to, '--json']);
      expect(result.code, `${from}: ${result.stderr}`).toBe(code);
      expect(json<{ error: { code: string } }>(result).error.code).toBe(error);
    }
    const olderResult = await migrateCli(home, ['--from', older, '--to', to]);
    expect(olderResult.stderr).toContain('open it once with this Warden');
    expect(fileHash(older)).toBe(olderHash);
    expect(await schemaExists(target)).toBe(false);
  }, 90_000); // eight CLI processes, one after another

  it('refuses a source whose audit log was tampered with (LEDGER_BROKEN), copying nothing', async () => {
    const target = freshSchema('wmig');
    const copy = join(tempDir(), 'tampered.db');
    writeFileSync(copy, readFileSync(db));
    const conn = new Database(copy);
    conn.exec(`DROP TRIGGER audit_no_update; UPDATE audit SET decision = 'allow' WHERE seq = 1001`);
    conn.close();
    const result = await migrateCli(home, ['--from', copy, '--to', urlFor(target), '--json']);
    expect(result.code, result.stderr).toBe(7);
    const error = json<{ error: { code: string; details: { audit: { seq: number } } } }>(
      result,
    ).error;
    expect(error.code).toBe('LEDGER_BROKEN');
    expect(error.details.audit).toMatchObject({ seq: 1001, reason: 'hash_mismatch' });
    // Rolled back: the schema is migrated and empty.
    const { rows } = await client.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM "${target}".audit)::int + (SELECT count(*) FROM "${target}".events)::int AS n`,
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('refuses while a daemon serves the database, changing nothing', async () => {
    const target = freshSchema('wmig');
    const daemon = await startDaemon(home);
    daemons.push(daemon);
    const result = await migrateCli(home, ['--from', `sqlite:${db}`, '--to', urlFor(target)]);
    expect(result.code, result.stderr).toBe(8);
    expect(result.stderr).toContain('[DAEMON_RUNNING]');
    expect(result.stderr).toContain(`pid ${daemon.child.pid}`);
    expect(await schemaExists(target)).toBe(false);
    // The daemon's lock is its own: migrate took nothing over and left nothing behind.
    expect(JSON.parse(readFileSync(join(home, 'daemon.lock'), 'utf8'))).toMatchObject({
      pid: daemon.child.pid,
      purpose: 'serve',
    });
    await daemons.pop()!.stop();
    expect(existsSync(join(home, 'daemon.lock'))).toBe(false);
  });

  it('never prints the URL password, on success or failure', async () => {
    const secret = `pw${randomBytes(6).toString('hex')}`;
    const target = freshSchema('wmig');
    const copy = join(tempDir(), 'copy.db');
    writeFileSync(copy, readFileSync(db));
    // Trust authentication ignores the password: the copy succeeds.
    const ok = await migrateCli(home, ['--from', copy, '--to', urlFor(target, secret)]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(':***@');
    const refused = await migrateCli(home, [
      '--from',
      copy,
      '--to',
      `postgres://postgres:${secret}@127.0.0.1:1/test?schema=${target}`,
      '--json',
    ]);
    expect(refused.code).toBe(6);
    expect(json<{ error: { code: string } }>(refused).error.code).toBe('STORE_UNAVAILABLE');
    for (const r of [ok, refused]) expect(`${r.stdout}${r.stderr}`).not.toContain(secret);
  });
});
