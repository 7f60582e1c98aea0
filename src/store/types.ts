/**
 * The Store port: everything the kernel and queue need from durable storage. Two adapters
 * implement it (SQLite now, PostgreSQL later) and pass the same contract tests.
 *
 * Contract:
 * - {@link Store.commit} applies a list of operations in ONE transaction, in order. Guarded
 *   operations (compare-and-set on a version, a state or a lease token) that do not match abort
 *   the whole transaction with a typed error (CONFLICT, INVALID_STATE, LEASE_LOST) and nothing
 *   is applied. Events in the list get the session's next contiguous `seq` and the hash chain.
 * - Claims are atomic: a task is handed to exactly one claimer, with a fresh lease token.
 * - Listeners registered with {@link Store.onCommit} hear committed events after the commit, in
 *   order, in this process only.
 * - {@link Store.watchChanges} hears that the database may have changed — a commit by this
 *   process or by any other process on the same database — without polling for work (SQLite:
 *   inotify on the WAL plus `PRAGMA data_version`; PostgreSQL: LISTEN/NOTIFY). Calls may be
 *   spurious; they mean "look again".
 * - Lanes are store configuration ({@link LaneRecord}): a lane's concurrency holds across every
 *   process (claims take only free slots) and its depth limit is checked by every submit.
 *
 * - {@link Store.openSnapshot} gives a read-only view of one instant: commits made after it
 *   opened (by this or any process) are invisible to it.
 * - Retention ({@link Store.prune}) deletes history in bounded batches, one short transaction
 *   each, and records what it deleted as a `retention.pruned` event in that transaction. Events
 *   are pruned per session as a contiguous prefix; the session row keeps the anchor (seq and
 *   hash of the last pruned event), and a read with a cursor older than it is REPLAY_GAP.
 *
 * Not in the contract: anything about how rows are laid out.
 */
import type { Clock } from '../core/clock.ts';
import type { WardenError } from '../core/errors.ts';
import type {
  EventType,
  InterruptKind,
  InterruptResponse,
  InterruptStatus,
  Priority,
  ProcessState,
  Quota,
  RateLimits,
  TaskKind,
  TaskState,
  TerminalReason,
  TokenScope,
  Usage,
  Workflow,
} from '../core/index.ts';
import type {
  AuditRecord,
  Decision,
  GrantRecord,
  PolicyVersionRecord,
  QuarantineRecord,
} from '../core/policy/types.ts';
import type { Envelope } from '../core/workflow/envelope.ts';

export type Durability = 'fast' | 'strict';

export interface SessionRecord {
  readonly id: string;
  readonly key: string;
  readonly settings: Record<string, unknown>;
  readonly created_at: number;
  readonly updated_at: number;
  readonly last_seq: number;
  readonly last_hash: string;
  /**
   * Retention anchor: events up to this seq were pruned. Set by {@link Store.prune}; ignored
   * on insert; absent (read it as 0) while nothing was pruned.
   */
  readonly pruned_seq?: number;
  /** Hash of event `pruned_seq`, the anchor the remaining chain is verified from; null if none. */
  readonly pruned_hash?: string | null;
  /**
   * Settings version: incremented by every `session.update`, which compares-and-sets on it.
   * Absent (read it as 0) until the first update; ignored on insert.
   */
  readonly version?: number;
}

/**
 * An API token (DESIGN.md §8). Only the sha256 of its secret is stored; the secret is shown
 * once, when the token is created (src/security/tokens.ts).
 */
export interface TokenRecord {
  /** `tok_<hex>`: also the first part of the token text. */
  readonly id: string;
  /** A label for people. */
  readonly name: string;
  readonly scopes: readonly TokenScope[];
  /** sha256 (hex) of the secret. */
  readonly secret_hash: string;
  readonly created_at: number;
  readonly expires_at: number | null;
  readonly revoked_at: number | null;
  readonly last_used_at: number | null;
}

/** What {@link Store.deleteSession} deletes. */
export interface DeleteSessionInput {
  readonly id: string;
  /** Where the `session.deleted` event goes (the `system` session) and its trace. */
  readonly event: { readonly session_id: string; readonly trace_id: string };
}

/** Rows one {@link Store.deleteSession} deleted (also the `counts` of its event). */
export interface DeleteSessionCounts {
  readonly events: number;
  readonly processes: number;
  readonly tasks: number;
  readonly attempts: number;
  readonly interrupts: number;
  readonly effects: number;
}

export interface ProcessRecord {
  readonly pid: string;
  readonly session_id: string;
  readonly user_id: string;
  readonly parent_pid: string | null;
  readonly workflow_name: string;
  readonly workflow: Workflow;
  readonly workflow_hash: string;
  /** Where the workflow came from (a file path), for display. */
  readonly source: string | null;
  readonly state: ProcessState;
  readonly priority: Priority;
  readonly quota: Quota;
  readonly usage: Usage;
  readonly envelope: Envelope;
  readonly current_stage: string;
  readonly terminal_reason: TerminalReason | null;
  readonly terminal_message: string | null;
  readonly trace_id: string;
  /** Incremented by every update; updates compare-and-set on it. */
  readonly version: number;
  readonly created_at: number;
  readonly started_at: number | null;
  readonly updated_at: number;
  readonly completed_at: number | null;
}

export interface TaskError {
  readonly code: string;
  readonly message: string;
  readonly retryable?: boolean;
  /** Stable fingerprint of the failure, for poison detection. */
  readonly fingerprint?: string;
}

export interface TaskRecord {
  readonly id: string;
  readonly kind: TaskKind;
  /** Job name for `job` tasks; stage name for `agent_step`. */
  readonly name: string;
  readonly lane: string;
  readonly session_id: string;
  readonly process_id: string | null;
  readonly payload: unknown;
  readonly state: TaskState;
  /** Rank 0 (realtime) … 4 (idle). */
  readonly priority: number;
  /** Claim order: `available_at + priority · aging_ms` (priority with aging, FIFO within). */
  readonly sort_key: number;
  readonly available_at: number;
  readonly attempts: number;
  readonly max_attempts: number;
  readonly lease_owner: string | null;
  readonly lease_token: string | null;
  readonly lease_expires_at: number | null;
  /** When the current (or last) attempt was claimed. */
  readonly claimed_at?: number | null;
  readonly idempotency_key: string | null;
  readonly last_error: TaskError | null;
  readonly result: unknown;
  readonly trace_id: string;
  /** Retry policy and other per-task options. */
  readonly options: TaskOptionsRecord;
  readonly created_at: number;
  readonly updated_at: number;
}

export interface TaskOptionsRecord {
  readonly backoff_ms: number;
  readonly max_backoff_ms: number;
  readonly timeout_ms: number | null;
  /** Consecutive identical failure fingerprints that dead-letter early. */
  readonly poison_threshold: number;
  readonly consecutive_fingerprint?: {
    readonly fingerprint: string;
    readonly count: number;
  } | null;
  /** sha256 of (name, payload) for idempotent submits: the same key for another request conflicts. */
  readonly request_hash?: string;
}

export interface AttemptRecord {
  readonly task_id: string;
  readonly attempt: number;
  readonly lease_token: string;
  readonly worker_id: string;
  readonly started_at: number;
  readonly ended_at: number | null;
  readonly outcome: 'running' | 'succeeded' | 'failed' | 'lease_expired' | 'canceled' | null;
  readonly error: TaskError | null;
}

export interface InterruptRecord {
  readonly id: string;
  readonly session_id: string;
  readonly process_id: string | null;
  readonly kind: InterruptKind;
  readonly stage: string | null;
  readonly step: number | null;
  readonly prompt: string;
  readonly data: Record<string, unknown>;
  readonly status: InterruptStatus;
  readonly response: InterruptResponse | null;
  readonly resolver: string | null;
  readonly trace_id: string;
  readonly created_at: number;
  readonly expires_at: number | null;
  readonly resolved_at: number | null;
}

export interface EventRecord {
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
  readonly hash: string;
}

export interface NewEvent {
  readonly session_id: string;
  /** One of the documented event types: an undeclared type does not compile. */
  readonly type: EventType;
  readonly trace_id: string;
  readonly process_id?: string | null;
  readonly task_id?: string | null;
  readonly attempt?: number | null;
  readonly data: unknown;
}

export type EffectStatus = 'pending' | 'done' | 'failed';

/**
 * One effect journal record (queue/effects.ts has the state machine). `owner` is the lease
 * token of the attempt that owns a `pending` record (or that recorded its outcome); it is
 * null only on records written before owners existed.
 */
export interface EffectRecord {
  readonly idempotency_key: string;
  readonly tool: string;
  readonly request_hash: string;
  readonly status: EffectStatus;
  readonly result_hash: string | null;
  readonly result: unknown;
  readonly owner: string | null;
  /** The worker id of the owning attempt (for liveness checks). */
  readonly owner_worker: string | null;
  /** The owning attempt's task, and the session its events go to. */
  readonly task_id: string | null;
  readonly session_id: string | null;
  /** Why a `failed` record failed. */
  readonly error: TaskError | null;
  readonly created_at: number;
  readonly updated_at: number;
}

/** A lane's limits, shared by every process on the database. */
export interface LaneRecord {
  readonly name: string;
  /** Most tasks of the lane running at once, across all workers; null = no limit. */
  readonly concurrency: number | null;
  /** Most queued tasks; a submit beyond it answers QUEUE_FULL. null = no limit. */
  readonly max_depth: number | null;
  readonly updated_at: number;
}

/** A registered service (a worker), visible to every process on the database. */
export interface ServiceRecord {
  readonly name: string;
  readonly type: string;
  readonly capabilities: readonly string[];
  readonly max_concurrency: number;
  /** The worker id that registered it (`<host>/<pid>/<random>/<namespace>`), for liveness. */
  readonly owner: string;
  readonly health: string;
  readonly registered_at: number;
  readonly updated_at: number;
}

/** How an attempt ended; `released` = handed back unstarted (not counted as an attempt). */
export type AttemptOutcome = NonNullable<AttemptRecord['outcome']> | 'released';

/** The fields an effect transition writes (see the `effect.transition` op). */
export interface EffectTransitionTarget {
  readonly status: EffectStatus;
  readonly owner: string;
  readonly owner_worker: string | null;
  readonly task_id: string | null;
  readonly session_id: string | null;
  readonly result_hash: string | null;
  readonly result: unknown;
  readonly error: TaskError | null;
}

/** One operation inside a {@link Store.commit}. */
export type StoreOp =
  | { readonly op: 'session.insert'; readonly row: SessionRecord }
  /**
   * Replaces a session's settings and bumps its `version` (to `expectVersion + 1`) and
   * `updated_at`, compare-and-set on the version the caller read: CONFLICT (details: `version`,
   * `expected`) when it changed, NOT_FOUND when the session does not exist. Put its
   * `session.updated` event in the same commit.
   */
  | {
      readonly op: 'session.update';
      readonly id: string;
      readonly settings: Record<string, unknown>;
      /** The version read (a record without `version` is version 0). */
      readonly expectVersion: number;
      readonly now: number;
    }
  /** Inserts a token; CONFLICT when its id exists. Put its `token.created` event in the commit. */
  | { readonly op: 'token.insert'; readonly row: TokenRecord }
  /**
   * Revokes a token, compare-and-set on "not revoked": INVALID_STATE (details: `revoked_at`)
   * when it is revoked already, NOT_FOUND when it does not exist.
   */
  | { readonly op: 'token.revoke'; readonly id: string; readonly now: number }
  /** Records that a token was used (`last_used_at`); a no-op for a missing token. */
  | { readonly op: 'token.touch'; readonly id: string; readonly now: number }
  | { readonly op: 'process.insert'; readonly row: ProcessRecord }
  /** Replaces the row; aborts with CONFLICT unless the stored version is `expectVersion`. */
  | { readonly op: 'process.update'; readonly expectVersion: number; readonly row: ProcessRecord }
  | { readonly op: 'task.insert'; readonly row: TaskRecord }
  /**
   * Ends a running task's attempt, fenced by its lease token (LEASE_LOST otherwise; with
   * `expiredBy`, also unless the lease expired by then — a reclaim never steals a lease that was
   * just renewed). `queued` requeues it (retry) at `available_at`; outcome `released` hands it
   * back unstarted without spending an attempt.
   */
  | ({ readonly op: 'task.settle' } & Omit<TaskSettle, 'events'>)
  /**
   * Cancels a queued, running or dead task (kernel authority, no token needed): the running
   * worker's next heartbeat or settle gets LEASE_LOST. Compare-and-set on the state (and lease
   * token) the caller read: if the task moved on meanwhile, the commit aborts with CONFLICT
   * (details.state is the state now) and nothing is written.
   */
  | {
      readonly op: 'task.cancel';
      readonly id: string;
      readonly expectState: 'queued' | 'running' | 'dead';
      /** The token the caller read (null unless running); a running attempt is closed as canceled. */
      readonly leaseToken: string | null;
      readonly now: number;
    }
  | { readonly op: 'service.upsert'; readonly row: ServiceRecord }
  /** Removes a registration; a no-op when it is gone already. */
  | { readonly op: 'service.delete'; readonly name: string }
  /** Declares a lane's limits (no change when they are already these). */
  | { readonly op: 'lane.upsert'; readonly row: LaneRecord }
  /**
   * Takes one request from the shared rate windows of `key` (every process counts against the
   * same windows); RATE_LIMITED (with retry_after_ms) aborts the commit.
   */
  | {
      readonly op: 'rate.take';
      readonly key: string;
      readonly limits: RateLimits;
      readonly now: number;
    }
  /** Aborts with LEASE_LOST unless the task is running under this token. */
  | { readonly op: 'task.fence'; readonly id: string; readonly leaseToken: string }
  /**
   * Claims a task queued earlier in the same commit for `workerId` under `leaseToken` — only if
   * it is due and no other due task of its kind waits in its lane ahead of it (and the lane has
   * room): a worker that finishes a step takes the run's next step without a claim of its own,
   * and nobody is overtaken. When it applies, a `task.claimed` event says so; otherwise it does
   * nothing and the task waits in the queue like any other — or, when `required`, the commit
   * aborts with CONFLICT (`details.handoff: 'refused'`). With `overtake`, tasks waiting ahead do
   * not stop it (a `warden run` process keeps its own run's steps).
   */
  | {
      readonly op: 'task.handoff';
      readonly id: string;
      readonly lane: string;
      readonly workerId: string;
      readonly leaseToken: string;
      readonly leaseMs: number;
      readonly now: number;
      readonly required?: boolean;
      readonly overtake?: boolean;
    }
  /** Dead → queued with a fresh budget of attempts (INVALID_STATE unless dead). */
  | {
      readonly op: 'task.redrive';
      readonly id: string;
      readonly sortKey: number;
      readonly now: number;
    }
  /** Deletes a dead task and its attempts (INVALID_STATE unless dead). */
  | { readonly op: 'task.purge'; readonly id: string }
  | { readonly op: 'schedule.upsert'; readonly row: ScheduleRecord }
  | { readonly op: 'schedule.delete'; readonly name: string }
  | { readonly op: 'interrupt.insert'; readonly row: InterruptRecord }
  /** Aborts with INVALID_STATE unless the interrupt is still pending. */
  | {
      readonly op: 'interrupt.settle';
      readonly id: string;
      readonly status: Exclude<InterruptStatus, 'pending'>;
      readonly response: InterruptResponse | null;
      readonly resolver: string | null;
      readonly now: number;
    }
  /**
   * Inserts a new effect record (normally `pending`); aborts with CONFLICT (details:
   * `effect_key`) when a record with that key exists. Put a `task.fence` before it so only an
   * attempt holding its lease can begin an effect.
   */
  | { readonly op: 'effect.insert'; readonly row: EffectRecord }
  /**
   * Compare-and-set on an effect record: applies only while the record is `from.status` and
   * owned by `from.owner` (null matches a record without owner); otherwise aborts with
   * INVALID_STATE (details: `effect_key`, `status`, `owner_worker`; NOT_FOUND without a record)
   * and changes nothing — so a `done` is never overwritten.
   */
  | {
      readonly op: 'effect.transition';
      readonly key: string;
      readonly from: { readonly status: EffectStatus; readonly owner: string | null };
      readonly to: EffectTransitionTarget;
      readonly now: number;
    }
  | { readonly op: 'event'; readonly event: NewEvent }
  /**
   * Stores a policy version unless its id is stored already (DESIGN.md §4: persisted before it
   * is activated); with `activate`, sets its `activated_at` to `now`, which makes it the
   * {@link Store.activePolicyVersion}. The same id with another source is STORE_CORRUPT (the id
   * is the source's content hash) and changes nothing.
   */
  | {
      readonly op: 'policy.version';
      readonly id: string;
      readonly source: Readonly<Record<string, string>>;
      readonly loaded_at: number;
      readonly activate: boolean;
      readonly now: number;
    }
  /** Inserts a grant (used 0, not revoked); CONFLICT when its id exists. */
  | { readonly op: 'grant.create'; readonly grant: NewGrant }
  /**
   * Revokes a grant, compare-and-set on "not revoked": INVALID_STATE (details: `grant_id`,
   * `revoked_at`) when it is revoked already, NOT_FOUND when it does not exist.
   */
  | {
      readonly op: 'grant.revoke';
      readonly id: string;
      readonly by: string;
      readonly reason: string | null;
      readonly now: number;
    }
  /**
   * Spends one use of a grant, compare-and-set in one statement: only while it is not revoked,
   * not expired at `now` (`expires_at > now`) and `used < budget` (a null budget is unlimited).
   * Otherwise POLICY_DENIED (details: `grant_id`, `why`: revoked, expired or exhausted), or
   * NOT_FOUND, and the commit changes nothing. Nodes racing for the last use: exactly one wins.
   */
  | { readonly op: 'grant.use'; readonly id: string; readonly now: number }
  /**
   * Appends audit records (at most 1,000 per op, each at most 256 KiB of JSON) to the store's single audit
   * chain: each gets the next contiguous `seq` and `hash = sha256(prev_hash ‖
   * canonical_json(record without hash))`, under a lock on the chain's head, so appenders in
   * several processes or nodes never fork it. The log is append-only: no op changes or deletes
   * a record (and the database refuses UPDATE and DELETE on it).
   */
  | { readonly op: 'audit.append'; readonly records: readonly NewAuditRecord[] }
  /** Keeps a blocked action for review (at most 256 KiB of JSON); CONFLICT when its id exists. */
  | { readonly op: 'quarantine.add'; readonly record: QuarantineRecord }
  /**
   * Sets a key of a namespace to a JSON value (at most 64 KiB of JSON, PAYLOAD_TOO_LARGE
   * otherwise); its version becomes 1 on insert, +1 on every set. With
   * `expected_version` it is compare-and-set: a number must be the stored version, null means
   * the key must not exist; otherwise CONFLICT (details: `namespace`, `key`, `version`,
   * `expected`). Omitted: set unconditionally.
   */
  | {
      readonly op: 'kv.set';
      readonly namespace: string;
      readonly key: string;
      readonly value: unknown;
      readonly expected_version?: number | null;
      readonly now: number;
    }
  /**
   * Deletes a key of a namespace. With `expected_version` it is compare-and-set: the key must
   * exist at that version; otherwise (another version, or no such key) CONFLICT with kv.set's
   * details (`namespace`, `key`, `version`, `expected`). Omitted: deletes unconditionally, and
   * a missing key is a no-op. The version is not kept: a later kv.set re-creates the key at
   * version 1, so a compare-and-set on version 1 cannot tell that key from the deleted one.
   */
  | {
      readonly op: 'kv.delete';
      readonly namespace: string;
      readonly key: string;
      readonly expected_version?: number;
    };

/** A grant as created: nothing used, not revoked. */
export type NewGrant = Omit<GrantRecord, 'used' | 'revoked_at' | 'revoked_by' | 'revoke_reason'>;

/** An audit record as appended: the store assigns `seq`, `prev_hash` and `hash`. */
export type NewAuditRecord = Omit<AuditRecord, 'seq' | 'prev_hash' | 'hash'>;

export interface PolicyVersionFilter {
  /** At most this many (default 100), newest loaded first. */
  readonly limit?: number;
}

export interface GrantFilter {
  readonly principal?: string;
  /**
   * Only grants usable at this time: not revoked by then, not expired by then
   * (`expires_at > activeAt`), and with budget left now.
   */
  readonly activeAt?: number;
  /** At most this many rows (default 1,000), oldest first. */
  readonly limit?: number;
}

export interface AuditQuery {
  /** Records with seq > afterSeq. */
  readonly afterSeq?: number;
  /** Records with ts ≥ since. */
  readonly since?: number;
  readonly decision?: Decision;
  readonly principal?: string;
  readonly action?: string;
  /** At most this many (default 1,000; above 10,000 is 10,000), in seq order. */
  readonly limit?: number;
}

/** What {@link Store.verifyAudit} found. */
export interface AuditVerification {
  readonly ok: boolean;
  /** Records verified (up to the first broken one). */
  readonly count: number;
  /**
   * The first broken link: a missing record (`seq_gap`), a record whose prev_hash or hash does
   * not match (a changed record), or a chain that does not end at the stored head (records cut
   * off the end, or added without moving it: `head_mismatch`).
   */
  readonly first_broken?: {
    readonly seq: number;
    readonly reason: 'seq_gap' | 'prev_hash_mismatch' | 'hash_mismatch' | 'head_mismatch';
    readonly expected: string;
    readonly actual: string;
  };
}

export interface QuarantineFilter {
  /** Records with ts ≥ since. */
  readonly since?: number;
  readonly kind?: string;
  /** At most this many (default 1,000), newest first. */
  readonly limit?: number;
}

export interface KvValue {
  readonly value: unknown;
  readonly version: number;
  readonly updated_at: number;
}

export interface KvEntry extends KvValue {
  readonly key: string;
}

export interface KvListOptions {
  /** Only keys starting with this. */
  readonly prefix?: string;
  /** At most this many (default 1,000), in key order (by code point). */
  readonly limit?: number;
}

export interface ScheduleRecord {
  readonly id: string;
  readonly name: string;
  readonly kind: 'cron' | 'interval';
  /** A cron expression, or an interval in milliseconds (as text). */
  readonly expr: string;
  readonly job: string;
  readonly lane: string;
  readonly payload: unknown;
  readonly options: Record<string, unknown>;
  readonly enabled: boolean;
  readonly next_run_at: number;
  readonly last_run_at: number | null;
  readonly last_task_id: string | null;
  /** Occurrences in a row that could not fire (reset by the next successful firing). */
  readonly failures: number;
  /** Why the last occurrence could not fire; null after a successful firing. */
  readonly last_error: TaskError | null;
  readonly created_at: number;
  readonly updated_at: number;
}

/** One occurrence of a schedule to fire ({@link Store.fireSchedule}). */
export interface ScheduleFire {
  readonly id: string;
  /** The `next_run_at` that was read: the compare-and-set guard of this occurrence. */
  readonly expectedNextRunAt: number;
  /** The schedule's next occurrence after this one. */
  readonly nextRunAt: number;
  readonly task: TaskRecord;
  readonly now: number;
}

/** An occurrence that could not fire ({@link Store.deferSchedule}). */
export interface ScheduleDefer {
  readonly id: string;
  readonly expectedNextRunAt: number;
  /** When to try again (the caller's backoff). */
  readonly retryAt: number;
  readonly error: TaskError;
  readonly now: number;
  /** Session (the `system` one) and trace of the `schedule.failed` event. */
  readonly sessionId: string;
  readonly traceId: string;
}

/** A session to create inside a submit unless its key exists ({@link SubmitRequest.sessions}). */
export interface NewSession {
  readonly row: SessionRecord;
  /** Trace id of its `session.created` event. */
  readonly traceId: string;
}

export interface SubmitRequest {
  readonly tasks: readonly TaskRecord[];
  /**
   * Sessions the tasks need, created in the submit's transaction: a task whose `session_id` is
   * one of these rows' ids goes to the session with that row's key — the existing one when the
   * key is taken (the task is moved to its id), else this row, inserted with its
   * `session.created` event. Only sessions that a new (not deduplicated) task uses are created,
   * so a refused batch leaves no session behind.
   */
  readonly sessions?: readonly NewSession[];
  /** A task with the same idempotency key created within this window is returned instead. */
  readonly idempotencyWindowMs: number;
  readonly now: number;
  /**
   * Fair queueing across sessions within a lane: each (lane, session, priority) has a virtual
   * clock that advances `quantumMs` per task, and a due task's claim order is its session's
   * clock (plus the priority offset) instead of its submit time. A session that submits 10,000
   * tasks at once therefore interleaves with one that submits 5, instead of starving it.
   * Omit to keep plain FIFO keys.
   */
  readonly fairness?: { readonly quantumMs: number; readonly agingMs: number };
}

export interface SubmitResult {
  readonly task: TaskRecord;
  /** True when an existing task with the same idempotency key was returned. */
  readonly deduplicated: boolean;
}

/** One fenced settle in {@link Store.settleTasks}; `events` are appended only if it applies. */
export interface TaskSettle {
  readonly id: string;
  readonly leaseToken: string;
  readonly state: Exclude<TaskState, 'running'>;
  readonly result?: unknown;
  readonly error?: TaskError | null;
  readonly availableAt?: number;
  readonly sortKey?: number;
  readonly options?: TaskOptionsRecord;
  readonly attemptOutcome: AttemptOutcome;
  /** Reclaims: apply only if the lease expired at or before this time (re-checked in the write). */
  readonly expiredBy?: number;
  readonly now: number;
  readonly events: readonly NewEvent[];
}

export interface SettleOutcome {
  readonly id: string;
  readonly ok: boolean;
  /** LEASE_LOST (or NOT_FOUND) when the settle did not apply. */
  readonly error?: WardenError;
}

export interface ClaimRequest {
  readonly lanes: readonly string[];
  readonly kinds?: readonly TaskKind[];
  readonly workerId: string;
  readonly limit: number;
  readonly leaseMs: number;
  readonly now: number;
}

export interface ClaimedTask {
  readonly task: TaskRecord;
  /** The attempt number (1-based) and its fencing token. */
  readonly attempt: number;
  readonly leaseToken: string;
}

export interface ProcessFilter {
  readonly states?: readonly ProcessState[];
  readonly sessionId?: string;
  /** At most this many rows (default 1,000); INVALID_PARAMS unless a positive integer. */
  readonly limit?: number;
}

/**
 * What a session's runs look like from outside: it changes whenever a run is created, deleted or
 * changed (every change of a run's row moves its `version` and `updated_at`).
 */
export interface SessionRunStamp {
  readonly session_id: string;
  readonly runs: number;
  readonly version_sum: number;
  readonly updated_at_sum: number;
}

export interface TaskFilter {
  readonly states?: readonly TaskState[];
  readonly lane?: string;
  readonly processId?: string;
  /** At most this many rows (default 1,000); INVALID_PARAMS unless a positive integer. */
  readonly limit?: number;
}

export interface InterruptFilter {
  readonly status?: InterruptStatus;
  readonly processId?: string;
  /** At most this many rows (default 1,000); INVALID_PARAMS unless a positive integer. */
  readonly limit?: number;
}

export interface EventQuery {
  readonly sessionId: string;
  /**
   * Return events with seq > afterSeq. A cursor older than retention (afterSeq below the
   * session's `pruned_seq`) is REPLAY_GAP with `details.oldest_seq`; omit it to start at the
   * oldest event still kept.
   */
  readonly afterSeq?: number;
  readonly processId?: string;
  /** At most this many events (default 1,000; above 10,000 is 10,000); a positive integer. */
  readonly limit?: number;
}

export interface StoreHealth {
  readonly ok: boolean;
  readonly schemaVersion: number;
  readonly durability: Durability;
  readonly detail: string;
}

/** A consistent read-only view of the store (see {@link Store.openSnapshot}). */
export interface StoreSnapshot {
  listSessions(): Promise<SessionRecord[]>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  /** Same rules as {@link Store.readEvents}, including REPLAY_GAP. */
  readEvents(query: EventQuery): Promise<EventRecord[]>;
  /** Ends the snapshot; idempotent. */
  close(): Promise<void>;
}

/**
 * What retention deletes; every field is a cut-off time (ms since the epoch): rows last changed
 * before it go.
 */
export interface RetentionPolicy {
  /**
   * Finished tasks (succeeded, failed, canceled) that belong to no process, with their attempts
   * (and so their idempotency keys); terminated and zombie processes completed before it, with
   * all their tasks, attempts and settled interrupts (a process that still has a queued,
   * running or dead task, or a pending interrupt, is kept); finished effects (done, failed)
   * whose task no longer exists (or that have none): a kept task's effects stay with it.
   */
  readonly finishedBefore: number;
  /** Dead tasks (the DLQ) with their attempts. */
  readonly deadBefore: number;
  /** Events with `ts` before it, per session as a contiguous prefix of its log. */
  readonly eventsBefore: number;
}

export interface PruneInput {
  readonly policy: RetentionPolicy;
  /**
   * The most rows of each kind (tasks, processes, effects, events) one call deletes; a positive
   * integer (INVALID_PARAMS otherwise, before any write).
   */
  readonly limit: number;
  /** Where the `retention.pruned` event goes (the `system` session). */
  readonly event: { readonly session_id: string; readonly trace_id: string };
}

/** Rows one {@link Store.prune} call deleted. */
export interface PruneResult {
  /** Finished tasks, including those of pruned processes. */
  readonly tasks: number;
  readonly dead_tasks: number;
  readonly attempts: number;
  readonly processes: number;
  readonly interrupts: number;
  readonly effects: number;
  readonly events: number;
  /** Sessions whose log prefix was pruned. */
  readonly sessions: number;
  /** True when a kind hit `limit`: call again to continue. */
  readonly more: boolean;
}

export type CommitListener = (events: readonly EventRecord[]) => void;

/** Enough to open another connection to the same database (e.g. from a worker thread). */
export type StoreLocation = {
  readonly kind: 'sqlite';
  readonly file: string;
  readonly durability: Durability;
};

export interface Store {
  readonly durability: Durability;
  readonly kind: 'sqlite' | 'postgres';
  /** Where the data lives; null when another connection cannot reach it (`:memory:`). */
  readonly location: StoreLocation | null;
  /**
   * True when the store was opened read-only because this process cannot write the database
   * (SQLite: `intent: 'read'`): reads work, every write fails with STORE_READ_ONLY, and nothing
   * on disk is changed.
   */
  readonly readOnly: boolean;
  /**
   * The time base writers on this store should use, when the store has one (PostgreSQL: the
   * node's clock corrected to the database's, so nodes agree on lease expiry). Kernels and
   * queues given no clock of their own use it.
   */
  readonly clock?: Clock;

  commit(ops: readonly StoreOp[]): Promise<readonly EventRecord[]>;

  claimTasks(request: ClaimRequest): Promise<ClaimedTask[]>;
  /** Extends a lease; LEASE_LOST unless the task is running under this token. */
  heartbeat(taskId: string, leaseToken: string, leaseMs: number, now: number): Promise<number>;
  /**
   * Inserts tasks in one transaction with their `task.queued` events, creating the sessions
   * they need (`request.sessions`). Idempotency keys are honoured within the window
   * (IDEMPOTENCY_CONFLICT when the same key names another request); past it the old task's key
   * is released with a `task.idempotency_key_released` event. A lane over its depth limit
   * refuses the whole batch with QUEUE_FULL. A refused batch changes nothing.
   */
  submitTasks(request: SubmitRequest): Promise<SubmitResult[]>;
  /**
   * Settles many running tasks in one transaction; each is fenced by its own lease token and
   * succeeds or fails alone (a stale token does not abort the others).
   */
  settleTasks(items: readonly TaskSettle[]): Promise<SettleOutcome[]>;
  /**
   * {@link settleTasks} then {@link claimTasks} (one request per lane, in order) in ONE
   * transaction: a worker hands back finished work and takes the next in one commit.
   */
  settleAndClaim(
    items: readonly TaskSettle[],
    claims: readonly ClaimRequest[],
  ): Promise<{ settled: SettleOutcome[]; claimed: ClaimedTask[] }>;
  /** Extends many leases at once; returns the ids whose lease was lost. */
  heartbeatTasks(
    items: ReadonlyArray<{ id: string; leaseToken: string }>,
    leaseMs: number,
    now: number,
  ): Promise<string[]>;
  countQueued(lane: string): Promise<number>;
  /** Queued tasks per lane. */
  queueDepths(): Promise<Record<string, number>>;
  /**
   * The earliest `available_at` of a queued task (of these kinds) in those of these lanes that
   * have a free slot under their concurrency, or null: ≤ now means a claim would get work.
   */
  nextDue(lanes: readonly string[], kinds?: readonly TaskKind[]): Promise<number | null>;
  /** Declared lanes. */
  listLanes(): Promise<LaneRecord[]>;
  /** Registered services of every process. */
  listServices(): Promise<ServiceRecord[]>;
  /** Requests counted per key in the current minute of the shared rate windows (`rate.take`). */
  rateUsage(now: number): Promise<Record<string, number>>;
  /** The earliest lease expiry of a running task (of these kinds; default all), or null. */
  nextLeaseExpiry(kinds?: readonly TaskKind[]): Promise<number | null>;
  listSchedules(): Promise<ScheduleRecord[]>;
  /** Enabled schedules with `next_run_at ≤ now`, earliest first. */
  listDueSchedules(now: number): Promise<ScheduleRecord[]>;
  /**
   * Fires one occurrence in its own transaction: compare-and-set `next_run_at` from
   * `expectedNextRunAt` to `nextRunAt` (resetting `failures` and `last_error`), insert the task
   * and its `task.queued` event. Because both happen atomically under the write lock, an
   * occurrence never fires twice, across restarts or processes. Returns null and changes
   * nothing when `next_run_at` moved on (another process fired or deferred it, or the schedule
   * was replaced or deleted).
   */
  fireSchedule(fire: ScheduleFire): Promise<TaskRecord | null>;
  /**
   * Records that an occurrence could not fire, in one transaction: compare-and-set
   * `next_run_at` from `expectedNextRunAt` to `retryAt`, increment `failures`, set
   * `last_error`, and append a `schedule.failed` event. Returns the updated schedule, or null
   * (nothing changed) when `next_run_at` moved on.
   */
  deferSchedule(defer: ScheduleDefer): Promise<ScheduleRecord | null>;
  /**
   * Running tasks (of these kinds; default all) whose lease expired before `now`, or whose owner
   * is in `deadOwners`.
   */
  findExpiredLeases(
    now: number,
    deadOwners?: readonly string[],
    limit?: number,
    kinds?: readonly TaskKind[],
  ): Promise<TaskRecord[]>;
  /** Distinct lease owners of running tasks. */
  listLeaseOwners(): Promise<string[]>;
  /**
   * A fingerprint of each session's runs ({@link SessionRunStamp}), for every session that has
   * any: one grouped read that parses no row, so a view built from a session's runs can be
   * kept until its stamp changes.
   */
  sessionRunStamps(): Promise<SessionRunStamp[]>;

  getSession(id: string): Promise<SessionRecord | undefined>;
  getSessionByKey(key: string): Promise<SessionRecord | undefined>;
  listSessions(): Promise<SessionRecord[]>;
  /**
   * Deletes a session and everything that belongs to it — its events, processes, tasks (with
   * their attempts and effect records) and interrupts — in ONE transaction, with a
   * `session.deleted` event `{id, key, counts}` appended to `input.event.session_id` in it.
   * Refused, changing nothing, with INVALID_STATE when the session has live work (details
   * `live`: its unfinished processes, queued or running tasks and pending interrupts, up to 20
   * ids each, and their counts) or is the `system` session (or the event's own target);
   * NOT_FOUND when it does not exist. Rows go in bounded statements, but all in one
   * transaction: a session with a very long history holds the write lock a while — prune first.
   */
  deleteSession(input: DeleteSessionInput): Promise<DeleteSessionCounts>;
  /** A token by id, with its secret hash (never the secret). */
  getToken(id: string): Promise<TokenRecord | undefined>;
  /** Every token, revoked and expired ones too, oldest first. */
  listTokens(): Promise<TokenRecord[]>;
  getProcess(pid: string): Promise<ProcessRecord | undefined>;
  listProcesses(filter?: ProcessFilter): Promise<ProcessRecord[]>;
  getTask(id: string): Promise<TaskRecord | undefined>;
  listTasks(filter?: TaskFilter): Promise<TaskRecord[]>;
  listAttempts(taskId: string): Promise<AttemptRecord[]>;
  getInterrupt(id: string): Promise<InterruptRecord | undefined>;
  listInterrupts(filter?: InterruptFilter): Promise<InterruptRecord[]>;
  /** Pending interrupts with `expires_at ≤ now`. */
  findExpiredInterrupts(now: number): Promise<InterruptRecord[]>;
  /** How many interrupts are pending (counted in the store, nothing loaded). */
  countPendingInterrupts(): Promise<number>;
  /** The earliest `expires_at` of a pending interrupt, or null. */
  nextInterruptExpiry(): Promise<number | null>;
  /** REPLAY_GAP for a cursor older than retention (see {@link EventQuery.afterSeq}). */
  readEvents(query: EventQuery): Promise<EventRecord[]>;
  /**
   * Opens a read-only view of the store as of now, for reads that must agree with each other
   * across several calls (ledger verification). Commits after this call are invisible to it.
   * The caller MUST close it: an open snapshot holds old database pages (SQLite: it keeps the
   * WAL from being checkpointed past it).
   */
  openSnapshot(): Promise<StoreSnapshot>;

  /**
   * True when {@link Store.prune} with this policy would delete anything. A read only: a sweep
   * with nothing to prune makes no write transaction.
   */
  hasPrunable(policy: RetentionPolicy): Promise<boolean>;
  /**
   * Deletes one bounded batch of history in ONE short write transaction (at most `limit` rows
   * of each kind) and appends one `retention.pruned` event with the counts to `event.session_id`
   * in the same transaction when anything was deleted. Call again while `more` is true.
   */
  prune(input: PruneInput): Promise<PruneResult>;
  countByState(): Promise<{ processes: Record<string, number>; tasks: Record<string, number> }>;

  /**
   * The effect journal record for a key. Records change only through the `effect.insert` and
   * `effect.transition` ops of {@link Store.commit}, so they compose with fences, events and
   * other updates in one transaction.
   */
  getEffect(key: string): Promise<EffectRecord | undefined>;

  // Security entities (DESIGN.md §4, §8); they change only through their ops of `commit`.
  getPolicyVersion(id: string): Promise<PolicyVersionRecord | undefined>;
  /** The version activated last (greatest `activated_at`), or null when none was. */
  activePolicyVersion(): Promise<PolicyVersionRecord | null>;
  listPolicyVersions(filter?: PolicyVersionFilter): Promise<PolicyVersionRecord[]>;
  getGrant(id: string): Promise<GrantRecord | undefined>;
  listGrants(filter?: GrantFilter): Promise<GrantRecord[]>;
  /** Audit records in seq order. */
  readAudit(query?: AuditQuery): Promise<AuditRecord[]>;
  /**
   * Recomputes the whole audit chain from its rows and compares its end with the stored head.
   * Reads in pages: records appended meanwhile are verified too.
   */
  verifyAudit(): Promise<AuditVerification>;
  getQuarantine(id: string): Promise<QuarantineRecord | undefined>;
  /** Newest first. */
  listQuarantine(filter?: QuarantineFilter): Promise<QuarantineRecord[]>;
  kvGet(namespace: string, key: string): Promise<KvValue | null>;
  kvList(namespace: string, options?: KvListOptions): Promise<KvEntry[]>;

  /**
   * Calls `listener` (possibly spuriously) after the database may have changed: a commit by
   * this process or any other process. Returns the unsubscribe function.
   */
  watchChanges(listener: () => void): () => void;
  /** Write transactions this store object has run (empty ones too): "idle means idle". */
  readonly writeTransactions: number;
  onCommit(listener: CommitListener): () => void;
  health(deep?: boolean): Promise<StoreHealth>;
  close(): Promise<void>;
}
