/**
 * Job work for remote workers (any language, over ACP's `task.claim`, `task.heartbeat`,
 * `task.complete`, `task.fail`…): the queue-layer half of DESIGN.md §10. The protocol layer
 * maps wire calls onto these methods one to one.
 *
 *   claim (a lease + a fresh token) → heartbeat* → complete | fail | release
 *
 * - Only `job` tasks: workflow steps (`agent_step`) are run by the daemon's own step workers.
 * - Every call after the claim is fenced by the lease token (DESIGN.md §2.4): a stale token — the
 *   lease expired and was reclaimed, the task was canceled, or it was already settled (a second
 *   `complete` with the same token) — gets LEASE_LOST and changes nothing. The first settle wins.
 * - Retries, backoff, poison detection and dead-lettering are exactly those of the in-process
 *   {@link JobWorker}: both build their settles with settle-builder.ts.
 * - `claim` long-polls: when nothing is due it waits up to `waitMs` WITHOUT polling the database
 *   (long-poll.ts): it makes no write transaction while it waits, and wakes on a submit in this
 *   process, on a commit by another process, at the next delayed task's due time, or on abort.
 *   Claims of one RemoteWork take turns (read, then claim), so a submit wakes one claimer to
 *   the write lock, not all of them.
 * - Stateless between calls: everything is read from the store, so a daemon restart loses no
 *   lease (the worker keeps heartbeating with its token), and any number of connections share
 *   one RemoteWork.
 * - Remote owners are named `remote/<name>/<random>` ({@link remoteWorkerId}): the lease reaper
 *   takes their work back at lease expiry, never earlier ({@link isDeadLocalOwner} ignores them).
 *   {@link RemoteWork.start} runs a reaper, so expired remote leases are reclaimed even in a
 *   process that runs no other worker.
 */
import {
  assertWithin,
  checkParams,
  type Clock,
  ERROR_CATALOGUE,
  type ErrorCode,
  errors,
  type FailureOutcome,
  invalidParams,
  WardenError,
} from '../core/index.ts';
import type { ClaimedTask, TaskError, TaskRecord, TaskSettle } from '../store/index.ts';
import { claimEvent, releaseSettle } from './claim-events.ts';
import type { JobQueue } from './job-queue.ts';
import { LeaseReaper } from './lease-reaper.ts';
import { LongPollHub, type Waiter } from './long-poll.ts';
import { isDeadLocalOwner } from './owner-liveness.ts';
import {
  remoteClaimArgs,
  remoteFailArgs,
  remoteHeartbeatArgs,
  remoteLeaseArgs,
  remoteWorkArgs,
} from './params.ts';
import { failureSettle, oversizedResult, successSettle } from './settle-builder.ts';

export interface RemoteWorkOptions {
  readonly queue: JobQueue;
  /** Lease of a claim (and a heartbeat) that names none. @default 15_000 */
  readonly defaultLeaseMs?: number;
  /** Longest lease a claim or heartbeat may ask for (INVALID_PARAMS beyond). @default 600_000 */
  readonly maxLeaseMs?: number;
  /** Longest long-poll; a claim asking for more waits this long. @default 60_000 */
  readonly maxWaitMs?: number;
  /** Most tasks one claim takes (INVALID_PARAMS beyond). @default 256 */
  readonly maxClaimLimit?: number;
  /** Jitter source for retry backoff. @default Math.random */
  readonly random?: () => number;
  /** Errors of the background reaper (reported nowhere else). */
  readonly onError?: (error: WardenError) => void;
}

export interface RemoteClaimRequest {
  /** The remote worker's owner id, `remote/<name>/<random>` (see {@link remoteWorkerId}). */
  readonly workerId: string;
  /** Declared lanes to take work from, in this order. */
  readonly lanes: readonly string[];
  /** @default 1 */
  readonly limit?: number;
  /** @default the RemoteWork's defaultLeaseMs */
  readonly leaseMs?: number;
  /** How long to wait for work when none is due (capped at maxWaitMs). @default 0 */
  readonly waitMs?: number;
  /** Ends the wait early (the claim then returns what it has: nothing). */
  readonly signal?: AbortSignal;
}

/** A task claimed by a remote worker. */
export interface RemoteClaim {
  readonly task: TaskRecord;
  /** 1-based attempt number. */
  readonly attempt: number;
  /** Present it with every heartbeat, progress, complete, fail and release. */
  readonly leaseToken: string;
  /** When the lease lapses unless renewed (ms since the epoch, on the queue's clock). */
  readonly leaseExpiresAt: number;
}

/** What a remote worker reports when a job failed. */
export interface RemoteFailure {
  readonly message: string;
  /**
   * An error code (docs/errors.md). A code Warden does not know, or one only the kernel may
   * give (see {@link RESERVED_CODES}), is recorded as JOB_FAILED with `details.code`.
   */
  readonly code?: string;
  /** @default the code's retryability (JOB_FAILED: true) */
  readonly retryable?: boolean;
  /** Retry after this delay instead of the backoff (capped at the task's max backoff). */
  readonly retryAfterMs?: number;
  /** Recorded in the failure's event (`details`); at most the queue's maxProgressBytes. */
  readonly details?: Record<string, unknown>;
}

/** Where a settle left the task. */
export interface RemoteSettled {
  readonly taskId: string;
  /** The attempt that ended. */
  readonly attempt: number;
  /** `queued`: retried later, or handed back by `release`. */
  readonly state: 'succeeded' | 'queued' | 'failed' | 'dead';
  /** When a `queued` task is next due (ms since the epoch); null otherwise. */
  readonly availableAt: number | null;
  /** The failure policy's outcome for a failed attempt; null for success and release. */
  readonly reason: FailureOutcome | null;
  /** The error recorded on the task; null for success and release. */
  readonly error: TaskError | null;
}

/**
 * Codes a remote worker may not give its failure: fencing and cancellation are the kernel's
 * word, and storage or protocol alarms from a job would mislead an operator.
 */
export const RESERVED_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'LEASE_LOST',
  'CANCELED',
  'STORE_BUSY',
  'STORE_UNAVAILABLE',
  'STORE_READ_ONLY',
  'STORE_CORRUPT',
  'STORE_TOO_NEW',
  'MIGRATION_MISMATCH',
  'LEDGER_BROKEN',
  'REPLAY_GAP',
  'HANDSHAKE_REQUIRED',
  'PROTOCOL_MISMATCH',
  'DAEMON_RUNNING',
  'DAEMON_UNREACHABLE',
]);

const JOB_KINDS = ['job'] as const;

export class RemoteWork {
  readonly #queue: JobQueue;
  readonly #clock: Clock;
  readonly #defaultLeaseMs: number;
  readonly #maxLeaseMs: number;
  readonly #maxWaitMs: number;
  readonly #maxClaimLimit: number;
  readonly #random: () => number;
  readonly #hub: LongPollHub;
  readonly #reaper: LeaseReaper;
  /** Claims take turns (read, then claim): see the module comment. */
  #turn: Promise<unknown> = Promise.resolve();
  #stopped = false;

  /** INVALID_PARAMS naming the option for a bad one (`queue` is required). */
  constructor(options: RemoteWorkOptions) {
    checkParams('new RemoteWork', remoteWorkArgs, { options });
    this.#queue = options.queue;
    this.#clock = options.queue.clock;
    this.#defaultLeaseMs = options.defaultLeaseMs ?? 15_000;
    this.#maxLeaseMs = options.maxLeaseMs ?? 600_000;
    if (this.#defaultLeaseMs > this.#maxLeaseMs)
      throw invalidParams('new RemoteWork', [
        {
          path: 'options.defaultLeaseMs',
          message: `must not exceed maxLeaseMs (${this.#maxLeaseMs}) (got ${this.#defaultLeaseMs})`,
        },
      ]);
    this.#maxWaitMs = options.maxWaitMs ?? 60_000;
    this.#maxClaimLimit = options.maxClaimLimit ?? 256;
    this.#random = options.random ?? Math.random;
    this.#hub = new LongPollHub(options.queue.store, this.#clock);
    this.#reaper = new LeaseReaper({
      store: options.queue.store,
      clock: this.#clock,
      isDeadOwner: isDeadLocalOwner,
      agingMs: options.queue.agingMs,
      random: this.#random,
      maxWaitMs: this.#defaultLeaseMs,
      ...(options.onError ? { onError: options.onError } : {}),
    });
  }

  /** Declares the queue's lanes and starts reclaiming expired leases (of every worker). */
  async start(): Promise<void> {
    await this.#queue.ready();
    await this.#reaper.start();
  }

  /** Ends every long-poll (each returns nothing), stops the reaper; later claims are INVALID_STATE. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#hub.finishAll();
    await this.#reaper.stop();
  }

  /**
   * Claims up to `limit` due jobs of `lanes` (in that order; each lane's concurrency holds
   * across every process), each with a lease of `leaseMs` and a fresh token, recorded by a
   * `task.claimed` event like any claim. When none is due, waits up to `waitMs` for one
   * (see the module comment) and returns `[]` if none came.
   * INVALID_PARAMS for an undeclared lane or an out-of-range limit or lease.
   */
  async claim(request: RemoteClaimRequest): Promise<RemoteClaim[]> {
    checkParams('RemoteWork.claim', remoteClaimArgs, { request });
    const where = 'RemoteWork.claim';
    const declared = [...this.#queue.lanes.keys()];
    const unknown = request.lanes.filter((lane) => !this.#queue.lanes.has(lane));
    if (unknown.length > 0)
      throw invalidParams(where, [
        {
          path: 'request.lanes',
          message: `unknown lane${unknown.length > 1 ? 's' : ''} ${unknown.map((l) => `'${l}'`).join(', ')} (declared: ${declared.join(', ')})`,
        },
      ]);
    const limit = request.limit ?? 1;
    if (limit > this.#maxClaimLimit)
      throw invalidParams(where, [
        {
          path: 'request.limit',
          message: `expected at most ${this.#maxClaimLimit} (got ${limit})`,
        },
      ]);
    const leaseMs = this.#leaseMs(where, 'request.leaseMs', request.leaseMs);
    if (this.#stopped) throw stoppedError();
    await this.#queue.ready();
    const lanes = [...new Set(request.lanes)];
    const waiter = this.#hub.add(lanes);
    const waitMs = Math.min(request.waitMs ?? 0, this.#maxWaitMs);
    const finish = () => {
      waiter.done = true;
      this.#hub.poke(waiter);
    };
    const deadline = waitMs > 0 ? setTimeout(finish, waitMs) : undefined;
    if (waitMs === 0) waiter.done = true; // one look, no wait
    const signal = request.signal;
    signal?.addEventListener('abort', finish, { once: true });
    if (signal?.aborted) waiter.done = true;
    try {
      return await this.#claimLoop(waiter, {
        lanes,
        workerId: request.workerId,
        limit,
        leaseMs,
      });
    } finally {
      clearTimeout(deadline);
      signal?.removeEventListener('abort', finish);
      this.#hub.remove(waiter);
    }
  }

  async #claimLoop(
    waiter: Waiter,
    request: { lanes: string[]; workerId: string; limit: number; leaseMs: number },
  ): Promise<RemoteClaim[]> {
    const store = this.#queue.store;
    let emptyDue = 0; // claims that came back empty although a read said work was due
    for (;;) {
      const generation = waiter.generation;
      const hint = waiter.hint;
      waiter.hint = false;
      const { claims, next } = await this.#take(async () => {
        // A job was just queued here in our lanes: claim at once; otherwise read first (a
        // read takes no write lock, so an idle long-poll writes nothing).
        const next = hint ? this.#clock.now() : await store.nextDue(request.lanes, JOB_KINDS);
        if (next === null || next > this.#clock.now()) return { claims: [], next };
        const claims = await store.claimTasks({
          ...request,
          kinds: JOB_KINDS,
          now: this.#clock.now(),
        });
        return { claims, next };
      });
      if (claims.length > 0) return claims.map((c) => toRemoteClaim(c, request.leaseMs));
      if (waiter.done || this.#stopped) return [];
      if (waiter.generation !== generation) continue; // woken while reading: look again
      if (next !== null && next <= this.#clock.now()) {
        // Due, yet another claimer took it (or a lane is full): never spin on it.
        if (++emptyDue <= 2) continue;
        await this.#hub.sleep(waiter, generation, this.#clock.now() + 50);
        continue;
      }
      emptyDue = 0;
      await this.#hub.sleep(waiter, generation, next);
    }
  }

  /** Runs `fn` after the claims before it (one claimer at a time reads and claims). */
  #take<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#turn.then(fn, fn);
    this.#turn = result.catch(() => undefined);
    return result;
  }

  /**
   * Renews the lease for `leaseMs` from now (default: the RemoteWork's defaultLeaseMs) and
   * returns the new expiry. LEASE_LOST for a stale token (nothing changes).
   */
  async heartbeat(taskId: string, leaseToken: string, leaseMs?: number): Promise<number> {
    checkParams('RemoteWork.heartbeat', remoteHeartbeatArgs, { taskId, leaseToken, leaseMs });
    const ms = this.#leaseMs('RemoteWork.heartbeat', 'leaseMs', leaseMs);
    await this.#held(taskId, leaseToken);
    return this.#queue.store.heartbeat(taskId, leaseToken, ms, this.#clock.now());
  }

  /**
   * Ends the attempt successfully with `result` (JSON; undefined is null). A result over the
   * queue's maxResultBytes fails the job instead, without retrying (as in-process).
   * LEASE_LOST for a stale token: the first settle with a token wins.
   */
  async complete(taskId: string, leaseToken: string, result: unknown): Promise<RemoteSettled> {
    checkParams('RemoteWork.complete', remoteLeaseArgs, { taskId, leaseToken });
    const claim = await this.#held(taskId, leaseToken);
    const now = this.#clock.now();
    const tooLarge = oversizedResult(claim.task.name, result, this.#queue.limits.resultBytes);
    if (tooLarge) return this.#settleFailure(claim, tooLarge, now);
    const started = claim.task.claimed_at ?? now;
    await this.#settle(successSettle(claim, result, now, Math.max(0, now - started)));
    return {
      taskId,
      attempt: claim.attempt,
      state: 'succeeded',
      availableAt: null,
      reason: null,
      error: null,
    };
  }

  /**
   * Ends the attempt as failed: the task is retried after backoff, fails (non-retryable), or
   * goes dead (poison, out of attempts), exactly as for an in-process handler that threw.
   * LEASE_LOST for a stale token; PAYLOAD_TOO_LARGE for oversized details (nothing changes).
   */
  async fail(taskId: string, leaseToken: string, failure: RemoteFailure): Promise<RemoteSettled> {
    checkParams('RemoteWork.fail', remoteFailArgs, { taskId, leaseToken, failure });
    const { error, details } = remoteError(failure);
    if (details)
      assertWithin(
        `the failure details of task ${taskId}`,
        details,
        this.#queue.limits.progressBytes,
        'report a summary',
      );
    const claim = await this.#held(taskId, leaseToken);
    return this.#settleFailure(claim, error, this.#clock.now(), details);
  }

  /**
   * Records a `task.progress` event (fenced by the lease; at most the queue's maxProgressBytes,
   * else PAYLOAD_TOO_LARGE). LEASE_LOST for a stale token.
   */
  async progress(taskId: string, leaseToken: string, data: unknown): Promise<void> {
    checkParams('RemoteWork.progress', remoteLeaseArgs, { taskId, leaseToken });
    assertWithin(
      `the progress data of task ${taskId}`,
      data,
      this.#queue.limits.progressBytes,
      'report a summary, or raise maxProgressBytes',
    );
    const claim = await this.#held(taskId, leaseToken);
    await this.#queue.store.commit([
      { op: 'task.fence', id: taskId, leaseToken },
      { op: 'event', event: claimEvent(claim, 'task.progress', { progress: data }) },
    ]);
  }

  /**
   * Hands a claimed task back unstarted, in its place in the queue, without spending an
   * attempt (a `task.released` event). LEASE_LOST for a stale token.
   */
  async release(taskId: string, leaseToken: string): Promise<RemoteSettled> {
    checkParams('RemoteWork.release', remoteLeaseArgs, { taskId, leaseToken });
    const claim = await this.#held(taskId, leaseToken);
    await this.#settle(releaseSettle(claim, this.#clock.now(), 'released_by_worker'));
    return {
      taskId,
      attempt: claim.attempt,
      state: 'queued',
      availableAt: claim.task.available_at,
      reason: null,
      error: null,
    };
  }

  async #settleFailure(
    claim: ClaimedTask,
    error: WardenError,
    now: number,
    details?: Record<string, unknown>,
  ): Promise<RemoteSettled> {
    const built = failureSettle(
      claim,
      error,
      now,
      { agingMs: this.#queue.agingMs, random: this.#random },
      details ? { details } : {},
    );
    await this.#settle(built.settle);
    const state = built.settle.state as 'queued' | 'failed' | 'dead';
    return {
      taskId: claim.task.id,
      attempt: claim.attempt,
      state,
      availableAt: state === 'queued' ? built.settle.availableAt! : null,
      reason: built.reason,
      error: built.error,
    };
  }

  /** Commits a fenced settle; LEASE_LOST (or NOT_FOUND) when it did not apply. */
  async #settle(settle: TaskSettle): Promise<void> {
    const [outcome] = await this.#queue.store.settleTasks([settle]);
    if (!outcome?.ok) throw outcome?.error ?? errors.leaseLost(settle.id);
  }

  /**
   * The running job held under `leaseToken`, as a claim; NOT_FOUND for an unknown task,
   * LEASE_LOST (with the task's state now) for anything else. A read: the write that follows
   * is fenced by the token again, so a change in between still loses cleanly.
   */
  async #held(taskId: string, leaseToken: string): Promise<ClaimedTask> {
    const task = await this.#queue.store.getTask(taskId);
    if (!task) throw errors.notFound('task', taskId);
    if (task.kind !== 'job' || task.state !== 'running' || task.lease_token !== leaseToken) {
      const lost = errors.leaseLost(taskId);
      throw new WardenError('LEASE_LOST', lost.message, {
        details: { ...lost.details, state: task.state },
      });
    }
    return { task, attempt: task.attempts, leaseToken };
  }

  #leaseMs(where: string, path: string, leaseMs: number | undefined): number {
    const ms = leaseMs ?? this.#defaultLeaseMs;
    if (ms > this.#maxLeaseMs)
      throw invalidParams(where, [
        { path, message: `expected at most ${this.#maxLeaseMs} ms (got ${ms})` },
      ]);
    return ms;
  }
}

function toRemoteClaim(claim: ClaimedTask, leaseMs: number): RemoteClaim {
  return {
    task: claim.task,
    attempt: claim.attempt,
    leaseToken: claim.leaseToken,
    leaseExpiresAt: claim.task.lease_expires_at ?? (claim.task.claimed_at ?? 0) + leaseMs,
  };
}

/**
 * The error a remote failure is recorded as. Its code is trusted only when Warden knows it
 * and a job may give it; anything else is JOB_FAILED, with the code kept in the details.
 */
export function remoteError(failure: RemoteFailure): {
  error: WardenError;
  details: Record<string, unknown> | undefined;
} {
  const given = failure.code;
  const known =
    given !== undefined &&
    Object.hasOwn(ERROR_CATALOGUE, given) &&
    !RESERVED_CODES.has(given as ErrorCode);
  const code: ErrorCode = known ? (given as ErrorCode) : 'JOB_FAILED';
  const details =
    given !== undefined && !known ? { ...failure.details, code: given } : failure.details;
  const error = new WardenError(code, failure.message, {
    ...(failure.retryable === undefined ? {} : { retryable: failure.retryable }),
    ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }),
  });
  return { error, details };
}

function stoppedError(): WardenError {
  return new WardenError('INVALID_STATE', 'RemoteWork was stopped; claims are no longer taken');
}
