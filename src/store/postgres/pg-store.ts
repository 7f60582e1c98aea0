/**
 * The PostgreSQL adapter of the Store port, on `pg`: any number of Warden nodes share one
 * database with no other coordinator (DESIGN.md §15).
 *
 * - Every write is one READ COMMITTED transaction on a pooled connection; compare-and-set guards
 *   live in the statements' WHERE clauses, claims use `FOR UPDATE SKIP LOCKED`, and each
 *   session's events are chained at the end of the transaction under a lock on its head
 *   (event-log.ts).
 * - A transaction that met a deadlock or serialization failure, or lost its connection before
 *   COMMIT was sent, changed nothing and is run again (with backoff, up to `retryMs`). One that
 *   lost its connection while committing is in doubt: the adapter asks the server what became of
 *   it (`txid_status`) once it is back, and answers as if nothing had happened if it committed —
 *   so a PostgreSQL restart or failover costs waiting, never a lost or doubled write.
 * - Commits NOTIFY every node (notifications.ts); nothing polls while idle.
 * - Times that decide ownership come from the database: {@link PostgresStore.clock} follows the
 *   database's clock (a node whose own clock is off by 30 s still computes leases and due times
 *   on the database's time), and the guards of claims, reclaims and schedules compare with the
 *   database clock itself, so a skewed node can neither steal a lease nor fire early.
 * - Migrations are forward-only, checksummed, under an advisory lock (migrate.ts).
 */
import { randomBytes } from 'node:crypto';

import type { Pool, PoolClient } from 'pg';

import {
  checkParams,
  type Clock,
  coerceError,
  deepFreeze,
  errors,
  systemClock,
  type TaskKind,
  WardenError,
} from '../../core/index.ts';
import type {
  AuditRecord,
  GrantRecord,
  PolicyVersionRecord,
  QuarantineRecord,
} from '../../core/policy/types.ts';
import { POSTGRES_MIGRATIONS } from '../migrations/postgres.ts';
import {
  checkReadId,
  deleteSessionArgs,
  eventQueryArgs,
  interruptFilterArgs,
  openPostgresStoreArgs,
  processFilterArgs,
  taskFilterArgs,
} from '../params.ts';
import { checkProcessUpdate } from '../process-rules.ts';
import { rowLimit } from '../row-limit.ts';
import {
  interruptFromRow,
  interruptToParams,
  processFromRow,
  processToParams,
  type Row,
  sessionFromRow,
  taskFromRow,
  toJson,
  tokenFromRow,
  tokenToParams,
} from '../rows.ts';
import {
  auditQueryArgs,
  grantFilterArgs,
  kvGetArgs,
  kvListArgs,
  policyVersionFilterArgs,
  quarantineFilterArgs,
} from '../security-rules.ts';
import { latestVersion } from '../sqlite/migrate.ts';
import type {
  AttemptRecord,
  AuditQuery,
  AuditVerification,
  ClaimedTask,
  ClaimRequest,
  CommitListener,
  DeleteSessionCounts,
  DeleteSessionInput,
  Durability,
  EffectRecord,
  EventQuery,
  EventRecord,
  GrantFilter,
  InterruptFilter,
  InterruptRecord,
  KvEntry,
  KvListOptions,
  KvValue,
  LaneRecord,
  PolicyVersionFilter,
  ProcessFilter,
  ProcessRecord,
  PruneInput,
  PruneResult,
  QuarantineFilter,
  RetentionPolicy,
  ScheduleDefer,
  ScheduleFire,
  ScheduleRecord,
  ServiceRecord,
  SessionRecord,
  SessionRunStamp,
  SettleOutcome,
  Store,
  StoreHealth,
  StoreOp,
  StoreSnapshot,
  SubmitRequest,
  SubmitResult,
  TaskFilter,
  TaskRecord,
  TaskSettle,
  TokenRecord,
} from '../types.ts';
import { chainAuditRecords } from './audit-log.ts';
import {
  channelFor,
  classifyPgError,
  clientConfig,
  createPool,
  parsePgTarget,
  type PgTarget,
  pgWardenError,
  type PoolSettings,
} from './connection.ts';
import { DbClock } from './db-clock.ts';
import { chainEvents } from './event-log.ts';
import { effectOps, rateOps, retentionOps, sessionDeleteOps, snapshotOps } from './history-ops.ts';
import { migratePostgres } from './migrate.ts';
import { PgNotifications } from './notifications.ts';
import * as security from './security-writes.ts';
import { taskOps } from './task-ops.ts';
import { type PgRow, PgTransaction } from './tx.ts';
import { pinWorkflow } from './workflow-gc.ts';

export interface PostgresStoreOptions {
  /** `postgres://user[:password]@host[:port]/database[?schema=name]`. */
  readonly url: string;
  /** The schema holding Warden's tables (created when missing). @default `?schema=` or 'warden' */
  readonly schema?: string;
  /** Connections in this node's pool at most. @default 10 */
  readonly poolSize?: number;
  /** Longest a statement may run before the server cancels it (STORE_BUSY). @default 30000 */
  readonly statementTimeoutMs?: number;
  /** Longest one connection attempt may take. @default 5000 */
  readonly connectTimeoutMs?: number;
  /**
   * How long transient failures (server restarting, connection lost, deadlock) are retried
   * before an operation fails with STORE_UNAVAILABLE. @default 30000
   */
  readonly retryMs?: number;
  /**
   * `strict` (default): a commit returns once the server flushed it (`synchronous_commit=on`).
   * `fast`: the server flushes in the background (`synchronous_commit=off`): a server crash may
   * lose the last moments of commits, never corrupt them.
   */
  readonly durability?: Durability;
  /** The node's own clock, corrected to the database's. @default systemClock */
  readonly clock?: Clock;
}

const BACKOFF_MS = [10, 25, 50, 100, 250, 500, 1_000, 2_000] as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const WORKFLOW_CACHE = 256;

/** Opens (creating the schema and migrating it when needed) a PostgreSQL store. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  checkParams('openPostgresStore', openPostgresStoreArgs, { options });
  return PostgresStore.open(options);
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly durability: Durability;
  readonly location = null;
  readonly readOnly = false;
  readonly schema: string;
  readonly schemaVersion: number;
  /** The node's clock corrected to the database's: what the kernel and queue should use. */
  readonly clock: DbClock;
  /** The URL without its password. */
  readonly where: string;
  readonly #pool: Pool;
  readonly #notifications: PgNotifications;
  readonly #channel: string;
  readonly #node: string;
  readonly #retryMs: number;
  readonly #listeners = new Set<CommitListener>();
  readonly #workflows = new Map<string, ProcessRecord['workflow']>();
  #writes = 0;
  #closed = false;

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const target = parsePgTarget(options.url, options.schema);
    const settings: PoolSettings = {
      max: options.poolSize ?? 10,
      statementTimeoutMs: options.statementTimeoutMs ?? 30_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      synchronousCommit: options.durability === 'fast' ? 'off' : 'on',
    };
    const pool = createPool(target, settings);
    const retryMs = options.retryMs ?? 30_000;
    const base = options.clock ?? systemClock;
    try {
      const version = await withRetry(retryMs, target.display, async () => {
        const client = await pool.connect();
        try {
          return await migratePostgres(
            client,
            target.schema,
            POSTGRES_MIGRATIONS,
            target.display,
            base.now(),
          );
        } finally {
          client.release();
        }
      });
      const clock = new DbClock(base, pool);
      await clock.sync();
      return new PostgresStore(target, settings, pool, version, clock, options);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error instanceof WardenError ? error : pgWardenError(error, target.display);
    }
  }

  private constructor(
    target: PgTarget,
    settings: PoolSettings,
    pool: Pool,
    schemaVersion: number,
    clock: DbClock,
    options: PostgresStoreOptions,
  ) {
    this.#pool = pool;
    this.schema = target.schema;
    this.where = target.display;
    this.schemaVersion = schemaVersion;
    this.clock = clock;
    this.durability = options.durability ?? 'strict';
    this.#retryMs = options.retryMs ?? 30_000;
    this.#channel = channelFor(target.schema);
    this.#node = randomBytes(8).toString('hex');
    this.#notifications = new PgNotifications(
      clientConfig(target, settings),
      this.#channel,
      this.#node,
    );
  }

  // ---------------------------------------------------------------- transactions

  /**
   * Runs `fn` in one write transaction (see the header for retries and in-doubt commits);
   * listeners hear its events after the commit.
   */
  async #transact<T>(fn: (tx: PgTransaction) => Promise<T>, announce = true): Promise<T> {
    return (await this.#run(fn, announce)).value;
  }

  /** {@link #transact}, answering the committed events too. */
  async #run<T>(
    fn: (tx: PgTransaction) => Promise<T>,
    announce: boolean,
  ): Promise<{ value: T; events: EventRecord[] }> {
    this.#assertOpen();
    const deadline = Date.now() + this.#retryMs;
    for (let attempt = 0; ; attempt++) {
      let client: PoolClient | undefined;
      let xid: string | null = null;
      let committing = false;
      let outcome: { value: T; events: EventRecord[] } | undefined;
      try {
        client = await this.#pool.connect();
        const begun = (await client.query(
          'BEGIN; SELECT txid_current()::text AS xid',
        )) as unknown as Array<{ rows: Array<{ xid: string }> }>;
        xid = begun[1]!.rows[0]!.xid;
        const tx = new PgTransaction(client);
        const value = await fn(tx);
        const events = await chainEvents(tx, tx.pending, this.clock);
        await chainAuditRecords(tx, tx.audits);
        outcome = { value, events };
        committing = true;
        await client.query(
          announce || events.length > 0
            ? `SELECT pg_notify('${this.#channel}', '${this.#node}'); COMMIT`
            : 'COMMIT',
        );
        client.release();
        client = undefined;
        return this.#committed(outcome, announce);
      } catch (error) {
        const failure = error instanceof WardenError ? 'other' : classifyPgError(error);
        if (client) {
          if (failure !== 'connection' && !committing)
            await client.query('ROLLBACK').catch(() => undefined);
          client.release(failure === 'connection' ? (error as Error) : undefined);
        }
        if (error instanceof WardenError) throw error;
        if (committing && failure === 'connection' && xid !== null && outcome) {
          const status = await this.#resolveInDoubt(xid, deadline);
          if (status === 'committed') return this.#committed(outcome, announce);
          if (status === 'unknown') {
            throw new WardenError(
              'STORE_UNAVAILABLE',
              `the connection to ${this.where} broke while a write was committing and the server did not come back in time to say whether it applied; read the state again before retrying`,
              { cause: error, details: { store: this.where, commit_unknown: true } },
            );
          }
          // aborted: nothing applied, so running it again is safe
        } else if (failure !== 'retry' && failure !== 'connection') {
          throw pgWardenError(error, this.where);
        }
        if (Date.now() >= deadline) throw pgWardenError(error, this.where);
        await sleep(backoff(attempt));
      }
    }
  }

  #committed<T>(
    outcome: { value: T; events: EventRecord[] },
    announce: boolean,
  ): { value: T; events: EventRecord[] } {
    this.#writes += 1;
    if (outcome.events.length > 0 || announce) this.#notifications.notifyLocal();
    if (outcome.events.length > 0) {
      for (const listener of this.#listeners) {
        try {
          listener(outcome.events);
        } catch {
          // A listener's failure must not turn a committed write into an error.
        }
      }
    }
    return outcome;
  }

  /** What became of transaction `xid` whose COMMIT met a broken connection. */
  async #resolveInDoubt(
    xid: string,
    deadline: number,
  ): Promise<'committed' | 'aborted' | 'unknown'> {
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      try {
        const { rows } = await this.#pool.query<{ status: string | null }>(
          'SELECT txid_status($1::bigint) AS status',
          [xid],
        );
        const status = rows[0]?.status;
        if (status === 'committed') return 'committed';
        if (status === 'aborted' || status === null) return 'aborted';
        // 'in progress': the server has not finished it yet
      } catch {
        // still unreachable
      }
      await sleep(backoff(attempt));
    }
    return 'unknown';
  }

  /** A read (idempotent: retried across connection loss until `retryMs`). */
  async #query<R extends PgRow = PgRow>(text: string, values?: readonly unknown[]): Promise<R[]> {
    this.#assertOpen();
    const deadline = Date.now() + this.#retryMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.#pool.query<R>(text, values as unknown[] | undefined)).rows;
      } catch (error) {
        const failure = classifyPgError(error);
        if ((failure !== 'connection' && failure !== 'retry') || Date.now() >= deadline)
          throw pgWardenError(error, this.where);
        await sleep(backoff(attempt));
      }
    }
  }

  /** The read-side query interface the write-path modules share with transactions. */
  readonly #reader = {
    query: async <R extends PgRow = PgRow>(text: string, values?: readonly unknown[]) => {
      const rows = await this.#query<R>(text, values);
      return { rows, rowCount: rows.length };
    },
  };

  /** Runs `fn` and turns a thrown error into a rejected promise with a Warden error. */
  async #read<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw coerceError(error);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new WardenError('INTERNAL', 'the store is closed');
  }

  // ---------------------------------------------------------------- commit

  async commit(ops: readonly StoreOp[]): Promise<readonly EventRecord[]> {
    const { events } = await this.#run(async (tx) => {
      for (const op of ops) await this.#apply(tx, op);
      return null;
    }, ops.length > 0);
    return events;
  }

  async #apply(tx: PgTransaction, op: StoreOp): Promise<void> {
    switch (op.op) {
      case 'session.insert': {
        const r = op.row;
        const { rowCount } = await tx.query(
          `INSERT INTO sessions (id, key, settings, created_at, updated_at, last_seq, last_hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
          [
            r.id,
            r.key,
            JSON.stringify(r.settings),
            r.created_at,
            r.updated_at,
            r.last_seq,
            r.last_hash,
          ],
        );
        if (rowCount === 1) return;
        const byKey = await tx.query('SELECT id FROM sessions WHERE key = $1', [r.key]);
        if (byKey.rowCount > 0)
          throw errors.conflict(`a session with key '${r.key}' exists already`, {
            session_key: r.key,
          });
        throw errors.conflict(`a session with id '${r.id}' exists already`, { session_id: r.id });
      }
      case 'session.update': {
        const { rowCount } = await tx.query(
          `UPDATE sessions SET settings = $2, version = version + 1, updated_at = $4
           WHERE id = $1 AND version = $3`,
          [op.id, JSON.stringify(op.settings), op.expectVersion, op.now],
        );
        if (rowCount === 1) return;
        const current = (await tx.query('SELECT key, version FROM sessions WHERE id = $1', [op.id]))
          .rows[0];
        if (!current) throw errors.notFound('session', op.id);
        throw errors.conflict(
          `session '${String(current.key)}' changed concurrently (version ${String(current.version)}, expected ${op.expectVersion}); read it again`,
          { session_id: op.id, version: current.version, expected: op.expectVersion },
        );
      }
      case 'token.insert': {
        const p = tokenToParams(op.row);
        const { rowCount } = await tx.query(
          `INSERT INTO tokens (id, name, scopes, secret_hash, created_at, expires_at, revoked_at, last_used_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
          [
            p.id,
            p.name,
            p.scopes,
            p.secret_hash,
            p.created_at,
            p.expires_at,
            p.revoked_at,
            p.last_used_at,
          ],
        );
        if (rowCount === 1) return;
        throw errors.conflict(`a token with id '${op.row.id}' exists already`, {
          token_id: op.row.id,
        });
      }
      case 'token.revoke': {
        const { rowCount } = await tx.query(
          'UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL',
          [op.id, op.now],
        );
        if (rowCount === 1) return;
        const current = (await tx.query('SELECT revoked_at FROM tokens WHERE id = $1', [op.id]))
          .rows[0];
        if (!current) throw errors.notFound('token', op.id);
        throw errors.invalidState(`token ${op.id} is already revoked`, {
          token_id: op.id,
          revoked_at: current.revoked_at,
        });
      }
      case 'token.touch':
        await tx.query('UPDATE tokens SET last_used_at = $2 WHERE id = $1', [op.id, op.now]);
        return;
      case 'process.insert': {
        const p = processToParams(op.row);
        // Shared lock on the definition: a concurrent clean-up cannot delete it under this run.
        await pinWorkflow(tx, op.row.workflow_hash);
        await tx.query(
          `INSERT INTO workflows (hash, definition, created_at) VALUES ($1, $2, $3)
           ON CONFLICT (hash) DO NOTHING`,
          [op.row.workflow_hash, JSON.stringify(op.row.workflow), op.row.created_at],
        );
        const { rowCount } = await tx.query(
          `INSERT INTO processes (${PROCESS_COLUMNS.join(', ')})
           VALUES (${PROCESS_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT DO NOTHING`,
          PROCESS_COLUMNS.map((c) => p[c]),
        );
        if (rowCount === 1) return;
        throw errors.conflict(`a process with pid '${op.row.pid}' exists already`, {
          pid: op.row.pid,
        });
      }
      case 'process.update': {
        checkProcessUpdate(op);
        const p = processToParams(op.row);
        const { rowCount } = await tx.query(
          `UPDATE processes SET state = $2, priority = $3, quota = $4, usage = $5, envelope = $6,
             current_stage = $7, terminal_reason = $8, terminal_message = $9, version = $10,
             started_at = $11, updated_at = $12, completed_at = $13
           WHERE pid = $1 AND version = $14`,
          [
            p.pid,
            p.state,
            p.priority,
            p.quota,
            p.usage,
            p.envelope,
            p.current_stage,
            p.terminal_reason,
            p.terminal_message,
            p.version,
            p.started_at,
            p.updated_at,
            p.completed_at,
            op.expectVersion,
          ],
        );
        if (rowCount === 1) return;
        const current = (
          await tx.query('SELECT version FROM processes WHERE pid = $1', [op.row.pid])
        ).rows[0];
        if (!current) throw errors.notFound('process', op.row.pid);
        throw errors.conflict(
          `process ${op.row.pid} changed concurrently (version ${String(current.version)}, expected ${op.expectVersion}); retry`,
          { pid: op.row.pid, version: current.version, expected: op.expectVersion },
        );
      }
      case 'interrupt.insert': {
        const p = interruptToParams(op.row);
        await tx.query(
          `INSERT INTO interrupts (${INTERRUPT_COLUMNS.join(', ')})
           VALUES (${INTERRUPT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`,
          INTERRUPT_COLUMNS.map((c) => p[c]),
        );
        return;
      }
      case 'interrupt.settle': {
        const { rowCount } = await tx.query(
          `UPDATE interrupts SET status = $2, response = $3, resolver = $4, resolved_at = $5
           WHERE id = $1 AND status = 'pending'`,
          [op.id, op.status, toJson(op.response), op.resolver, op.now],
        );
        if (rowCount === 1) return;
        const current = (await tx.query('SELECT status FROM interrupts WHERE id = $1', [op.id]))
          .rows[0];
        if (!current) throw errors.notFound('interrupt', op.id);
        throw errors.invalidState(`interrupt ${op.id} is already ${String(current.status)}`, {
          id: op.id,
          status: current.status,
        });
      }
      case 'effect.insert':
        return effectOps.insert(tx, op);
      case 'effect.transition':
        return effectOps.transition(tx, op);
      case 'rate.take':
        return rateOps.take(tx, op.key, op.limits, op.now);
      case 'event':
        tx.append(op.event);
        return;
      case 'policy.version':
      case 'grant.create':
      case 'grant.revoke':
      case 'grant.use':
      case 'audit.append':
      case 'quarantine.add':
      case 'kv.set':
      case 'kv.delete':
        return security.applySecurityOp(tx, op);
      default:
        return taskOps.apply(tx, op);
    }
  }

  // ---------------------------------------------------------------- queue

  claimTasks(request: ClaimRequest): Promise<ClaimedTask[]> {
    return this.#transact((tx) => taskOps.claim(tx, request), false);
  }

  submitTasks(request: SubmitRequest): Promise<SubmitResult[]> {
    return this.#transact((tx) => taskOps.submit(tx, request));
  }

  settleTasks(items: readonly TaskSettle[]): Promise<SettleOutcome[]> {
    return this.#transact((tx) => taskOps.settle(tx, items));
  }

  settleAndClaim(
    items: readonly TaskSettle[],
    claims: readonly ClaimRequest[],
  ): Promise<{ settled: SettleOutcome[]; claimed: ClaimedTask[] }> {
    return this.#transact(async (tx) => {
      const settled = await taskOps.settle(tx, items);
      const claimed: ClaimedTask[] = [];
      for (const request of claims) claimed.push(...(await taskOps.claim(tx, request)));
      return { settled, claimed };
    });
  }

  heartbeat(taskId: string, leaseToken: string, leaseMs: number, now: number): Promise<number> {
    return this.#transact(async (tx) => {
      const lost = await taskOps.heartbeat(tx, [{ id: taskId, leaseToken }], leaseMs, now);
      if (lost.length > 0) throw await taskOps.leaseLost(tx, taskId);
      return now + leaseMs;
    }, false);
  }

  heartbeatTasks(
    items: ReadonlyArray<{ id: string; leaseToken: string }>,
    leaseMs: number,
    now: number,
  ): Promise<string[]> {
    return this.#transact((tx) => taskOps.heartbeat(tx, items, leaseMs, now), false);
  }

  countQueued(lane: string): Promise<number> {
    return this.#read(() => taskOps.countQueued(this.#reader, lane));
  }
  queueDepths(): Promise<Record<string, number>> {
    return this.#read(() => taskOps.queueDepths(this.#reader));
  }
  nextDue(lanes: readonly string[], kinds?: readonly TaskKind[]): Promise<number | null> {
    return this.#read(() => taskOps.nextDue(this.#reader, lanes, kinds));
  }
  listLanes(): Promise<LaneRecord[]> {
    return this.#read(() => taskOps.listLanes(this.#reader));
  }
  listServices(): Promise<ServiceRecord[]> {
    return this.#read(() => taskOps.listServices(this.#reader));
  }
  rateUsage(now: number): Promise<Record<string, number>> {
    return this.#read(() => rateOps.usage(this.#reader, now));
  }
  nextLeaseExpiry(kinds?: readonly TaskKind[]): Promise<number | null> {
    return this.#read(() => taskOps.nextLeaseExpiry(this.#reader, kinds));
  }
  listSchedules(): Promise<ScheduleRecord[]> {
    return this.#read(() => taskOps.listSchedules(this.#reader));
  }
  listDueSchedules(now: number): Promise<ScheduleRecord[]> {
    return this.#read(() => taskOps.listDueSchedules(this.#reader, now));
  }
  fireSchedule(fire: ScheduleFire): Promise<TaskRecord | null> {
    return this.#transact((tx) => taskOps.fireSchedule(tx, fire));
  }
  deferSchedule(defer: ScheduleDefer): Promise<ScheduleRecord | null> {
    return this.#transact((tx) => taskOps.deferSchedule(tx, defer));
  }
  findExpiredLeases(
    now: number,
    deadOwners: readonly string[] = [],
    limit = 1_000,
    kinds?: readonly TaskKind[],
  ): Promise<TaskRecord[]> {
    return this.#read(() => {
      rowLimit('findExpiredLeases limit', limit, 1_000);
      return taskOps.findExpiredLeases(this.#reader, now, deadOwners, limit, kinds);
    });
  }
  sessionRunStamps(): Promise<SessionRunStamp[]> {
    return this.#read(
      async () =>
        (await this.#query(
          `SELECT session_id, count(*)::float8 AS runs, sum(version)::float8 AS version_sum,
             sum(updated_at)::float8 AS updated_at_sum FROM processes GROUP BY session_id`,
        )) as unknown as SessionRunStamp[],
    );
  }

  listLeaseOwners(): Promise<string[]> {
    return this.#read(() => taskOps.listLeaseOwners(this.#reader));
  }

  // ---------------------------------------------------------------- reads

  getSession(id: string): Promise<SessionRecord | undefined> {
    return this.#read(async () => {
      checkReadId('Store.getSession', 'id', id);
      return optional(
        await this.#query('SELECT * FROM sessions WHERE id = $1', [id]),
        sessionFromRow,
      );
    });
  }
  getSessionByKey(key: string): Promise<SessionRecord | undefined> {
    return this.#read(async () => {
      checkReadId('Store.getSessionByKey', 'key', key);
      return optional(
        await this.#query('SELECT * FROM sessions WHERE key = $1', [key]),
        sessionFromRow,
      );
    });
  }
  listSessions(): Promise<SessionRecord[]> {
    return this.#read(async () =>
      (await this.#query('SELECT * FROM sessions ORDER BY created_at, id')).map(sessionFromRow),
    );
  }
  deleteSession(input: DeleteSessionInput): Promise<DeleteSessionCounts> {
    try {
      checkParams('Store.deleteSession', deleteSessionArgs, { input });
    } catch (error) {
      return Promise.reject(coerceError(error));
    }
    return this.#transact((tx) => sessionDeleteOps.delete(tx, input));
  }
  getToken(id: string): Promise<TokenRecord | undefined> {
    return this.#read(async () => {
      checkReadId('Store.getToken', 'id', id);
      return optional(await this.#query('SELECT * FROM tokens WHERE id = $1', [id]), tokenFromRow);
    });
  }
  listTokens(): Promise<TokenRecord[]> {
    return this.#read(async () =>
      (await this.#query('SELECT * FROM tokens ORDER BY created_at, id')).map(tokenFromRow),
    );
  }
  getProcess(pid: string): Promise<ProcessRecord | undefined> {
    return this.#read(async () => {
      checkReadId('Store.getProcess', 'pid', pid);
      const row = (await this.#query('SELECT * FROM processes WHERE pid = $1', [pid]))[0];
      return row && processFromRow(row, await this.#workflow(row.workflow_hash as string));
    });
  }

  /** A workflow definition by content hash, parsed once and kept (it never changes). */
  async #workflow(hash: string): Promise<ProcessRecord['workflow']> {
    let workflow = this.#workflows.get(hash);
    if (workflow) return workflow;
    const row = (
      await this.#query<{ definition: string }>(
        'SELECT definition FROM workflows WHERE hash = $1',
        [hash],
      )
    )[0];
    if (!row) throw new WardenError('STORE_CORRUPT', `the workflow ${hash} of a run is missing`);
    workflow = deepFreeze(JSON.parse(row.definition) as ProcessRecord['workflow']);
    if (this.#workflows.size >= WORKFLOW_CACHE)
      this.#workflows.delete(this.#workflows.keys().next().value!);
    this.#workflows.set(hash, workflow);
    return workflow;
  }

  async #list(
    table: 'processes' | 'tasks' | 'interrupts',
    conditions: ReadonlyArray<Condition | null>,
    limit: number | undefined,
  ): Promise<Row[]> {
    const max = rowLimit(`list ${table} limit`, limit, 1_000);
    const used = conditions.filter((c): c is Condition => c !== null);
    const values: unknown[] = [];
    const where = used.map((c) => {
      values.push(c.value);
      return c.sql(`$${values.length}`);
    });
    values.push(max);
    const order = table === 'processes' ? 'created_at, pid' : 'created_at, id';
    return this.#query(
      `SELECT * FROM ${table} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY ${order} LIMIT $${values.length}`,
      values,
    );
  }

  listProcesses(filter: ProcessFilter = {}): Promise<ProcessRecord[]> {
    return this.#read(async () => {
      checkParams('Store.listProcesses', processFilterArgs, { filter });
      const rows = await this.#list(
        'processes',
        [inList('state', filter.states), eq('session_id', filter.sessionId)],
        filter.limit,
      );
      const out: ProcessRecord[] = [];
      for (const row of rows)
        out.push(processFromRow(row, await this.#workflow(row.workflow_hash as string)));
      return out;
    });
  }
  getTask(id: string): Promise<TaskRecord | undefined> {
    return this.#read(async () => {
      checkReadId('Store.getTask', 'id', id);
      return optional(await this.#query('SELECT * FROM tasks WHERE id = $1', [id]), taskFromRow);
    });
  }
  listTasks(filter: TaskFilter = {}): Promise<TaskRecord[]> {
    return this.#read(async () => {
      checkParams('Store.listTasks', taskFilterArgs, { filter });
      return (
        await this.#list(
          'tasks',
          [
            inList('state', filter.states),
            eq('lane', filter.lane),
            eq('process_id', filter.processId),
          ],
          filter.limit,
        )
      ).map(taskFromRow);
    });
  }
  listAttempts(taskId: string): Promise<AttemptRecord[]> {
    return this.#read(async () => {
      checkReadId('Store.listAttempts', 'taskId', taskId);
      return taskOps.listAttempts(this.#reader, taskId);
    });
  }
  getInterrupt(id: string): Promise<InterruptRecord | undefined> {
    return this.#read(async () => {
      checkReadId('Store.getInterrupt', 'id', id);
      return optional(
        await this.#query('SELECT * FROM interrupts WHERE id = $1', [id]),
        interruptFromRow,
      );
    });
  }
  listInterrupts(filter: InterruptFilter = {}): Promise<InterruptRecord[]> {
    return this.#read(async () => {
      checkParams('Store.listInterrupts', interruptFilterArgs, { filter });
      return (
        await this.#list(
          'interrupts',
          [eq('status', filter.status), eq('process_id', filter.processId)],
          filter.limit,
        )
      ).map(interruptFromRow);
    });
  }
  findExpiredInterrupts(now: number): Promise<InterruptRecord[]> {
    return this.#read(async () =>
      (
        await this.#query(
          `SELECT * FROM interrupts WHERE status = 'pending' AND expires_at IS NOT NULL
             AND expires_at <= $1 ORDER BY expires_at`,
          [now],
        )
      ).map(interruptFromRow),
    );
  }
  countPendingInterrupts(): Promise<number> {
    return this.#read(
      async () =>
        (
          await this.#query<{ n: number }>(
            `SELECT count(*) AS n FROM interrupts WHERE status = 'pending'`,
          )
        )[0]!.n,
    );
  }
  nextInterruptExpiry(): Promise<number | null> {
    return this.#read(
      async () =>
        (
          await this.#query<{ t: number | null }>(
            `SELECT min(expires_at) AS t FROM interrupts WHERE status = 'pending' AND expires_at IS NOT NULL`,
          )
        )[0]!.t,
    );
  }
  readEvents(query: EventQuery): Promise<EventRecord[]> {
    return this.#read(async () => {
      checkParams('Store.readEvents', eventQueryArgs, { query });
      return retentionOps.readEvents(this.#reader, query);
    });
  }
  openSnapshot(): Promise<StoreSnapshot> {
    return this.#read(async () => {
      this.#assertOpen();
      return snapshotOps.open(this.#pool, this.where);
    });
  }
  hasPrunable(policy: RetentionPolicy): Promise<boolean> {
    return this.#read(() => retentionOps.hasPrunable(this.#reader, policy));
  }
  prune(input: PruneInput): Promise<PruneResult> {
    try {
      rowLimit('prune limit', input.limit, 0);
    } catch (error) {
      return Promise.reject(coerceError(error));
    }
    return this.#transact((tx) => retentionOps.prune(tx, input));
  }
  countByState(): Promise<{ processes: Record<string, number>; tasks: Record<string, number> }> {
    return this.#read(async () => {
      const fold = (rows: Array<{ state: string; n: number }>) =>
        Object.fromEntries(rows.map((r) => [r.state, r.n]));
      return {
        processes: fold(
          await this.#query('SELECT state, count(*) AS n FROM processes GROUP BY state'),
        ),
        tasks: fold(await this.#query('SELECT state, count(*) AS n FROM tasks GROUP BY state')),
      };
    });
  }
  getEffect(key: string): Promise<EffectRecord | undefined> {
    return this.#read(async () => {
      checkReadId('Store.getEffect', 'key', key);
      return effectOps.get(this.#reader, key);
    });
  }

  // ---------------------------------------------------------------- security entities

  getPolicyVersion(id: string): Promise<PolicyVersionRecord | undefined> {
    return this.#read(async () => {
      checkReadId('Store.getPolicyVersion', 'id', id);
      return security.getPolicyVersion(this.#reader, id);
    });
  }
  activePolicyVersion(): Promise<PolicyVersionRecord | null> {
    return this.#read(() => security.activePolicyVersion(this.#reader));
  }
  listPolicyVersions(filter: PolicyVersionFilter = {}): Promise<PolicyVersionRecord[]> {
    return this.#read(async () => {
      checkParams('Store.listPolicyVersions', policyVersionFilterArgs, { filter });
      return security.listPolicyVersions(this.#reader, filter.limit);
    });
  }
  getGrant(id: string): Promise<GrantRecord | undefined> {
    return this.#read(async () => {
      checkReadId('Store.getGrant', 'id', id);
      return security.getGrant(this.#reader, id);
    });
  }
  listGrants(filter: GrantFilter = {}): Promise<GrantRecord[]> {
    return this.#read(async () => {
      checkParams('Store.listGrants', grantFilterArgs, { filter });
      return security.listGrants(this.#reader, filter);
    });
  }
  readAudit(query: AuditQuery = {}): Promise<AuditRecord[]> {
    return this.#read(async () => {
      checkParams('Store.readAudit', auditQueryArgs, { query });
      return security.readAudit(this.#reader, query);
    });
  }
  verifyAudit(): Promise<AuditVerification> {
    return this.#read(() => security.verifyAudit(this.#reader));
  }
  getQuarantine(id: string): Promise<QuarantineRecord | undefined> {
    return this.#read(async () => {
      checkReadId('Store.getQuarantine', 'id', id);
      return security.getQuarantine(this.#reader, id);
    });
  }
  listQuarantine(filter: QuarantineFilter = {}): Promise<QuarantineRecord[]> {
    return this.#read(async () => {
      checkParams('Store.listQuarantine', quarantineFilterArgs, { filter });
      return security.listQuarantine(this.#reader, filter);
    });
  }
  kvGet(namespace: string, key: string): Promise<KvValue | null> {
    return this.#read(async () => {
      checkParams('Store.kvGet', kvGetArgs, { namespace, key });
      return security.kvGet(this.#reader, namespace, key);
    });
  }
  kvList(namespace: string, options: KvListOptions = {}): Promise<KvEntry[]> {
    return this.#read(async () => {
      checkParams('Store.kvList', kvListArgs, { namespace, options });
      return security.kvList(this.#reader, namespace, options);
    });
  }

  // ---------------------------------------------------------------- change and lifecycle

  watchChanges(listener: () => void): () => void {
    return this.#notifications.subscribe(listener);
  }

  get writeTransactions(): number {
    return this.#writes;
  }

  onCommit(listener: CommitListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** One try, no retries: a health probe answers at once, also while the server is down. */
  async health(deep = false): Promise<StoreHealth> {
    this.#assertOpen();
    try {
      const { rows } = await this.#pool.query<{ version: number }>(
        'SELECT max(version) AS version FROM warden_migrations',
      );
      const version = rows[0]?.version ?? 0;
      const ok = version === latestVersion(POSTGRES_MIGRATIONS);
      const detail = deep
        ? `schema ${this.schema} version ${version}; listening: ${this.#notifications.listening}`
        : 'open';
      return { ok, schemaVersion: version, durability: this.durability, detail };
    } catch (error) {
      return {
        ok: false,
        schemaVersion: this.schemaVersion,
        durability: this.durability,
        detail: `unreachable: ${pgWardenError(error, this.where).message}`,
      };
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.clock.close();
    this.#listeners.clear();
    await this.#notifications.close();
    await this.#pool.end().catch(() => undefined);
  }
}

const PROCESS_COLUMNS = [
  'pid',
  'session_id',
  'user_id',
  'parent_pid',
  'workflow_name',
  'workflow_hash',
  'source',
  'state',
  'priority',
  'quota',
  'usage',
  'envelope',
  'current_stage',
  'terminal_reason',
  'terminal_message',
  'trace_id',
  'version',
  'created_at',
  'started_at',
  'updated_at',
  'completed_at',
] as const;

const INTERRUPT_COLUMNS = [
  'id',
  'session_id',
  'process_id',
  'kind',
  'stage',
  'step',
  'prompt',
  'data',
  'status',
  'response',
  'resolver',
  'trace_id',
  'created_at',
  'expires_at',
  'resolved_at',
] as const;

interface Condition {
  readonly sql: (placeholder: string) => string;
  readonly value: unknown;
}

function eq(column: string, value: string | undefined): Condition | null {
  return value === undefined || value === '' ? null : { sql: (p) => `${column} = ${p}`, value };
}

function inList(column: string, values: readonly string[] | undefined): Condition | null {
  return values?.length ? { sql: (p) => `${column} = ANY(${p})`, value: values } : null;
}

function optional<T>(rows: Row[], map: (r: Row) => T): T | undefined {
  return rows.length === 0 ? undefined : map(rows[0]!);
}

function backoff(attempt: number): number {
  const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!;
  return base + Math.floor(Math.random() * base);
}

/** Runs `fn`, retrying connection failures (a server still starting) until `retryMs`. */
async function withRetry<T>(retryMs: number, where: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + retryMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof WardenError) throw error;
      const failure = classifyPgError(error);
      if ((failure !== 'connection' && failure !== 'retry') || Date.now() >= deadline)
        throw pgWardenError(error, where);
      await sleep(backoff(attempt));
    }
  }
}
