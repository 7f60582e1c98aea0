/**
 * The embedded SQLite adapter of the Store port, on better-sqlite3.
 *
 * - WAL journal; `synchronous` is set explicitly per durability mode: `fast` = NORMAL (survives a
 *   process crash), `strict` = FULL (survives power loss).
 * - Every write runs in a `BEGIN IMMEDIATE` transaction, so writers from several processes queue
 *   on the database lock (with a busy timeout) instead of failing mid-transaction.
 * - Statements are prepared once at open.
 * - Opening asks first whether this process can write the database. If not, a writer is refused
 *   (STORE_READ_ONLY) and a reader (`intent: 'read'`) gets a read-only store that writes
 *   nothing at all (read-only-open.ts); SQLite never touches a file it could only half use.
 * - better-sqlite3 is synchronous; the port is async so a networked adapter can implement it.
 *   A call runs to completion before it returns, so transactions never interleave in-process.
 */
import { existsSync, statSync } from 'node:fs';

import Database from 'better-sqlite3';

import {
  checkParams,
  type Clock,
  coerceError,
  deepFreeze,
  errors,
  systemClock,
  TASK_KINDS,
  type TaskKind,
  WardenError,
} from '../../core/index.ts';
import type {
  AuditRecord,
  GrantRecord,
  PolicyVersionRecord,
  QuarantineRecord,
} from '../../core/policy/types.ts';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite.ts';
import {
  checkReadId,
  deleteSessionArgs,
  eventQueryArgs,
  interruptFilterArgs,
  openSqliteStoreArgs,
  processFilterArgs,
  taskFilterArgs,
} from '../params.ts';
import { checkProcessUpdate } from '../process-rules.ts';
import { rowLimit } from '../row-limit.ts';
import {
  attemptFromRow,
  interruptFromRow,
  interruptToParams,
  processFromRow,
  processToParams,
  type Row,
  scheduleFromRow,
  scheduleToParams,
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
import {
  cancelMissedError,
  handoffRefusedError,
  leaseLostError,
  notDeadError,
} from '../task-errors.ts';
import { claimedEvent } from '../task-events.ts';
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
  StoreLocation,
  StoreOp,
  StoreSnapshot,
  SubmitRequest,
  SubmitResult,
  TaskFilter,
  TaskRecord,
  TaskSettle,
  TokenRecord,
} from '../types.ts';
import { ChangeWatcher } from './change-watcher.ts';
import { classifySqliteError } from './driver-errors.ts';
import {
  getEffect,
  insertEffect,
  prepareEffectStatements,
  transitionEffect,
} from './effect-writes.ts';
import { type EventBatch, EventLog } from './event-log.ts';
import { checkCompatible, migrate } from './migrate.ts';
import { rateUsage, takeRate } from './rate-writes.ts';
import { checkAccess, openReadOnly, refuseWriter, type StoreIntent } from './read-only-open.ts';
import { EventReader, RetentionSql } from './retention.ts';
import * as security from './security-writes.ts';
import { SessionDeleteSql } from './session-delete.ts';
import { SqliteSnapshot } from './snapshot.ts';
import { SQL, type StatementName } from './statements.ts';
import {
  claimTasks,
  deferSchedule,
  fireSchedule,
  insertTasks,
  settleOne,
  settleTasks,
  submitTasks,
} from './task-writes.ts';
import { readOnlyError, type WriteAccessProblem } from './write-access.ts';
import { WriteQueue } from './write-queue.ts';

export interface SqliteStoreOptions {
  /** Database file path, or `:memory:`. Its directory is created when missing. */
  readonly file: string;
  /** @default 'fast' */
  readonly durability?: Durability;
  /** @default systemClock */
  readonly clock?: Clock;
  /**
   * How long a writer waits for another process's lock before STORE_BUSY. The wait is
   * asynchronous (short synchronous slices with pauses between), so a busy database does not
   * block this process's event loop for long. @default 5000
   */
  readonly busyTimeoutMs?: number;
  /** Refuse to create a new database file. @default false */
  readonly mustExist?: boolean;
  /**
   * `'write'`: the database must be writable (or creatable); STORE_READ_ONLY when this process
   * cannot write it (a file whose header shows it is not a usable Warden database — not SQLite,
   * another application's, a newer Warden's — is reported as such first).
   * `'read'`: for callers that only read. A writable database opens as for `'write'`; one this
   * process cannot write (file, directory, `-wal` or `-shm` read-only) opens read-only instead
   * ({@link SqliteStore.readOnly}): nothing on disk is created or changed, every write fails
   * with STORE_READ_ONLY, and a schema that would need migrating is refused with
   * STORE_READ_ONLY. See read-only-open.ts for how it is read. @default 'write'
   */
  readonly intent?: StoreIntent;
}

/** How a read-only store reads (see read-only-open.ts). */
interface ReadOnlyMode {
  /** Why this process cannot write the database, for STORE_READ_ONLY. */
  readonly problem: WriteAccessProblem;
  /** True when the store reads an in-memory copy of the file. */
  readonly copy: boolean;
}

/** Parsed workflow definitions kept per store (see SqliteStore#workflow). */
const WORKFLOW_CACHE = 256;

/** Longest synchronous wait for a lock (the event loop is blocked meanwhile). */
const LOCK_SLICE_MS = 20;

/** Past this WAL size the store checkpoints inline (background checkpoints normally keep it small). */
const WAL_LIMIT_BYTES = 32 * 1_048_576;

/**
 * Opens (creating and migrating unless `mustExist`) a SQLite store. INVALID_PARAMS naming the
 * option for a bad one; see SqliteStore.open for the store's own errors.
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  checkParams('openSqliteStore', openSqliteStoreArgs, { options });
  return Promise.resolve(SqliteStore.open(options));
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly durability: Durability;
  readonly file: string;
  readonly schemaVersion: number;
  readonly location: StoreLocation | null;
  readonly readOnly: boolean;
  readonly #readOnly: ReadOnlyMode | null;
  readonly #db: Database.Database;
  readonly #clock: Clock;
  readonly #stmt: { [K in StatementName]: Database.Statement };
  readonly #listeners = new Set<CommitListener>();
  readonly #log: EventLog;
  readonly #workflows = new Map<string, ProcessRecord['workflow']>();
  /** `#list` statements by SQL text: a handful of filter shapes, prepared once each. */
  readonly #listStatements = new Map<string, Database.Statement>();
  readonly #writes: WriteQueue;
  readonly #changes: ChangeWatcher;
  readonly #events: EventReader;
  readonly #retention: RetentionSql;
  readonly #sessionDelete: SessionDeleteSql;
  readonly #busyTimeoutMs: number;
  #sinceWalCheck = 0;
  #closed = false;

  static open(options: SqliteStoreOptions): SqliteStore {
    const file = options.file;
    const clock = options.clock ?? systemClock;
    const durability = options.durability ?? 'fast';
    const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
    let db: Database.Database | undefined;
    try {
      // Asked before SQLite touches the file: a refused database is left exactly as it was.
      const problem = file === ':memory:' ? null : checkAccess(file, options.mustExist ?? false);
      if (problem) {
        if ((options.intent ?? 'write') === 'write') refuseWriter(file, problem);
        const readOnly = openReadOnly(file, problem, { busyTimeoutMs, lockSliceMs: LOCK_SLICE_MS });
        db = readOnly.db;
        return new SqliteStore(db, file, durability, clock, readOnly.version, busyTimeoutMs, {
          problem,
          copy: readOnly.copy,
        });
      }
      db = new Database(file, {
        fileMustExist: options.mustExist ?? false,
        timeout: busyTimeoutMs,
      });
      // Refuse foreign, newer or altered databases before anything writes to the file.
      checkCompatible(db, SQLITE_MIGRATIONS, file);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${durability === 'strict' ? 'FULL' : 'NORMAL'}`);
      db.pragma('foreign_keys = ON');
      db.pragma('temp_store = MEMORY');
      // 64 MiB page cache: the hot queue rows and their indexes stay in memory (measured ~10% on claims).
      db.pragma('cache_size = -65536');
      // Checkpoints never run inside a commit (they cost the committer milliseconds, measured as
      // the whole idle-latency p99): a worker's heartbeat thread checkpoints in the background,
      // the store checkpoints itself only past WAL_LIMIT_BYTES, and close() truncates the WAL.
      db.pragma('wal_autocheckpoint = 0');
      // A WAL that was checkpointed and restarts from its beginning is cut back to this size, so
      // the file's size says how much is waiting (the bound in #boundWal reads it).
      db.pragma(`journal_size_limit = ${WAL_LIMIT_BYTES}`);
      const version = migrate(db, SQLITE_MIGRATIONS, file, clock.now());
      // From here on SQLite waits for another process's lock only a short slice at a time (it
      // waits synchronously, blocking the event loop); the write queue waits out the rest
      // asynchronously, up to busyTimeoutMs.
      db.pragma(`busy_timeout = ${LOCK_SLICE_MS}`);
      return new SqliteStore(db, file, durability, clock, version, busyTimeoutMs, null);
    } catch (error) {
      db?.close();
      if (error instanceof WardenError) throw error;
      if (
        (error as { code?: string }).code === 'SQLITE_CANTOPEN' &&
        options.mustExist &&
        !existsSync(file)
      ) {
        throw new WardenError(
          'NOT_FOUND',
          `no Warden database at ${file}; run 'warden init' or check --db`,
          {
            cause: error,
            details: { file },
          },
        );
      }
      throw (
        classifySqliteError(error, file) ??
        new WardenError('INTERNAL', `cannot open ${file}: ${String(error)}`, { cause: error })
      );
    }
  }

  private constructor(
    db: Database.Database,
    file: string,
    durability: Durability,
    clock: Clock,
    schemaVersion: number,
    busyTimeoutMs: number,
    readOnly: ReadOnlyMode | null,
  ) {
    this.#db = db;
    this.#readOnly = readOnly;
    this.readOnly = readOnly !== null;
    this.#busyTimeoutMs = busyTimeoutMs;
    this.file = file;
    this.durability = durability;
    this.#clock = clock;
    this.schemaVersion = schemaVersion;
    this.location = file === ':memory:' ? null : { kind: 'sqlite', file, durability };
    const stmt = {} as { [K in StatementName]: Database.Statement };
    for (const [name, sql] of Object.entries(SQL)) stmt[name as StatementName] = db.prepare(sql);
    this.#stmt = stmt;
    this.#log = new EventLog(db, stmt, clock);
    prepareEffectStatements(db);
    this.#writes = new WriteQueue(db, file, durability === 'strict', busyTimeoutMs);
    const dataVersion = db.prepare('PRAGMA data_version').pluck();
    this.#changes = new ChangeWatcher(
      // A copy never changes: only the store's own (refused) writes could announce anything.
      file === ':memory:' || readOnly?.copy ? null : file,
      // Prepared once: db.pragma() compiles its statement on every call, and this runs after
      // every commit this process hears about.
      () => dataVersion.get() as number,
    );
    this.#events = new EventReader(db);
    this.#retention = new RetentionSql(db);
    this.#sessionDelete = new SessionDeleteSql(db);
  }

  /**
   * Runs `fn` in a write transaction (group-committed in strict mode) with an event batch;
   * listeners hear the committed events after the commit.
   */
  #transact<T>(fn: (batch: EventBatch) => T, announce = false): Promise<T> {
    if (this.#closed) return Promise.reject(new WardenError('INTERNAL', 'the store is closed'));
    if (this.#readOnly)
      return Promise.reject(readOnlyError(this.file, { problem: this.#readOnly.problem }));
    return this.#writes
      .run(() => {
        const batch = this.#log.batch();
        const value = fn(batch);
        return { value, events: this.#log.finish(batch) };
      })
      .then(({ value, events }) => {
        this.#notify(events);
        if (announce && events.length === 0) this.#changes.notifyLocal();
        if (++this.#sinceWalCheck >= 256) this.#boundWal();
        return value;
      });
  }

  #read<T>(fn: () => T): T {
    this.#assertOpen();
    try {
      return fn();
    } catch (error) {
      if (error instanceof WardenError) throw error;
      throw (
        classifySqliteError(error, this.file) ??
        new WardenError('INTERNAL', `store read failed: ${String(error)}`, { cause: error })
      );
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new WardenError('INTERNAL', 'the store is closed');
  }

  /** Safety valve when nobody checkpoints in the background: keep the WAL bounded. */
  #boundWal(): void {
    this.#sinceWalCheck = 0;
    if (!this.location) return;
    try {
      if (statSync(`${this.location.file}-wal`).size > WAL_LIMIT_BYTES) this.checkpoint('PASSIVE');
    } catch {
      // no WAL file yet, or it was just truncated
    }
  }

  /** Copies committed WAL frames into the database file without blocking writers. */
  checkpoint(mode: 'PASSIVE' | 'TRUNCATE' = 'PASSIVE'): void {
    if (this.#closed || this.#readOnly) return;
    try {
      this.#db.pragma(`wal_checkpoint(${mode})`);
    } catch {
      // busy: the next checkpoint catches up
    }
  }

  #notify(events: readonly EventRecord[]): void {
    if (events.length === 0) return;
    this.#changes.notifyLocal();
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch {
        // A listener's failure must not turn a committed write into an error.
      }
    }
  }

  commit(ops: readonly StoreOp[]): Promise<readonly EventRecord[]> {
    return this.#transact((batch) => {
      for (const op of ops) this.#apply(op, batch);
      return batch.out;
    }, ops.length > 0);
  }

  #apply(op: StoreOp, batch: EventBatch): void {
    const s = this.#stmt;
    switch (op.op) {
      case 'session.insert':
        if (s.sessionByKey.get(op.row.key))
          throw errors.conflict(`a session with key '${op.row.key}' exists already`, {
            session_key: op.row.key,
          });
        s.sessionInsert.run({ ...op.row, settings: JSON.stringify(op.row.settings) });
        return;
      case 'session.update': {
        const info = s.sessionUpdate.run({
          id: op.id,
          settings: JSON.stringify(op.settings),
          expect: op.expectVersion,
          now: op.now,
        });
        if (info.changes === 1) return;
        const current = s.sessionById.get(op.id) as Row | undefined;
        if (!current) throw errors.notFound('session', op.id);
        throw errors.conflict(
          `session '${String(current.key)}' changed concurrently (version ${String(current.version)}, expected ${op.expectVersion}); read it again`,
          { session_id: op.id, version: current.version, expected: op.expectVersion },
        );
      }
      case 'token.insert':
        if (s.tokenById.get(op.row.id))
          throw errors.conflict(`a token with id '${op.row.id}' exists already`, {
            token_id: op.row.id,
          });
        s.tokenInsert.run(tokenToParams(op.row));
        return;
      case 'token.revoke': {
        if (s.tokenRevoke.run({ id: op.id, now: op.now }).changes === 1) return;
        const current = s.tokenById.get(op.id) as Row | undefined;
        if (!current) throw errors.notFound('token', op.id);
        throw errors.invalidState(`token ${op.id} is already revoked`, {
          token_id: op.id,
          revoked_at: current.revoked_at,
        });
      }
      case 'token.touch':
        s.tokenTouch.run({ id: op.id, now: op.now });
        return;
      case 'process.insert':
        s.workflowInsert.run(
          op.row.workflow_hash,
          JSON.stringify(op.row.workflow),
          op.row.created_at,
        );
        s.processInsert.run(processToParams(op.row));
        return;
      case 'process.update': {
        checkProcessUpdate(op);
        const info = s.processUpdate.run({
          ...processToParams(op.row),
          expect_version: op.expectVersion,
        });
        if (info.changes === 1) return;
        const current = s.processById.get(op.row.pid) as Row | undefined;
        if (!current) throw errors.notFound('process', op.row.pid);
        throw errors.conflict(
          `process ${op.row.pid} changed concurrently (version ${String(current.version)}, expected ${op.expectVersion}); retry`,
          {
            pid: op.row.pid,
            version: current.version,
            expected: op.expectVersion,
          },
        );
      }
      case 'task.insert':
        insertTasks(this.#db, s, [op.row]);
        return;
      case 'task.settle': {
        if (!settleOne(s, op)) throw this.#leaseLost(op.id);
        return;
      }
      case 'task.cancel': {
        // A running attempt is recorded as canceled; the CAS below undoes it if the task moved.
        if (op.expectState === 'running' && op.leaseToken)
          s.attemptFromTask.run({
            id: op.id,
            token: op.leaseToken,
            now: op.now,
            outcome: 'canceled',
            error: null,
            expired_by: null,
          });
        const info = s.taskCancel.run({
          id: op.id,
          now: op.now,
          expect: op.expectState,
          token: op.expectState === 'running' ? op.leaseToken : null,
        });
        if (info.changes === 1) return;
        throw cancelMissedError(op.id, op.expectState, s.taskById.get(op.id) as Row | undefined);
      }
      case 'service.upsert':
        s.serviceUpsert.run({
          ...op.row,
          capabilities: JSON.stringify(op.row.capabilities),
        });
        return;
      case 'service.delete':
        s.serviceDelete.run(op.name);
        return;
      case 'rate.take':
        takeRate(this.#db, op.key, op.limits, op.now);
        return;
      case 'lane.upsert':
        s.laneUpsert.run({
          name: op.row.name,
          concurrency: op.row.concurrency,
          max_depth: op.row.max_depth,
          now: op.row.updated_at,
        });
        return;
      case 'task.handoff': {
        const expires = op.now + op.leaseMs;
        const row = s.taskHandoff.get({
          id: op.id,
          lane: op.lane,
          owner: op.workerId,
          token: op.leaseToken,
          expires,
          now: op.now,
          limit: 1,
          overtake: op.overtake ? 1 : 0,
        }) as { attempts: number } | undefined;
        if (!row) {
          if (!op.required) return;
          throw handoffRefusedError(op.id, op.lane);
        }
        const task = taskFromRow(s.taskById.get(op.id) as Row);
        this.#log.append(batch, claimedEvent(task, row.attempts, expires, op.workerId, true));
        return;
      }
      case 'task.fence': {
        const row = s.taskById.get(op.id) as Row | undefined;
        if (!row || row.state !== 'running' || row.lease_token !== op.leaseToken)
          throw this.#leaseLost(op.id);
        return;
      }
      case 'interrupt.insert':
        s.interruptInsert.run(interruptToParams(op.row));
        return;
      case 'interrupt.settle': {
        const info = s.interruptSettle.run({
          id: op.id,
          status: op.status,
          response: toJson(op.response),
          resolver: op.resolver,
          now: op.now,
        });
        if (info.changes === 1) return;
        const current = s.interruptById.get(op.id) as Row | undefined;
        if (!current) throw errors.notFound('interrupt', op.id);
        throw errors.invalidState(`interrupt ${op.id} is already ${String(current.status)}`, {
          id: op.id,
          status: current.status,
        });
      }
      case 'task.redrive': {
        const row = s.taskRedrive.get({ id: op.id, sort_key: op.sortKey, now: op.now }) as
          { n: number; attempts: number } | undefined;
        if (!row) throw this.#notDead(op.id, 'redrive');
        s.taskRedriveData.run(row);
        return;
      }
      case 'task.purge': {
        const row = s.taskPurge.get({ id: op.id }) as { n: number } | undefined;
        if (!row) throw this.#notDead(op.id, 'purge');
        s.taskDataDelete.run(row.n);
        s.attemptPurge.run(op.id);
        return;
      }
      case 'schedule.upsert':
        s.scheduleUpsert.run(scheduleToParams(op.row));
        return;
      case 'schedule.delete':
        if (s.scheduleDelete.run(op.name).changes !== 1) throw errors.notFound('schedule', op.name);
        return;
      case 'effect.insert':
        insertEffect(this.#db, op);
        return;
      case 'effect.transition':
        transitionEffect(this.#db, op);
        return;
      case 'event':
        this.#log.append(batch, op.event);
        return;
      case 'policy.version':
      case 'grant.create':
      case 'grant.revoke':
      case 'grant.use':
      case 'audit.append':
      case 'quarantine.add':
      case 'kv.set':
      case 'kv.delete':
        security.applySecurityOp(this.#db, op);
        return;
      default: {
        const never: never = op;
        throw new WardenError('INTERNAL', `unknown store op ${JSON.stringify(never)}`);
      }
    }
  }

  #notDead(taskId: string, action: 'redrive' | 'purge'): WardenError {
    return notDeadError(taskId, action, this.#stmt.taskById.get(taskId) as Row | undefined);
  }

  #leaseLost(taskId: string): WardenError {
    return leaseLostError(taskId, this.#stmt.taskById.get(taskId) as Row | undefined);
  }

  claimTasks(request: ClaimRequest): Promise<ClaimedTask[]> {
    return this.#transact((batch) => claimTasks(this.#stmt, this.#log, batch, request));
  }

  submitTasks(request: SubmitRequest): Promise<SubmitResult[]> {
    return this.#transact((batch) => submitTasks(this.#db, this.#stmt, this.#log, batch, request));
  }

  settleTasks(items: readonly TaskSettle[]): Promise<SettleOutcome[]> {
    return this.#transact((batch) =>
      settleTasks(this.#stmt, this.#log, batch, items, (id) => this.#leaseLost(id)),
    );
  }

  settleAndClaim(
    items: readonly TaskSettle[],
    claims: readonly ClaimRequest[],
  ): Promise<{ settled: SettleOutcome[]; claimed: ClaimedTask[] }> {
    return this.#transact((batch) => {
      const settled = settleTasks(this.#stmt, this.#log, batch, items, (id) => this.#leaseLost(id));
      const claimed: ClaimedTask[] = [];
      for (const request of claims)
        claimed.push(...claimTasks(this.#stmt, this.#log, batch, request));
      return { settled, claimed };
    });
  }

  heartbeatTasks(
    items: ReadonlyArray<{ id: string; leaseToken: string }>,
    leaseMs: number,
    now: number,
  ): Promise<string[]> {
    const expires = now + leaseMs;
    return this.#transact(() =>
      items
        .filter(
          (item) =>
            this.#stmt.taskHeartbeat.run({ id: item.id, token: item.leaseToken, expires, now })
              .changes !== 1,
        )
        .map((item) => item.id),
    );
  }

  queueDepths(): Promise<Record<string, number>> {
    return this.#async(() =>
      Object.fromEntries(
        (this.#stmt.taskDepths.all() as Array<{ lane: string; n: number }>).map((r) => [
          r.lane,
          r.n,
        ]),
      ),
    );
  }

  countQueued(lane: string): Promise<number> {
    return this.#async(() => (this.#stmt.taskCountQueued.get(lane) as { n: number }).n);
  }

  nextDue(lanes: readonly string[], kinds?: readonly TaskKind[]): Promise<number | null> {
    return this.#async(() => {
      const kindList = JSON.stringify(kinds ?? TASK_KINDS);
      let next: number | null = null;
      for (const lane of lanes) {
        const row = this.#stmt.taskNextDueWithRoom.get({ lane, kinds: kindList, limit: 1 }) as
          { t: number } | undefined;
        if (row && (next === null || row.t < next)) next = row.t;
      }
      return next;
    });
  }

  rateUsage(now: number): Promise<Record<string, number>> {
    return this.#async(() => rateUsage(this.#db, now));
  }

  listServices(): Promise<ServiceRecord[]> {
    return this.#async(() =>
      (this.#stmt.serviceList.all() as Array<Row & { capabilities: string }>).map((r) => ({
        ...(r as unknown as ServiceRecord),
        capabilities: JSON.parse(r.capabilities) as string[],
      })),
    );
  }

  listLanes(): Promise<LaneRecord[]> {
    return this.#async(() => this.#stmt.laneList.all() as LaneRecord[]);
  }

  nextLeaseExpiry(kinds?: readonly TaskKind[]): Promise<number | null> {
    const list = JSON.stringify(kinds ?? TASK_KINDS);
    return this.#async(
      () => (this.#stmt.taskNextLease.get({ kinds: list }) as { t: number } | undefined)?.t ?? null,
    );
  }

  listSchedules(): Promise<ScheduleRecord[]> {
    return this.#async(() => (this.#stmt.scheduleList.all() as Row[]).map(scheduleFromRow));
  }

  listDueSchedules(now: number): Promise<ScheduleRecord[]> {
    return this.#async(() => (this.#stmt.scheduleDue.all(now) as Row[]).map(scheduleFromRow));
  }

  fireSchedule(fire: ScheduleFire): Promise<TaskRecord | null> {
    return this.#transact((batch) => fireSchedule(this.#db, this.#stmt, this.#log, batch, fire));
  }

  deferSchedule(defer: ScheduleDefer): Promise<ScheduleRecord | null> {
    return this.#transact((batch) => deferSchedule(this.#stmt, this.#log, batch, defer));
  }

  heartbeat(taskId: string, leaseToken: string, leaseMs: number, now: number): Promise<number> {
    const expires = now + leaseMs;
    return this.#transact(() => {
      const info = this.#stmt.taskHeartbeat.run({ id: taskId, token: leaseToken, expires, now });
      if (info.changes !== 1) throw this.#leaseLost(taskId);
      return expires;
    });
  }

  findExpiredLeases(
    now: number,
    deadOwners: readonly string[] = [],
    limit = 1_000,
    kinds?: readonly TaskKind[],
  ): Promise<TaskRecord[]> {
    const list = JSON.stringify(kinds ?? TASK_KINDS);
    return this.#async(() => {
      rowLimit('findExpiredLeases limit', limit, 1_000);
      const rows = this.#stmt.taskExpired.all({ now, kinds: list, limit }) as Row[];
      for (const owner of deadOwners)
        rows.push(...(this.#stmt.taskByOwner.all({ owner, kinds: list, limit }) as Row[]));
      const seen = new Set<string>();
      return rows.map(taskFromRow).filter((t) => (seen.has(t.id) ? false : (seen.add(t.id), true)));
    });
  }

  sessionRunStamps(): Promise<SessionRunStamp[]> {
    return this.#async(() => this.#stmt.sessionRunStamps.all() as SessionRunStamp[]);
  }

  listLeaseOwners(): Promise<string[]> {
    return this.#async(() =>
      (this.#stmt.taskLeaseOwners.all() as Array<{ lease_owner: string }>).map(
        (r) => r.lease_owner,
      ),
    );
  }

  /** `SELECT * FROM <table> WHERE <conditions> ORDER BY created_at LIMIT <limit>`. */
  #list(
    table: 'process_rows' | 'tasks' | 'interrupts',
    conditions: ReadonlyArray<Condition | null>,
    limit: number | undefined,
  ): Row[] {
    const max = rowLimit(
      `list ${table === 'process_rows' ? 'processes' : table} limit`,
      limit,
      1_000,
    );
    const used = conditions.filter((c): c is Condition => c !== null);
    const where = used.length ? `WHERE ${used.map((c) => c.sql).join(' AND ')}` : '';
    const order = table === 'process_rows' ? 'created_at, pid' : 'created_at, id';
    const sql = `SELECT * FROM ${table} ${where} ORDER BY ${order} LIMIT ?`;
    let statement = this.#listStatements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      // Bounded: a state list's length is the only thing that varies freely.
      if (this.#listStatements.size >= 256) this.#listStatements.clear();
      this.#listStatements.set(sql, statement);
    }
    return statement.all(...used.flatMap((c) => c.params), max) as Row[];
  }

  /** Runs synchronous driver work and settles a promise with its result or its Warden error. */
  #async<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(this.#read(fn));
    } catch (error) {
      return Promise.reject(coerceError(error));
    }
  }

  getSession(id: string): Promise<SessionRecord | undefined> {
    return this.#async(() => {
      checkReadId('Store.getSession', 'id', id);
      return optional(this.#stmt.sessionById.get(id), sessionFromRow);
    });
  }
  getSessionByKey(key: string): Promise<SessionRecord | undefined> {
    return this.#async(() => {
      checkReadId('Store.getSessionByKey', 'key', key);
      return optional(this.#stmt.sessionByKey.get(key), sessionFromRow);
    });
  }
  listSessions(): Promise<SessionRecord[]> {
    return this.#async(() => (this.#stmt.sessionList.all() as Row[]).map(sessionFromRow));
  }
  deleteSession(input: DeleteSessionInput): Promise<DeleteSessionCounts> {
    try {
      // Checked before taking the write lock.
      checkParams('Store.deleteSession', deleteSessionArgs, { input });
    } catch (error) {
      return Promise.reject(coerceError(error));
    }
    return this.#transact((batch) =>
      this.#sessionDelete.delete(input, (event) => this.#log.append(batch, event)),
    );
  }
  getToken(id: string): Promise<TokenRecord | undefined> {
    return this.#async(() => {
      checkReadId('Store.getToken', 'id', id);
      return optional(this.#stmt.tokenById.get(id), tokenFromRow);
    });
  }
  listTokens(): Promise<TokenRecord[]> {
    return this.#async(() => (this.#stmt.tokenList.all() as Row[]).map(tokenFromRow));
  }
  getProcess(pid: string): Promise<ProcessRecord | undefined> {
    return this.#async(() => {
      checkReadId('Store.getProcess', 'pid', pid);
      const row = this.#stmt.processRowById.get(pid) as Row | undefined;
      return row && processFromRow(row, this.#workflow(row.workflow_hash as string));
    });
  }

  /**
   * A workflow definition by content hash, parsed once and kept (frozen: every run of it shares
   * the object). Definitions never change under their hash, so the cache is never stale.
   */
  #workflow(hash: string): ProcessRecord['workflow'] {
    let workflow = this.#workflows.get(hash);
    if (workflow) return workflow;
    const row = this.#stmt.workflowByHash.get(hash) as { definition: string } | undefined;
    if (!row) throw new WardenError('STORE_CORRUPT', `the workflow ${hash} of a run is missing`);
    workflow = deepFreeze(JSON.parse(row.definition) as ProcessRecord['workflow']);
    if (this.#workflows.size >= WORKFLOW_CACHE) {
      this.#workflows.delete(this.#workflows.keys().next().value!);
    }
    this.#workflows.set(hash, workflow);
    return workflow;
  }
  listProcesses(filter: ProcessFilter = {}): Promise<ProcessRecord[]> {
    return this.#async(() => {
      checkParams('Store.listProcesses', processFilterArgs, { filter });
      return this.#list(
        'process_rows',
        [inList('state', filter.states), eq('session_id', filter.sessionId)],
        filter.limit,
      ).map((row) => processFromRow(row, this.#workflow(row.workflow_hash as string)));
    });
  }
  getTask(id: string): Promise<TaskRecord | undefined> {
    return this.#async(() => {
      checkReadId('Store.getTask', 'id', id);
      return optional(this.#stmt.taskById.get(id), taskFromRow);
    });
  }
  listTasks(filter: TaskFilter = {}): Promise<TaskRecord[]> {
    return this.#async(() => {
      checkParams('Store.listTasks', taskFilterArgs, { filter });
      return this.#list(
        'tasks',
        [
          inList('state', filter.states),
          eq('lane', filter.lane),
          eq('process_id', filter.processId),
        ],
        filter.limit,
      ).map(taskFromRow);
    });
  }
  listAttempts(taskId: string): Promise<AttemptRecord[]> {
    return this.#async(() => {
      checkReadId('Store.listAttempts', 'taskId', taskId);
      const finished = (this.#stmt.attemptList.all(taskId) as Row[]).map(attemptFromRow);
      // Finished attempts are rows; the running one is read off the task itself.
      const row = this.#stmt.taskById.get(taskId) as Row | undefined;
      if (row?.state === 'running') {
        const task = taskFromRow(row);
        finished.push({
          task_id: task.id,
          attempt: task.attempts,
          lease_token: task.lease_token!,
          worker_id: task.lease_owner!,
          started_at: task.claimed_at ?? task.updated_at,
          ended_at: null,
          outcome: 'running',
          error: null,
        });
      }
      return finished;
    });
  }

  getInterrupt(id: string): Promise<InterruptRecord | undefined> {
    return this.#async(() => {
      checkReadId('Store.getInterrupt', 'id', id);
      return optional(this.#stmt.interruptById.get(id), interruptFromRow);
    });
  }
  listInterrupts(filter: InterruptFilter = {}): Promise<InterruptRecord[]> {
    return this.#async(() => {
      checkParams('Store.listInterrupts', interruptFilterArgs, { filter });
      return this.#list(
        'interrupts',
        [eq('status', filter.status), eq('process_id', filter.processId)],
        filter.limit,
      ).map(interruptFromRow);
    });
  }
  findExpiredInterrupts(now: number): Promise<InterruptRecord[]> {
    return this.#async(() => (this.#stmt.interruptExpired.all(now) as Row[]).map(interruptFromRow));
  }
  countPendingInterrupts(): Promise<number> {
    return this.#async(() => (this.#stmt.interruptCountPending.get() as { n: number }).n);
  }
  nextInterruptExpiry(): Promise<number | null> {
    return this.#async(() => (this.#stmt.interruptNextExpiry.get() as { t: number | null }).t);
  }
  readEvents(query: EventQuery): Promise<EventRecord[]> {
    return this.#async(() => {
      checkParams('Store.readEvents', eventQueryArgs, { query });
      return this.#events.read(query);
    });
  }
  /**
   * See snapshot.ts: a second read-only connection, or a copy of a `:memory:` database (or of
   * the in-memory copy a read-only store reads).
   */
  openSnapshot(): Promise<StoreSnapshot> {
    return this.#async(() =>
      SqliteSnapshot.open(
        this.location && !this.#readOnly?.copy
          ? { file: this.location.file, busyTimeoutMs: this.#busyTimeoutMs }
          : { image: this.#db.serialize() },
      ),
    );
  }
  hasPrunable(policy: RetentionPolicy): Promise<boolean> {
    return this.#async(() => this.#retention.hasPrunable(policy));
  }
  prune(input: PruneInput): Promise<PruneResult> {
    try {
      rowLimit('prune limit', input.limit, 0); // checked before taking the write lock
    } catch (error) {
      return Promise.reject(coerceError(error));
    }
    return this.#transact((batch) =>
      this.#retention.prune(input, (event) => this.#log.append(batch, event)),
    );
  }
  countByState(): Promise<{ processes: Record<string, number>; tasks: Record<string, number> }> {
    return this.#async(() => {
      const fold = (rows: unknown[]) =>
        Object.fromEntries(
          (rows as Array<{ state: string; n: number }>).map((r) => [r.state, r.n]),
        );
      return {
        processes: fold(this.#stmt.countProcesses.all()),
        tasks: fold(this.#stmt.countTasks.all()),
      };
    });
  }

  getEffect(key: string): Promise<EffectRecord | undefined> {
    return this.#async(() => {
      checkReadId('Store.getEffect', 'key', key);
      return getEffect(this.#db, key);
    });
  }

  getPolicyVersion(id: string): Promise<PolicyVersionRecord | undefined> {
    return this.#async(() => {
      checkReadId('Store.getPolicyVersion', 'id', id);
      return security.getPolicyVersion(this.#db, id);
    });
  }
  activePolicyVersion(): Promise<PolicyVersionRecord | null> {
    return this.#async(() => security.activePolicyVersion(this.#db));
  }
  listPolicyVersions(filter: PolicyVersionFilter = {}): Promise<PolicyVersionRecord[]> {
    return this.#async(() => {
      checkParams('Store.listPolicyVersions', policyVersionFilterArgs, { filter });
      return security.listPolicyVersions(this.#db, filter.limit);
    });
  }
  getGrant(id: string): Promise<GrantRecord | undefined> {
    return this.#async(() => {
      checkReadId('Store.getGrant', 'id', id);
      return security.getGrant(this.#db, id);
    });
  }
  listGrants(filter: GrantFilter = {}): Promise<GrantRecord[]> {
    return this.#async(() => {
      checkParams('Store.listGrants', grantFilterArgs, { filter });
      return security.listGrants(this.#db, filter);
    });
  }
  readAudit(query: AuditQuery = {}): Promise<AuditRecord[]> {
    return this.#async(() => {
      checkParams('Store.readAudit', auditQueryArgs, { query });
      return security.readAudit(this.#db, query);
    });
  }
  verifyAudit(): Promise<AuditVerification> {
    // Reads page by page, each through #read (closed store, driver errors).
    return security.verifyAudit(this.#db, (fn) => this.#read(fn));
  }
  getQuarantine(id: string): Promise<QuarantineRecord | undefined> {
    return this.#async(() => {
      checkReadId('Store.getQuarantine', 'id', id);
      return security.getQuarantine(this.#db, id);
    });
  }
  listQuarantine(filter: QuarantineFilter = {}): Promise<QuarantineRecord[]> {
    return this.#async(() => {
      checkParams('Store.listQuarantine', quarantineFilterArgs, { filter });
      return security.listQuarantine(this.#db, filter);
    });
  }
  kvGet(namespace: string, key: string): Promise<KvValue | null> {
    return this.#async(() => {
      checkParams('Store.kvGet', kvGetArgs, { namespace, key });
      return security.kvGet(this.#db, namespace, key);
    });
  }
  kvList(namespace: string, options: KvListOptions = {}): Promise<KvEntry[]> {
    return this.#async(() => {
      checkParams('Store.kvList', kvListArgs, { namespace, options });
      return security.kvList(this.#db, namespace, options);
    });
  }

  watchChanges(listener: () => void): () => void {
    return this.#changes.subscribe(listener);
  }

  get writeTransactions(): number {
    return this.#writes.commits;
  }

  onCommit(listener: CommitListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  health(deep = false): Promise<StoreHealth> {
    return this.#async(() => {
      const check = deep
        ? (this.#db.pragma('integrity_check') as Array<{ integrity_check: string }>)
            .map((r) => r.integrity_check)
            .join('; ')
        : 'ok';
      return {
        ok: check === 'ok',
        schemaVersion: this.schemaVersion,
        durability: this.durability,
        detail: deep ? `integrity_check: ${check}` : 'open',
      };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#changes.close();
    await this.#writes.drain();
    this.#listeners.clear();
    try {
      if (!this.#readOnly) this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // another connection is reading: its own close (or a later open) finishes the job
    }
    this.#db.close();
  }
}

interface Condition {
  readonly sql: string;
  readonly params: readonly unknown[];
}

function eq(column: string, value: string | undefined): Condition | null {
  return value === undefined || value === '' ? null : { sql: `${column} = ?`, params: [value] };
}

function inList(column: string, values: readonly string[] | undefined): Condition | null {
  return values?.length
    ? { sql: `${column} IN (${values.map(() => '?').join(',')})`, params: values }
    : null;
}

function optional<T>(row: unknown, map: (r: Row) => T): T | undefined {
  return row === undefined ? undefined : map(row as Row);
}
