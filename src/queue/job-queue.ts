/**
 * The job API for TypeScript users: submit typed jobs to lanes, await their results, inspect
 * and redrive dead letters, and schedule recurring jobs. Workers ({@link JobWorker}) run them.
 *
 * Guarantees (DESIGN.md §6): a submit is durable when it resolves (and in `strict` mode
 * survives power loss); an idempotency key returns the existing task for 24 h by default; a full
 * lane answers QUEUE_FULL with `retry_after_ms` and accepts nothing of the batch.
 */
import {
  backoffCeilingMs,
  canonicalJson,
  checkParams,
  type Clock,
  coerceError,
  DEFAULT_AGING_MS,
  describeValue,
  errors,
  type EventType,
  IdGenerator,
  invalidParams,
  isTerminalTaskState,
  isWardenError,
  priorityRank,
  resolveLimit,
  sha256Hex,
  sortKey,
  systemClock,
  WardenError,
} from '../core/index.ts';
import {
  type AttemptRecord,
  type NewSession,
  type ScheduleFire,
  type ScheduleRecord,
  SessionDirectory,
  type Store,
  type StoreOp,
  type TaskRecord,
  waitForChange,
} from '../store/index.ts';
import {
  assertJobName,
  assertLaneName,
  DEFAULTS,
  type LaneOptions,
  laneOptionsSchema,
  parseOrThrow,
  type SubmitOptions,
  submitOptionsSchema,
} from './options.ts';
import {
  cancelTaskArgs,
  deadLettersArgs,
  jobQueueArgs,
  resultArgs,
  scheduleArgs,
  scheduleNameArgs,
  taskIdArgs,
  taskIdByArgs,
} from './params.ts';
import { nextOccurrence, validateCron } from './schedule-time.ts';

export interface ResolvedLane {
  readonly name: string;
  /** Most tasks of the lane running at once across every worker and process; null = no limit. */
  readonly concurrency: number | null;
  readonly maxDepth: number;
}

export interface JobQueueOptions {
  readonly store: Store;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Declared lanes; `default` always exists. Submitting to an undeclared lane is INVALID_PARAMS. */
  readonly lanes?: Readonly<Record<string, LaneOptions>>;
  /** @default 24 h */
  readonly idempotencyWindowMs?: number;
  /** Largest job payload, in bytes of JSON; a larger submit is PAYLOAD_TOO_LARGE. @default 1 MiB */
  readonly maxPayloadBytes?: number;
  /**
   * Largest job result, in bytes of JSON: a handler that returns more fails the job, without
   * retrying, with PAYLOAD_TOO_LARGE (the result is not stored). @default 1 MiB
   */
  readonly maxResultBytes?: number;
  /** Largest `job.progress(data)` report, in bytes of JSON (PAYLOAD_TOO_LARGE). @default 64 KiB */
  readonly maxProgressBytes?: number;
  /** @default 10_000 */
  readonly agingMs?: number;
  /**
   * Virtual time each task takes from its session's share of a lane (fair queueing across
   * sessions: tasks of different sessions interleave). @default 1
   */
  readonly fairnessQuantumMs?: number;
  /**
   * The session directory to share (e.g. `kernel.sessions`): with one directory per process,
   * a session deleted through one is never served from another's cache. @default a new one
   */
  readonly sessions?: SessionDirectory;
}

export interface SubmittedJob {
  readonly id: string;
  readonly deduplicated: boolean;
  readonly task: TaskRecord;
}

export interface ScheduleSpec {
  /** A cron expression (UTC), e.g. `*\/5 * * * *`; or give `everyMs`. */
  readonly cron?: string;
  readonly everyMs?: number;
  readonly job: string;
  readonly payload?: unknown;
  readonly lane?: string;
  readonly options?: Omit<SubmitOptions, 'lane' | 'delayMs' | 'runAt' | 'idempotencyKey'>;
  /** @default true */
  readonly enabled?: boolean;
}

/** The size limits a queue enforces, in bytes of JSON (see {@link JobQueueOptions}). */
export interface QueueLimits {
  readonly payloadBytes: number;
  readonly resultBytes: number;
  readonly progressBytes: number;
}

const NO_OPTIONS: ReturnType<typeof submitOptionsSchema.parse> = {};

export class JobQueue {
  readonly store: Store;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly sessions: SessionDirectory;
  readonly lanes: ReadonlyMap<string, ResolvedLane>;
  readonly limits: QueueLimits;
  readonly #idempotencyWindowMs: number;
  readonly #maxPayloadBytes: number;
  readonly #agingMs: number;
  readonly #fairnessQuantumMs: number;
  #ready: Promise<void> | null = null;
  /** The limits each lane was declared with here (omitted ones keep what the store has). */
  readonly #declared = new Map<string, { concurrency?: number; maxDepth?: number }>();

  /** INVALID_PARAMS naming the option for a bad one (`store` is required). */
  constructor(options: JobQueueOptions) {
    checkParams('new JobQueue', jobQueueArgs, { options });
    this.store = options.store;
    this.clock = options.clock ?? options.store.clock ?? systemClock;
    this.ids = new IdGenerator(this.clock);
    this.sessions = options.sessions ?? new SessionDirectory(this.store, this.ids, this.clock);
    const lanes = new Map<string, ResolvedLane>();
    for (const [name, raw] of Object.entries({ [DEFAULTS.lane]: {}, ...options.lanes })) {
      assertLaneName(name);
      const lane = parseOrThrow(laneOptionsSchema, raw, `lane ${name}`);
      this.#declared.set(name, lane);
      lanes.set(
        name,
        Object.freeze({
          name,
          concurrency: lane.concurrency ?? null,
          maxDepth: lane.maxDepth ?? DEFAULTS.laneMaxDepth,
        }),
      );
    }
    this.lanes = lanes;
    this.#idempotencyWindowMs = options.idempotencyWindowMs ?? DEFAULTS.idempotencyWindowMs;
    this.limits = Object.freeze({
      payloadBytes: resolveLimit(
        'maxPayloadBytes',
        options.maxPayloadBytes,
        DEFAULTS.maxPayloadBytes,
      ),
      resultBytes: resolveLimit('maxResultBytes', options.maxResultBytes, DEFAULTS.maxResultBytes),
      progressBytes: resolveLimit(
        'maxProgressBytes',
        options.maxProgressBytes,
        DEFAULTS.maxProgressBytes,
      ),
    });
    this.#maxPayloadBytes = this.limits.payloadBytes;
    this.#agingMs = options.agingMs ?? DEFAULT_AGING_MS;
    this.#fairnessQuantumMs = options.fairnessQuantumMs ?? 1;
  }

  /**
   * Declares this queue's lanes in the store, once: their concurrency and depth limits then
   * hold for every process on the database. Writes only when a lane's limits changed. Submit
   * and JobWorker.start call it; call it yourself to surface a store error early.
   */
  ready(): Promise<void> {
    this.#ready ??= this.#declareLanes().catch((error: unknown) => {
      this.#ready = null; // try again next time
      throw error;
    });
    return this.#ready;
  }

  async #declareLanes(): Promise<void> {
    const stored = new Map((await this.store.listLanes()).map((l) => [l.name, l]));
    const now = this.clock.now();
    // A limit this queue does not state leaves the stored one alone: declaring `small: {}` in
    // one process must not lift the limits another process declared.
    const rows = [...this.lanes.values()].flatMap((lane) => {
      const declared = this.#declared.get(lane.name) ?? {};
      const s = stored.get(lane.name);
      const row = {
        name: lane.name,
        concurrency: declared.concurrency ?? (s ? s.concurrency : lane.concurrency),
        max_depth: declared.maxDepth ?? (s ? s.max_depth : lane.maxDepth),
        updated_at: now,
      };
      return s && s.concurrency === row.concurrency && s.max_depth === row.max_depth ? [] : [row];
    });
    if (rows.length === 0) return;
    const system = await this.sessions.system();
    await this.store.commit(
      rows.flatMap((row): StoreOp[] => [
        { op: 'lane.upsert', row },
        {
          op: 'event',
          event: {
            session_id: system.id,
            type: 'lane.configured',
            trace_id: this.ids.next('tr'),
            data: { lane: row.name, concurrency: row.concurrency, max_depth: row.max_depth },
          },
        },
      ]),
    );
  }

  /** The ageing step per priority rank, in ms (retries and redrives use it too). */
  get agingMs(): number {
    return this.#agingMs;
  }

  /** Submits one job. */
  async submit<P>(name: string, payload: P, options: SubmitOptions = {}): Promise<SubmittedJob> {
    const [result] = await this.#submitMany([{ name, payload, options }]);
    return result!;
  }

  /** Submits many jobs in one transaction (all or none). */
  async submitMany(
    jobs: ReadonlyArray<{ name: string; payload: unknown; options?: SubmitOptions }>,
  ): Promise<SubmittedJob[]> {
    // Checked by hand, not by a schema: a bulk submit must not copy every job first.
    if (!Array.isArray(jobs))
      throw invalidParams('JobQueue.submitMany', [
        {
          path: 'jobs',
          message: `expected an array of jobs [{ name, payload, options? }, …] (got ${describeValue(jobs)})`,
        },
      ]);
    jobs.forEach((job: unknown, i) => {
      if (job === null || typeof job !== 'object' || Array.isArray(job))
        throw invalidParams('JobQueue.submitMany', [
          {
            path: `jobs[${i}]`,
            message: `expected a job { name, payload, options? } (got ${describeValue(job)})`,
          },
        ]);
    });
    return this.#submitMany(jobs);
  }

  async #submitMany(
    jobs: ReadonlyArray<{ name: string; payload: unknown; options?: SubmitOptions }>,
  ): Promise<SubmittedJob[]> {
    if (jobs.length === 0) return [];
    await this.ready();
    const now = this.clock.now();
    // Validate every job before creating any session: bad input changes nothing.
    const built = jobs.map((job) => ({
      task: this.#buildTask(
        job.name,
        job.payload,
        // No options is the common bulk case: nothing to validate.
        job.options === undefined
          ? NO_OPTIONS
          : parseOrThrow(submitOptionsSchema, job.options, 'submit options'),
        now,
      ),
      session: job.options?.session ?? 'system',
    }));
    // Sessions that do not exist yet are created in the submit's own transaction, so a refused
    // batch (QUEUE_FULL, IDEMPOTENCY_CONFLICT) leaves none behind.
    const sessionIds = new Map<string, string>();
    const sessions: NewSession[] = [];
    const tasks: TaskRecord[] = [];
    for (const { task, session } of built) {
      let sessionId = sessionIds.get(session);
      if (!sessionId) {
        const prepared = await this.sessions.prepare(session);
        if (prepared.create) sessions.push(prepared.create);
        sessionId = prepared.id;
        sessionIds.set(session, sessionId);
      }
      tasks.push({ ...task, session_id: sessionId });
    }
    const results = await this.store.submitTasks({
      tasks,
      ...(sessions.length ? { sessions } : {}),
      idempotencyWindowMs: this.#idempotencyWindowMs,
      now,
      fairness: { quantumMs: this.#fairnessQuantumMs, agingMs: this.#agingMs },
    });
    return results.map((r) => ({ id: r.task.id, deduplicated: r.deduplicated, task: r.task }));
  }

  #buildTask(
    nameInput: string,
    payload: unknown,
    options: ReturnType<typeof submitOptionsSchema.parse>,
    now: number,
  ): TaskRecord {
    const name = assertJobName(nameInput);
    const lane = options.lane ?? DEFAULTS.lane;
    if (!this.lanes.has(lane)) {
      throw new WardenError(
        'INVALID_PARAMS',
        `unknown lane '${lane}' (declared lanes: ${[...this.lanes.keys()].join(', ')}); declare it in the queue's lanes`,
        {
          details: { lane },
        },
      );
    }
    let text: string | undefined;
    try {
      text = JSON.stringify(payload ?? null);
    } catch (error) {
      throw new WardenError(
        'INVALID_PARAMS',
        `the payload of job '${name}' is not serialisable as JSON: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const bytes = Buffer.byteLength(text);
    if (bytes > this.#maxPayloadBytes) {
      throw new WardenError(
        'PAYLOAD_TOO_LARGE',
        `the payload of job '${name}' is ${bytes} bytes of JSON; the limit is ${this.#maxPayloadBytes}: pass a reference to large data instead, or raise maxPayloadBytes`,
        {
          details: { what: 'job payload', name, bytes, max_bytes: this.#maxPayloadBytes },
        },
      );
    }
    const rank =
      options.priority === undefined
        ? priorityRank('normal')
        : typeof options.priority === 'number'
          ? options.priority
          : priorityRank(options.priority);
    const availableAt = options.runAt ?? now + (options.delayMs ?? 0);
    const backoff = options.backoff ?? { baseMs: DEFAULTS.backoffMs, maxMs: DEFAULTS.maxBackoffMs };
    return {
      id: this.ids.next('t'),
      kind: 'job',
      name,
      lane,
      session_id: '',
      process_id: null,
      payload: JSON.parse(text) as unknown,
      state: 'queued',
      priority: rank,
      sort_key: sortKey(availableAt, rank, this.#agingMs),
      available_at: availableAt,
      attempts: 0,
      max_attempts: options.attempts ?? DEFAULTS.maxAttempts,
      lease_owner: null,
      lease_token: null,
      lease_expires_at: null,
      idempotency_key: options.idempotencyKey ?? null,
      last_error: null,
      result: null,
      trace_id: this.ids.next('tr'),
      options: {
        backoff_ms: backoff.baseMs,
        max_backoff_ms: Math.max(backoff.maxMs, backoff.baseMs),
        timeout_ms: options.timeoutMs ?? null,
        poison_threshold: options.poisonThreshold ?? DEFAULTS.poisonThreshold,
        consecutive_fingerprint: null,
        ...(options.idempotencyKey
          ? { request_hash: sha256Hex(canonicalJson({ name, payload: payload ?? null })) }
          : {}),
      },
      created_at: now,
      updated_at: now,
    };
  }

  /** The task; NOT_FOUND when there is none. */
  async get(id: string): Promise<TaskRecord> {
    checkParams('JobQueue.get', taskIdArgs, { id });
    return this.#get(id);
  }

  async #get(id: string): Promise<TaskRecord> {
    const task = await this.store.getTask(id);
    if (!task) throw errors.notFound('task', id);
    return task;
  }

  /**
   * Cancels a queued, running or dead task. A running handler's AbortSignal fires (at once in
   * this process, at its next heartbeat elsewhere) and its late result is rejected.
   */
  async cancel(id: string, reason = 'canceled by request'): Promise<TaskRecord> {
    checkParams('JobQueue.cancel', cancelTaskArgs, { id, reason });
    // Compare-and-set on the state read: if the task moves on meanwhile (it succeeds, is
    // reclaimed), the commit aborts with CONFLICT and writes nothing; read again and decide again.
    for (let tries = 0; ; tries++) {
      const task = await this.#get(id);
      if (isTerminalTaskState(task.state) && task.state !== 'dead') return task;
      if (task.kind === 'agent_step') {
        throw new WardenError(
          'INVALID_PARAMS',
          `task ${id} is a workflow step; cancel its run (${task.process_id ?? '?'}) instead`,
        );
      }
      try {
        await this.store.commit([
          {
            op: 'task.cancel',
            id,
            expectState: task.state as 'queued' | 'running' | 'dead',
            leaseToken: task.lease_token,
            now: this.clock.now(),
          },
          this.#event(task, 'task.canceled', { reason, from: task.state }),
        ]);
        return await this.#get(id);
      } catch (error) {
        if (!isWardenError(error, 'CONFLICT') || tries >= 8) throw error;
      }
    }
  }

  /**
   * Resolves with the job's result once it succeeds; rejects with the job's error when it ends
   * failed, dead or canceled, or with TIMEOUT after `timeoutMs`.
   */
  async result<R = unknown>(id: string, options: { timeoutMs?: number } = {}): Promise<R> {
    checkParams('JobQueue.result', resultArgs, { id, options });
    // Woken by any change to the database, from this process or another: no polling.
    let last: TaskRecord | undefined;
    const done = await waitForChange(
      this.store,
      async () => {
        const task = (last = await this.#get(id));
        if (task.state === 'succeeded') return { result: task.result as R };
        if (isTerminalTaskState(task.state)) {
          throw new WardenError(
            'JOB_FAILED',
            `job ${id} ended ${task.state}${task.last_error ? `: [${task.last_error.code}] ${task.last_error.message}` : ''}`,
            {
              retryable: false,
              details: { task_id: id, state: task.state, error: task.last_error },
            },
          );
        }
        return undefined;
      },
      { deadline: this.clock.now() + (options.timeoutMs ?? 60_000), now: () => this.clock.now() },
    );
    if (done) return done.result;
    throw new WardenError('TIMEOUT', `job ${id} is still ${last!.state} after the wait`, {
      details: { task_id: id, state: last!.state },
    });
  }

  /** Dead letters, newest last. */
  async deadLetters(options: { lane?: string; limit?: number } = {}): Promise<TaskRecord[]> {
    checkParams('JobQueue.deadLetters', deadLettersArgs, { options });
    return this.store.listTasks({
      states: ['dead'],
      ...(options.lane ? { lane: options.lane } : {}),
      limit: options.limit ?? 100,
    });
  }

  /** A task with every recorded attempt. */
  async inspect(id: string): Promise<{ task: TaskRecord; attempts: AttemptRecord[] }> {
    checkParams('JobQueue.inspect', taskIdArgs, { id });
    return { task: await this.#get(id), attempts: await this.store.listAttempts(id) };
  }

  /** Dead → queued with attempts reset (audited as a `task.redriven` event). */
  async redrive(id: string, by = 'operator'): Promise<TaskRecord> {
    checkParams('JobQueue.redrive', taskIdByArgs, { id, by });
    const task = await this.#get(id);
    const now = this.clock.now();
    await this.store.commit([
      { op: 'task.redrive', id, sortKey: sortKey(now, task.priority, this.#agingMs), now },
      this.#event(task, 'task.redriven', {
        by,
        attempts_before: task.attempts,
        last_error: task.last_error,
      }),
    ]);
    return this.#get(id);
  }

  /** Deletes a dead task (audited as a `task.purged` event). */
  async purge(id: string, by = 'operator'): Promise<void> {
    checkParams('JobQueue.purge', taskIdByArgs, { id, by });
    const task = await this.#get(id);
    await this.store.commit([
      { op: 'task.purge', id },
      this.#event(task, 'task.purged', {
        by,
        name: task.name,
        lane: task.lane,
        attempts: task.attempts,
      }),
    ]);
  }

  /** Creates or replaces a recurring schedule. */
  async schedule(name: string, spec: ScheduleSpec): Promise<ScheduleRecord> {
    checkParams('JobQueue.schedule', scheduleArgs, { name, spec });
    const lane = spec.lane ?? DEFAULTS.lane;
    if (!this.lanes.has(lane))
      throw new WardenError('INVALID_PARAMS', `unknown lane '${lane}' for schedule '${name}'`);
    if ((spec.cron === undefined) === (spec.everyMs === undefined)) {
      throw new WardenError(
        'INVALID_PARAMS',
        `schedule '${name}' needs exactly one of cron or everyMs`,
      );
    }
    if (spec.cron !== undefined) validateCron(spec.cron);
    if (spec.everyMs !== undefined && (!Number.isInteger(spec.everyMs) || spec.everyMs < 1_000)) {
      throw new WardenError(
        'INVALID_PARAMS',
        `schedule '${name}': everyMs must be an integer of at least 1000`,
      );
    }
    parseOrThrow(submitOptionsSchema, spec.options ?? {}, `schedule ${name} options`);
    const now = this.clock.now();
    const existing = (await this.store.listSchedules()).find((s) => s.name === name);
    const kind = spec.cron !== undefined ? 'cron' : 'interval';
    const expr = spec.cron ?? String(spec.everyMs);
    const anchor = existing?.created_at ?? now;
    const row: ScheduleRecord = {
      id: existing?.id ?? this.ids.next('t').replace(/^t_/, 'sch_'),
      name,
      kind,
      expr,
      job: spec.job,
      lane,
      payload: spec.payload ?? null,
      options: spec.options ?? {},
      enabled: spec.enabled ?? true,
      next_run_at: nextOccurrence(kind, expr, now, anchor),
      last_run_at: existing?.last_run_at ?? null,
      last_task_id: existing?.last_task_id ?? null,
      failures: 0,
      last_error: null,
      created_at: anchor,
      updated_at: now,
    };
    const system = await this.sessions.system();
    await this.store.commit([
      { op: 'schedule.upsert', row },
      {
        op: 'event',
        event: {
          session_id: system.id,
          type: 'schedule.updated',
          trace_id: this.ids.next('tr'),
          data: { name, kind, expr, job: spec.job, lane, next_run_at: row.next_run_at },
        },
      },
    ]);
    return row;
  }

  async unschedule(name: string): Promise<void> {
    checkParams('JobQueue.unschedule', scheduleNameArgs, { name });
    const system = await this.sessions.system();
    await this.store.commit([
      { op: 'schedule.delete', name },
      {
        op: 'event',
        event: {
          session_id: system.id,
          type: 'schedule.deleted',
          trace_id: this.ids.next('tr'),
          data: { name },
        },
      },
    ]);
  }

  /**
   * Fires every due schedule once, each in its own transaction (see Store.fireSchedule), and
   * returns the tasks created. A schedule whose task cannot be built or stored (an unknown lane,
   * an oversized payload, bad stored options) does not block the others: the occurrence is
   * deferred with a `schedule.failed` event, `failures` + 1 and `last_error`, and retried after
   * a capped exponential backoff (1 s, 2 s, 4 s … 1 h; see DEFAULTS.scheduleRetry*). A later
   * successful firing resets `failures`. Store errors that are not the schedule's fault (a busy
   * database) are rethrown after every other schedule had its turn.
   */
  async fireDueSchedules(): Promise<TaskRecord[]> {
    const now = this.clock.now();
    const due = await this.store.listDueSchedules(now);
    if (due.length === 0) return [];
    const system = await this.sessions.system();
    const fired: TaskRecord[] = [];
    let storeError: WardenError | undefined;
    for (const s of due) {
      let fire: ScheduleFire;
      try {
        fire = this.#occurrence(s, now, system.id);
      } catch (error) {
        const deferError = await this.#deferSchedule(s, now, system.id, coerceError(error));
        storeError ??= deferError;
        continue;
      }
      try {
        const task = await this.store.fireSchedule(fire);
        if (task) fired.push(task);
      } catch (raw) {
        const error = coerceError(raw);
        if (error.retryable) storeError ??= error;
        else {
          const deferError = await this.#deferSchedule(s, now, system.id, error);
          storeError ??= deferError;
        }
      }
    }
    if (storeError) throw storeError;
    return fired;
  }

  /** The task and next occurrence of a due schedule; throws what makes it unfireable. */
  #occurrence(s: ScheduleRecord, now: number, systemId: string): ScheduleFire {
    const options = parseOrThrow(submitOptionsSchema, s.options, `schedule ${s.name} options`);
    const task = this.#buildTask(s.job, s.payload, { ...options, lane: s.lane }, now);
    return {
      id: s.id,
      expectedNextRunAt: s.next_run_at,
      nextRunAt: nextOccurrence(s.kind, s.expr, Math.max(now, s.next_run_at), s.created_at),
      task: { ...task, session_id: systemId },
      now,
    };
  }

  /** Backs off an occurrence that cannot fire; returns the store's error if even that failed. */
  async #deferSchedule(
    s: ScheduleRecord,
    now: number,
    systemId: string,
    error: WardenError,
  ): Promise<WardenError | undefined> {
    const delay = backoffCeilingMs(
      {
        base_ms: DEFAULTS.scheduleRetryBaseMs,
        max_ms: DEFAULTS.scheduleRetryMaxMs,
        jitter: 'none',
      },
      s.failures + 1,
    );
    try {
      await this.store.deferSchedule({
        id: s.id,
        expectedNextRunAt: s.next_run_at,
        retryAt: now + delay,
        error: { code: error.code, message: error.message },
        now,
        sessionId: systemId,
        traceId: this.ids.next('tr'),
      });
      return undefined;
    } catch (deferError) {
      return coerceError(deferError);
    }
  }

  #event(task: TaskRecord, type: EventType, data: unknown): StoreOp {
    return {
      op: 'event',
      event: {
        session_id: task.session_id,
        type,
        trace_id: task.trace_id,
        process_id: task.process_id,
        task_id: task.id,
        data,
      },
    };
  }
}
