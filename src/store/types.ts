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
 *   order, in this process only (other processes observe changes by reading).
 *
 * Not in the contract: cross-process notification (callers poll {@link Store.changeToken}),
 * retention and cleanup, and anything about how rows are laid out.
 */
import type { WardenError } from '../core/errors.ts';
import type {
  InterruptKind,
  InterruptResponse,
  InterruptStatus,
  Priority,
  ProcessState,
  Quota,
  TaskKind,
  TaskState,
  TerminalReason,
  Usage,
  Workflow,
} from '../core/index.ts';
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
  readonly type: string;
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
  | { readonly op: 'process.insert'; readonly row: ProcessRecord }
  /** Replaces the row; aborts with CONFLICT unless the stored version is `expectVersion`. */
  | { readonly op: 'process.update'; readonly expectVersion: number; readonly row: ProcessRecord }
  | { readonly op: 'task.insert'; readonly row: TaskRecord }
  /**
   * Ends a running task's attempt, fenced by its lease token (LEASE_LOST otherwise).
   * `queued` requeues it (retry) at `available_at`.
   */
  | {
      readonly op: 'task.settle';
      readonly id: string;
      readonly leaseToken: string;
      readonly state: Exclude<TaskState, 'running'>;
      readonly result?: unknown;
      readonly error?: TaskError | null;
      readonly availableAt?: number;
      readonly sortKey?: number;
      readonly attemptOutcome: NonNullable<AttemptRecord['outcome']>;
      readonly options?: TaskOptionsRecord;
      readonly now: number;
    }
  /**
   * Cancels a queued, running or dead task (kernel authority, no token needed): the running
   * worker's next heartbeat or settle gets LEASE_LOST. No-op for a terminal task. Pass the
   * running attempt's token to close that attempt as `canceled`.
   */
  | {
      readonly op: 'task.cancel';
      readonly id: string;
      readonly leaseToken?: string | null;
      readonly now: number;
    }
  /** Aborts with LEASE_LOST unless the task is running under this token. */
  | { readonly op: 'task.fence'; readonly id: string; readonly leaseToken: string }
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
  | { readonly op: 'event'; readonly event: NewEvent };

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
  readonly created_at: number;
  readonly updated_at: number;
}

export interface SubmitRequest {
  readonly tasks: readonly TaskRecord[];
  /** Per-lane depth limits: a lane that would exceed its limit refuses the batch (QUEUE_FULL). */
  readonly maxDepth?: Readonly<Record<string, number>>;
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
  readonly attemptOutcome: NonNullable<AttemptRecord['outcome']>;
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
  readonly limit?: number;
}

export interface TaskFilter {
  readonly states?: readonly TaskState[];
  readonly lane?: string;
  readonly processId?: string;
  readonly limit?: number;
}

export interface InterruptFilter {
  readonly status?: InterruptStatus;
  readonly processId?: string;
  readonly limit?: number;
}

export interface EventQuery {
  readonly sessionId: string;
  /** Return events with seq > afterSeq. */
  readonly afterSeq?: number;
  readonly processId?: string;
  readonly limit?: number;
}

export interface StoreHealth {
  readonly ok: boolean;
  readonly schemaVersion: number;
  readonly durability: Durability;
  readonly detail: string;
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

  commit(ops: readonly StoreOp[]): Promise<readonly EventRecord[]>;

  claimTasks(request: ClaimRequest): Promise<ClaimedTask[]>;
  /** Extends a lease; LEASE_LOST unless the task is running under this token. */
  heartbeat(taskId: string, leaseToken: string, leaseMs: number, now: number): Promise<number>;
  /**
   * Inserts tasks in one transaction with their `task.queued` events. Idempotency keys are
   * honoured within the window (IDEMPOTENCY_CONFLICT when the same key names another request);
   * a lane over its depth limit refuses the whole batch with QUEUE_FULL.
   */
  submitTasks(request: SubmitRequest): Promise<SubmitResult[]>;
  /**
   * Settles many running tasks in one transaction; each is fenced by its own lease token and
   * succeeds or fails alone (a stale token does not abort the others).
   */
  settleTasks(items: readonly TaskSettle[]): Promise<SettleOutcome[]>;
  /** Extends many leases at once; returns the ids whose lease was lost. */
  heartbeatTasks(
    items: ReadonlyArray<{ id: string; leaseToken: string }>,
    leaseMs: number,
    now: number,
  ): Promise<string[]>;
  countQueued(lane: string): Promise<number>;
  /** Queued tasks per lane. */
  queueDepths(): Promise<Record<string, number>>;
  /** The earliest `available_at` of a queued task in these lanes, or null. */
  nextDue(lanes: readonly string[]): Promise<number | null>;
  /** The earliest lease expiry of a running task, or null. */
  nextLeaseExpiry(): Promise<number | null>;
  listSchedules(): Promise<ScheduleRecord[]>;
  /**
   * Fires every enabled schedule due at `now`, in one transaction: inserts its task and moves
   * `next_run_at` to `next(schedule)`. Because both happen atomically under the write lock, a
   * schedule never fires twice for one occurrence, across restarts or processes.
   */
  fireSchedules(
    now: number,
    fire: (schedule: ScheduleRecord) => { task: TaskRecord; nextRunAt: number },
  ): Promise<TaskRecord[]>;
  /** Running tasks whose lease expired before `now` (or whose owner is in `deadOwners`). */
  findExpiredLeases(
    now: number,
    deadOwners?: readonly string[],
    limit?: number,
  ): Promise<TaskRecord[]>;
  /** Distinct lease owners of running tasks. */
  listLeaseOwners(): Promise<string[]>;

  getSession(id: string): Promise<SessionRecord | undefined>;
  getSessionByKey(key: string): Promise<SessionRecord | undefined>;
  listSessions(): Promise<SessionRecord[]>;
  getProcess(pid: string): Promise<ProcessRecord | undefined>;
  listProcesses(filter?: ProcessFilter): Promise<ProcessRecord[]>;
  getTask(id: string): Promise<TaskRecord | undefined>;
  listTasks(filter?: TaskFilter): Promise<TaskRecord[]>;
  listAttempts(taskId: string): Promise<AttemptRecord[]>;
  getInterrupt(id: string): Promise<InterruptRecord | undefined>;
  listInterrupts(filter?: InterruptFilter): Promise<InterruptRecord[]>;
  /** Pending interrupts with `expires_at ≤ now`. */
  findExpiredInterrupts(now: number): Promise<InterruptRecord[]>;
  readEvents(query: EventQuery): Promise<EventRecord[]>;
  countByState(): Promise<{ processes: Record<string, number>; tasks: Record<string, number> }>;

  /**
   * The effect journal record for a key. Records change only through the `effect.insert` and
   * `effect.transition` ops of {@link Store.commit}, so they compose with fences, events and
   * other updates in one transaction.
   */
  getEffect(key: string): Promise<EffectRecord | undefined>;

  /** Changes whenever any connection (any process) commits; cheap to poll. */
  changeToken(): Promise<number>;
  onCommit(listener: CommitListener): () => void;
  health(deep?: boolean): Promise<StoreHealth>;
  close(): Promise<void>;
}
