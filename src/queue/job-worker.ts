/**
 * Runs jobs: claims them from its lanes in batches with a lease, runs the registered handler
 * with an AbortSignal, and settles the results in batches, each fenced by its lease token.
 *
 * Loop (one per worker, see claim-loop.ts): claim (BEGIN IMMEDIATE, up to the worker's free
 * handler slots plus a small prefetch, and never past the lane's concurrency across every
 * process) → start handlers → when nothing is due, sleep without writing until the database
 * changes (this process or another), a handler frees a slot, or the next delayed task is due.
 * Expired leases of every kind are reclaimed continuously (lease-reaper.ts).
 *
 * Completion: results are buffered and settled together on the next turn of the event loop, so
 * many handlers finishing together cost one transaction. A settle whose lease was lost (the
 * task was reclaimed or canceled) is rejected by the store and changes nothing: the handler's
 * result is dropped, and counted in `stats.leaseLost`.
 *
 * Failures follow core/failure-policy: non-retryable → failed; same error N times in a row →
 * dead (poison); out of attempts → dead; otherwise re-queued with backoff and full jitter.
 */
import {
  assertWithin,
  checkParams,
  type Clock,
  coerceError,
  type EventType,
  isWardenError,
  randomToken,
  sortKey,
  WardenError,
} from '../core/index.ts';
import type { ClaimedTask, ClaimRequest, NewEvent, TaskSettle } from '../store/index.ts';
import { claimEvent, releaseSettle } from './claim-events.ts';
import { ClaimLoop } from './claim-loop.ts';
import { EffectJournal, type EffectOptions } from './effects.ts';
import { HeartbeatPump } from './heartbeat-pump.ts';
import type { JobQueue } from './job-queue.ts';
import { LeaseReaper } from './lease-reaper.ts';
import { DEFAULTS } from './options.ts';
import { isDeadLocalOwner, localWorkerId } from './owner-liveness.ts';
import { handleArgs, jobWorkerArgs, nonRetryableArgs, retryAfterArgs, stopArgs } from './params.ts';
import { RunState } from './run-state.ts';
import { failureSettle, oversizedResult, successSettle } from './settle-builder.ts';

export interface JobContext<P = unknown> {
  readonly id: string;
  readonly name: string;
  readonly payload: P;
  readonly lane: string;
  /** 1-based attempt number. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Aborted on cancel, timeout, lease loss or worker shutdown. */
  readonly signal: AbortSignal;
  /** Records a `task.progress` event (fenced by the lease). */
  progress(data: unknown): Promise<void>;
  /**
   * Adds small facts (an evidence file's hash, say) to the `task.succeeded` event this attempt
   * commits if it succeeds — in the same transaction as the result, at no extra write. Later
   * notes with the same key win. Bounded like progress data.
   */
  note(data: Record<string, unknown>): void;
  /** Runs a side effect at most once per key (see EffectJournal). */
  effect<T>(
    key: string,
    request: unknown,
    fn: () => Promise<T> | T,
    options?: EffectOptions<T>,
  ): Promise<T>;
}

export type JobHandler<P = unknown, R = unknown> = (job: JobContext<P>) => Promise<R> | R;

export interface JobWorkerOptions {
  readonly queue: JobQueue;
  /** Lanes to work. @default every lane the queue declares */
  readonly lanes?: readonly string[];
  /**
   * Handlers this worker runs at once per lane (a number for every lane, or per lane name).
   * The lane's own concurrency still holds across all workers. @default 8, or the lane's
   * concurrency when that is lower
   */
  readonly concurrency?: number | Readonly<Record<string, number>>;
  /** @default 15_000 */
  readonly leaseMs?: number;
  /** @default leaseMs / 3 */
  readonly heartbeatMs?: number;
  /** A worker whose event loop stalls this long stops renewing its leases. @default 4 × leaseMs */
  readonly stallLimitMs?: number;
  /** @default 'auto' (a heartbeat thread when the database is a file) */
  readonly heartbeat?: 'auto' | 'thread' | 'timer';
  /** Most tasks one claim takes. @default 256 */
  readonly claimBatch?: number;
  /**
   * Tasks claimed ahead of free handler slots, per lane, so a finished handler's slot is
   * refilled without a round trip (their leases are renewed like running ones). None in a lane
   * with a lane-wide concurrency (a prefetched task holds one of its slots). The default, the
   * worker's concurrency, never hoards much work another worker could start now; more suits
   * many short jobs (fewer, larger transactions). 0 claims only for free slots. On stop,
   * unstarted tasks go back to the queue without spending an attempt.
   * @default the worker's concurrency in the lane
   */
  readonly prefetch?: number;
  /** @default `<host>/<pid>/<random>/<namespace>` (see owner-liveness.ts) */
  readonly id?: string;
  readonly random?: () => number;
  readonly isDeadOwner?: (owner: string) => boolean;
  /** Errors the worker handled but could not report anywhere else. */
  readonly onError?: (error: WardenError) => void;
}

export interface JobWorkerStats {
  claimed: number;
  succeeded: number;
  retried: number;
  failed: number;
  dead: number;
  canceled: number;
  leaseLost: number;
  reclaimed: number;
  /** Claimed tasks handed back unstarted on stop (no attempt spent). */
  released: number;
}

interface Running {
  readonly claim: ClaimedTask;
  readonly controller: AbortController;
  readonly startedAt: number;
  timer: NodeJS.Timeout | undefined;
  /** What the handler noted for its success event. */
  notes?: Record<string, unknown>;
}

export class JobWorker {
  readonly id: string;
  readonly stats: JobWorkerStats = {
    claimed: 0,
    succeeded: 0,
    retried: 0,
    failed: 0,
    dead: 0,
    canceled: 0,
    leaseLost: 0,
    reclaimed: 0,
    released: 0,
  };
  readonly #queue: JobQueue;
  readonly #clock: Clock;
  readonly #handlers = new Map<string, JobHandler<never, unknown>>();
  readonly #lanes: ReadonlyArray<{
    name: string;
    concurrency: number;
    prefetch: number;
    /** A lane-wide concurrency (across every process) is declared. */
    shared: boolean;
  }>;
  readonly #active = new Map<string, Running>();
  /** Handlers executing, per lane (bounded by the lane's concurrency). */
  readonly #runningPerLane = new Map<string, number>();
  /** Leases held, per lane: waiting + running + being settled. */
  readonly #heldPerLane = new Map<string, number>();
  /** Slots a settle-and-claim in flight may fill (see #flush). */
  readonly #reserved = new Map<string, number>();
  /** Claimed, not started yet, per lane. */
  readonly #waiting = new Map<string, ClaimedTask[]>();
  readonly #leaseMs: number;
  readonly #claimBatch: number;
  readonly #random: () => number;
  readonly #isDeadOwner: (owner: string) => boolean;
  readonly #effects: EffectJournal;
  readonly #pump: HeartbeatPump;
  readonly #claimLoop: ClaimLoop;
  readonly #reaper: LeaseReaper;
  readonly #options: JobWorkerOptions;
  #pendingSettles: TaskSettle[] = [];
  /** Unstarted claims being handed back on stop (settled without ever running). */
  readonly #returning = new Map<string, string>();
  #settleScheduled = false;
  #settling: Promise<void> = Promise.resolve();
  readonly #state = new RunState();
  #unsubscribe: (() => void) | null = null;
  #scheduler: NodeJS.Timeout | undefined;

  /** INVALID_PARAMS naming the option for a bad one (`queue` is required). */
  constructor(options: JobWorkerOptions) {
    checkParams('new JobWorker', jobWorkerArgs, { options });
    this.#options = options;
    this.#queue = options.queue;
    this.#clock = options.queue.clock;
    const names = options.lanes ?? [...options.queue.lanes.keys()];
    this.#leaseMs = options.leaseMs ?? 15_000;
    this.#claimBatch = options.claimBatch ?? 256;
    this.#lanes = names.map((name) => {
      const lane = options.queue.lanes.get(name);
      if (!lane)
        throw new WardenError(
          'INVALID_PARAMS',
          `unknown lane '${name}' (declared: ${[...options.queue.lanes.keys()].join(', ')})`,
        );
      const own =
        typeof options.concurrency === 'number'
          ? options.concurrency
          : (options.concurrency?.[name] ??
            Math.min(lane.concurrency ?? DEFAULTS.workerConcurrency, DEFAULTS.workerConcurrency));
      if (!Number.isInteger(own) || own < 1)
        throw new WardenError(
          'INVALID_PARAMS',
          `concurrency for lane '${name}' must be a positive integer (got ${String(own)})`,
        );
      // A prefetched task holds a lease, so it takes one of the lane's slots across processes:
      // a lane with a lane-wide concurrency gets no prefetch (it would keep work from the
      // other workers); others the worker's own concurrency unless asked for more (short jobs:
      // a deeper local queue makes each settle-and-claim transaction carry more tasks).
      const prefetch = lane.concurrency === null ? (options.prefetch ?? own) : 0;
      return { name, concurrency: own, prefetch, shared: lane.concurrency !== null };
    });
    this.#random = options.random ?? Math.random;
    this.#isDeadOwner = options.isDeadOwner ?? isDeadLocalOwner;
    this.id = options.id ?? localWorkerId(randomToken(4));
    this.#effects = new EffectJournal(options.queue.store, this.#clock);
    this.#pump = new HeartbeatPump({
      store: options.queue.store,
      clock: this.#clock,
      leaseMs: this.#leaseMs,
      heartbeatMs: options.heartbeatMs ?? Math.floor(this.#leaseMs / 3),
      stallLimitMs: options.stallLimitMs ?? this.#leaseMs * 4,
      mode: options.heartbeat ?? 'auto',
      onLost: (ids) => {
        for (const id of ids) {
          const running = this.#active.get(id);
          if (running)
            running.controller.abort(new WardenError('LEASE_LOST', `lost the lease on task ${id}`));
          else if (this.#dropWaiting(id)) this.stats.leaseLost += 1;
        }
      },
    });
    this.#claimLoop = new ClaimLoop({
      store: options.queue.store,
      clock: this.#clock,
      workerId: this.id,
      leaseMs: this.#leaseMs,
      kinds: ['job'],
      claimBatch: this.#claimBatch,
      room: () => this.#lanes.map((lane) => ({ lane: lane.name, room: this.#room(lane) })),
      onClaimed: (claims) => this.#startAll(claims),
      ...(options.onError ? { onError: options.onError } : {}),
    });
    this.#reaper = new LeaseReaper({
      store: options.queue.store,
      clock: this.#clock,
      isDeadOwner: this.#isDeadOwner,
      agingMs: options.queue.agingMs,
      random: this.#random,
      maxWaitMs: this.#leaseMs,
      onReclaimed: (n) => (this.stats.reclaimed += n),
      ...(options.onError ? { onError: options.onError } : {}),
    });
  }

  /** Registers the handler for a job name. */
  handle<P = unknown, R = unknown>(name: string, handler: JobHandler<P, R>): this {
    checkParams('JobWorker.handle', handleArgs, { name, handler });
    this.#handlers.set(name, handler);
    return this;
  }

  get activeCount(): number {
    return this.#active.size;
  }

  get heartbeatMode(): 'thread' | 'timer' {
    return this.#pump.mode;
  }

  /**
   * Declares the queue's lanes, recovers (reclaims dead and expired leases), starts working.
   * A start that fails undoes what it started, and may be tried again; `stop()` called while
   * starting waits for the start to finish first.
   */
  start(): Promise<void> {
    return this.#state.start(
      () => this.#start(),
      () => this.#teardown(),
    );
  }

  async #start(): Promise<void> {
    await this.#queue.ready();
    this.#pump.start();
    const lanes = new Set(this.#lanes.map((l) => l.name));
    this.#unsubscribe = this.#queue.store.onCommit((events) => {
      for (const e of events) {
        // Queued here, in one of our lanes: claim at once, no read first (the in-process fast path).
        if (e.type === 'task.queued' && lanes.has((e.data as { lane?: string }).lane ?? ''))
          this.#claimLoop.poke(true);
        if (e.type !== 'task.canceled' || !e.task_id) continue;
        if (this.#dropWaiting(e.task_id)) this.stats.canceled += 1;
        this.#active.get(e.task_id)?.controller.abort(
          new WardenError('CANCELED', `task ${e.task_id} was canceled`, {
            details: { by: 'request' },
          }),
        );
      }
    });
    await this.#reaper.start();
    await this.#fireSchedules();
    this.#claimLoop.start();
  }

  /** Stops the background parts (each is a no-op when it never started). */
  async #teardown(): Promise<void> {
    await this.#claimLoop.stop();
    clearTimeout(this.#scheduler);
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    await this.#reaper.stop();
    await this.#pump.stop();
  }

  /** Stops claiming and waits for running handlers (aborting them when `abort` is true). */
  async stop(options: { abort?: boolean } = {}): Promise<void> {
    checkParams('JobWorker.stop', stopArgs, { options });
    if (!(await this.#state.beginStop())) return;
    // Hand back what has not started BEFORE anything can finish and start it (#drain does
    // nothing once stopping): unstarted claims go back to the queue without spending an attempt.
    this.#returnWaiting();
    if (options.abort)
      for (const r of this.#active.values())
        r.controller.abort(new WardenError('CANCELED', 'worker stopping'));
    await this.#claimLoop.stop();
    this.#returnWaiting(); // a claim that landed while the loop was stopping
    while (this.#active.size > 0 || this.#pendingSettles.length > 0 || this.#returning.size > 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await this.#settling;
    }
    await this.#teardown();
  }

  /** Claim transactions this worker has run (empty ones too). */
  get claimTransactions(): number {
    return this.#claimLoop.claims;
  }

  #poke(): void {
    this.#claimLoop.poke();
  }

  /**
   * Registers every claimed lease with the heartbeat thread BEFORE any handler runs (a handler
   * that blocks the event loop from its first line must already be covered), buffers the
   * claims, and starts as many as the lanes have free slots.
   */
  #startAll(claims: readonly ClaimedTask[]): void {
    if (claims.length === 0) return;
    for (const claim of claims) {
      this.stats.claimed += 1;
      this.#pump.track(claim.task.id, claim.leaseToken);
      const lane = claim.task.lane;
      this.#heldPerLane.set(lane, (this.#heldPerLane.get(lane) ?? 0) + 1);
      let queue = this.#waiting.get(lane);
      if (!queue) this.#waiting.set(lane, (queue = []));
      queue.push(claim);
    }
    this.#pump.flush();
    for (const lane of new Set(claims.map((c) => c.task.lane))) this.#drain(lane);
  }

  /** Starts buffered claims while the lane has free handler slots. */
  #drain(lane: string): void {
    if (!this.#state.running) return; // stopping: buffered claims are handed back, not started
    const queue = this.#waiting.get(lane);
    const limit = this.#lanes.find((l) => l.name === lane)?.concurrency ?? 0;
    while (queue && queue.length > 0 && (this.#runningPerLane.get(lane) ?? 0) < limit) {
      const claim = queue.shift()!;
      this.#runningPerLane.set(lane, (this.#runningPerLane.get(lane) ?? 0) + 1);
      this.#prepare(claim)();
    }
  }

  /** Forgets a buffered (unstarted) claim whose lease is gone. */
  #dropWaiting(id: string): boolean {
    for (const [lane, queue] of this.#waiting) {
      const i = queue.findIndex((c) => c.task.id === id);
      if (i === -1) continue;
      queue.splice(i, 1);
      this.#heldPerLane.set(lane, (this.#heldPerLane.get(lane) ?? 1) - 1);
      this.#pump.untrack(id);
      this.#poke();
      return true;
    }
    return false;
  }

  /** On stop: unstarted claims go back to the queue; a claim that never ran is not an attempt. */
  #returnWaiting(): void {
    const now = this.#clock.now();
    for (const queue of this.#waiting.values()) {
      for (const claim of queue.splice(0)) {
        this.#pendingSettles.push(releaseSettle(claim, now, 'worker_stopped'));
        this.#returning.set(claim.task.id, claim.task.lane);
      }
    }
    if (this.#pendingSettles.length > 0) this.#flush();
  }

  #prepare(claim: ClaimedTask): () => void {
    const task = claim.task;
    const controller = new AbortController();
    const running: Running = { claim, controller, startedAt: this.#clock.now(), timer: undefined };
    this.#active.set(task.id, running);
    if (task.options.timeout_ms !== null) {
      const ms = task.options.timeout_ms;
      running.timer = setTimeout(
        () =>
          controller.abort(
            new WardenError('TIMEOUT', `job ${task.name} exceeded its timeout of ${ms} ms`, {
              retryable: true,
            }),
          ),
        ms,
      );
    }
    const handler = this.#handlers.get(task.name);
    if (!handler) {
      return () =>
        this.#finish(
          running,
          undefined,
          new WardenError(
            'INVALID_PARAMS',
            `no handler is registered for job '${task.name}' in worker ${this.id}`,
            { retryable: false },
          ),
          'dead',
        );
    }
    return () => {
      const ctx: JobContext = {
        id: task.id,
        name: task.name,
        payload: task.payload,
        lane: task.lane,
        attempt: claim.attempt,
        maxAttempts: task.max_attempts,
        signal: controller.signal,
        progress: async (data) => {
          assertWithin(
            `the progress data of job '${task.name}'`,
            data,
            this.#queue.limits.progressBytes,
            'report a summary, or raise maxProgressBytes',
          );
          await this.#queue.store.commit([
            { op: 'task.fence', id: task.id, leaseToken: claim.leaseToken },
            { op: 'event', event: this.#event(claim, 'task.progress', { progress: data }) },
          ]);
        },
        note: (data) => {
          const notes = { ...running.notes, ...data };
          assertWithin(
            `the notes of job '${task.name}'`,
            notes,
            this.#queue.limits.progressBytes,
            'note a summary (a hash, a path), not the data',
          );
          running.notes = notes;
        },
        effect: (key, request, fn, options) =>
          this.#effects.forClaim(claim, this.#isDeadOwner).effect(key, request, fn, options),
      };
      let result: Promise<unknown>;
      try {
        result = Promise.resolve((handler as JobHandler)(ctx));
      } catch (error) {
        result = Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      result.then(
        (value) => this.#finish(running, value, undefined),
        (error: unknown) =>
          this.#finish(running, undefined, handlerError(error, controller.signal)),
      );
    };
  }

  #finish(running: Running, value: unknown, error: WardenError | undefined, force?: 'dead'): void {
    clearTimeout(running.timer);
    const { claim } = running;
    const task = claim.task;
    // The handler is done: its slot goes to the next buffered claim now, not after the settle.
    this.#runningPerLane.set(task.lane, (this.#runningPerLane.get(task.lane) ?? 1) - 1);
    this.#drain(task.lane);
    const now = this.#clock.now();
    if (
      running.controller.signal.aborted &&
      isWardenError(running.controller.signal.reason, 'LEASE_LOST')
    ) {
      this.stats.leaseLost += 1;
      this.#release(task.id, task.lane);
      return; // the lease is gone: someone else owns the task now
    }
    const reason: unknown = running.controller.signal.reason;
    if (
      running.controller.signal.aborted &&
      isWardenError(reason, 'CANCELED') &&
      reason.details?.by === 'request'
    ) {
      this.stats.canceled += 1;
      this.#release(task.id, task.lane);
      return; // the store already moved the task to canceled and cleared its lease
    }
    const duration = now - running.startedAt;
    // An oversized (or non-JSON) result fails the job, not the settle batch it would ride in.
    if (!error) error = oversizedResult(task.name, value, this.#queue.limits.resultBytes);
    let settle: TaskSettle;
    if (!error) {
      settle = successSettle(claim, value, now, duration, running.notes);
    } else if (
      error.code === 'CANCELED' &&
      running.controller.signal.aborted &&
      isWardenError(running.controller.signal.reason, 'CANCELED')
    ) {
      // Aborted by the worker's own shutdown (a cancel by request returned above): give it back.
      settle = this.#handBack(claim, error.message, now, {
        error: { code: 'CANCELED', message: error.message },
      });
    } else {
      settle = failureSettle(
        claim,
        error,
        now,
        { agingMs: this.#queue.agingMs, random: this.#random },
        force ? { force } : {},
      ).settle;
    }
    this.#pendingSettles.push(settle);
    if (!this.#settleScheduled) {
      this.#settleScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  /**
   * Commits the finished handlers' settles. While the worker runs and its claim loop is not
   * claiming itself, the same transaction claims the next tasks for the slots these settles free
   * (one commit instead of two per turn); the loop's room excludes that reservation until then.
   */
  #flush(): void {
    this.#settleScheduled = false;
    const batch = this.#pendingSettles.splice(0);
    if (batch.length === 0) return;
    const claims = this.#claimWithSettle(batch);
    const store = this.#queue.store;
    const commit =
      claims.length > 0
        ? store.settleAndClaim(batch, claims)
        : store.settleTasks(batch).then((settled) => ({ settled, claimed: [] }));
    this.#settling = commit.then(
      ({ settled: outcomes, claimed }) => {
        outcomes.forEach((outcome, i) => {
          const settle = batch[i]!;
          const running = this.#active.get(settle.id);
          if (!outcome.ok) this.stats.leaseLost += 1;
          else if (settle.state === 'succeeded') this.stats.succeeded += 1;
          else if (settle.attemptOutcome === 'released') this.stats.released += 1;
          else if (settle.state === 'queued') this.stats.retried += 1;
          else if (settle.state === 'failed') this.stats.failed += 1;
          else if (settle.state === 'dead') this.stats.dead += 1;
          this.#release(settle.id, running?.claim.task.lane ?? this.#returning.get(settle.id));
        });
        // Held before the reservation goes, so the claim loop never counts these slots free.
        if (this.#state.running) this.#startAll(claimed);
        else this.#handBackAll(claimed);
        this.#reserved.clear();
      },
      (error: unknown) => {
        this.#reserved.clear();
        // The store failed (busy, disk): the leases lapse and the tasks are reclaimed and retried.
        this.#options.onError?.(coerceError(error));
        for (const settle of batch)
          this.#release(
            settle.id,
            this.#active.get(settle.id)?.claim.task.lane ?? this.#returning.get(settle.id),
          );
      },
    );
  }

  /** Claim requests for the slots `batch` frees, reserved in #reserved; none while claiming. */
  #claimWithSettle(batch: readonly TaskSettle[]): ClaimRequest[] {
    if (!this.#state.running || this.#claimLoop.claiming || this.#reserved.size > 0) return [];
    const freed = new Map<string, number>();
    for (const settle of batch) {
      const lane = this.#active.get(settle.id)?.claim.task.lane ?? this.#returning.get(settle.id);
      if (lane !== undefined) freed.set(lane, (freed.get(lane) ?? 0) + 1);
    }
    const now = this.#clock.now();
    const requests: ClaimRequest[] = [];
    for (const lane of this.#lanes) {
      // A lane-wide limit's freed slots go back to every process: the claim loops race for them
      // after the commit, instead of this worker taking them all in the settle's transaction.
      if (lane.shared) continue;
      const room = this.#room(lane) + (freed.get(lane.name) ?? 0);
      if (room <= 0) continue;
      this.#reserved.set(lane.name, room);
      requests.push({
        lanes: [lane.name],
        kinds: ['job'],
        workerId: this.id,
        limit: Math.min(room, this.#claimBatch),
        leaseMs: this.#leaseMs,
        now,
      });
    }
    return requests;
  }

  /** Free slots of a lane: handlers plus prefetch, less what is held or reserved. */
  #room(lane: { name: string; concurrency: number; prefetch: number }): number {
    return (
      lane.concurrency +
      lane.prefetch -
      (this.#heldPerLane.get(lane.name) ?? 0) -
      (this.#reserved.get(lane.name) ?? 0)
    );
  }

  /** Claims that landed while stopping: straight back to the queue, no attempt spent. */
  #handBackAll(claims: readonly ClaimedTask[]): void {
    if (claims.length === 0) return;
    for (const claim of claims) {
      this.stats.claimed += 1;
      const lane = claim.task.lane;
      this.#heldPerLane.set(lane, (this.#heldPerLane.get(lane) ?? 0) + 1);
      let queue = this.#waiting.get(lane);
      if (!queue) this.#waiting.set(lane, (queue = []));
      queue.push(claim);
    }
    this.#returnWaiting();
  }

  /** The task's lease is no longer ours (settled, lost or canceled). */
  #release(id: string, lane: string | undefined): void {
    const wasActive = this.#active.delete(id);
    const wasReturned = this.#returning.delete(id);
    if (!wasActive && !wasReturned) return;
    this.#pump.untrack(id);
    if (lane) this.#heldPerLane.set(lane, (this.#heldPerLane.get(lane) ?? 1) - 1);
    this.#poke();
  }

  /**
   * Fires due schedules (each occurrence once, even with several workers or after a restart:
   * the store moves next_run_at in the same transaction), then sleeps until the next one.
   */
  async #fireSchedules(): Promise<void> {
    clearTimeout(this.#scheduler);
    let next: number | null = null;
    try {
      // Read first: firing is a write, and an idle worker makes none.
      const due = async () => {
        const enabled = (await this.#queue.store.listSchedules()).filter((s) => s.enabled);
        return enabled.length ? Math.min(...enabled.map((s) => s.next_run_at)) : null;
      };
      next = await due();
      if (next !== null && next <= this.#clock.now()) {
        await this.#queue.fireDueSchedules();
        next = await due();
      }
    } catch (error) {
      this.#options.onError?.(coerceError(error));
    }
    if (!this.#state.running) return;
    // New schedules may be added by other processes: look again within 5 s at most.
    const wait = next === null ? 5_000 : Math.min(5_000, Math.max(10, next - this.#clock.now()));
    this.#scheduler = setTimeout(() => void this.#fireSchedules(), wait);
    this.#scheduler.unref();
  }

  /** Gives a claimed task back to the queue, due now (worker stopping). */
  #handBack(
    claim: ClaimedTask,
    message: string,
    now: number,
    data: Record<string, unknown>,
  ): TaskSettle {
    const task = claim.task;
    return {
      id: task.id,
      leaseToken: claim.leaseToken,
      state: 'queued',
      error: { code: 'CANCELED', message },
      availableAt: now,
      sortKey: sortKey(now, task.priority, this.#queue.agingMs),
      attemptOutcome: 'canceled',
      now,
      events: [
        this.#event(claim, 'task.retry_scheduled', {
          attempt: claim.attempt,
          delay_ms: 0,
          ...data,
        }),
      ],
    };
  }

  #event(claim: ClaimedTask, type: EventType, data: unknown): NewEvent {
    return claimEvent(claim, type, data);
  }
}

/** A handler's failure: Warden errors keep their code; anything else is a retryable JOB_FAILED. */
function handlerError(error: unknown, signal: AbortSignal): WardenError {
  if (signal.aborted && isWardenError(signal.reason)) return signal.reason;
  if (isWardenError(error)) return error;
  return new WardenError('JOB_FAILED', error instanceof Error ? error.message : String(error), {
    cause: error,
    retryable: true,
  });
}

/** Throw from a handler to fail the job without retrying it. */
export function nonRetryable(message: string, details?: Record<string, unknown>): WardenError {
  checkParams('nonRetryable', nonRetryableArgs, { message, details });
  return new WardenError('JOB_FAILED', message, {
    retryable: false,
    ...(details ? { details } : {}),
  });
}

/** Throw from a handler to retry after a given delay instead of the backoff policy. */
export function retryAfter(delayMs: number, message = `retry in ${delayMs} ms`): WardenError {
  checkParams('retryAfter', retryAfterArgs, { delayMs, message });
  return new WardenError('JOB_FAILED', message, { retryable: true, retryAfterMs: delayMs });
}
