/**
 * A remote worker: runs `job` tasks of a daemon's lanes in this process, over ACP.
 *
 * The claim loop asks for at most as many tasks as it has free slots (`concurrency`), with a
 * `wait_ms` long-poll so an idle worker costs one call per `waitMs`, not a busy loop. Each
 * claim runs its handler at once; while it runs, a heartbeat every `leaseMs / 3` extends the
 * lease with the claim's attempt token. Then the worker completes or fails the task with the
 * same token.
 *
 * Failures, bluntly:
 * - LEASE_LOST (from a heartbeat): the attempt is over on the daemon (lease expired and the
 *   task was reclaimed, or it was canceled). The handler's `signal` aborts and its result is
 *   dropped; another attempt may already be running elsewhere.
 * - The connection drops: the client reconnects; the claim loop claims again; heartbeats,
 *   complete and fail of running attempts are retried, because an attempt token stays valid
 *   while its lease lasts. Past the lease they give up (the daemon reclaims the task).
 *   A complete whose answer was lost may have taken effect: its retry then answers LEASE_LOST.
 * - Stopping (`signal` aborts): no new claims; running handlers finish and are settled; claims
 *   that arrive after the stop (the long-poll in flight) are handed back with `task.release`,
 *   which spends no attempt. Stopping therefore takes up to `waitMs` plus the running handlers.
 */
import { z } from 'zod';

import { checkParams, coerceError, isWardenError, WardenError } from '../core/index.ts';
import { WardenClient } from './client.ts';
import type { WardenClientOptions } from './options.ts';
import type { Claim, TaskFailure, TaskRecord } from './types.ts';

/** What a handler gets for one attempt. */
export interface RemoteJob {
  readonly id: string;
  readonly name: string;
  readonly payload: unknown;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Aborts when the lease is lost (reason: a LEASE_LOST WardenError): stop working. */
  readonly signal: AbortSignal;
  /** Records a `task.progress` event on the task's session. */
  progress(data: unknown): Promise<void>;
  readonly task: TaskRecord;
  /**
   * The attempt's token (what heartbeats and settles it): for handing the attempt to another
   * program that reports on it. A secret while the attempt lasts; useless after.
   */
  readonly attemptToken: string;
}

/**
 * Runs one job; its return value is the task's result. Throw to fail the attempt: a
 * WardenError keeps its code and retryability; anything else is a retryable JOB_FAILED.
 */
export type RemoteJobHandler = (job: RemoteJob) => unknown;

export interface RemoteWorkerOptions {
  /** A connected client (left open), or… */
  readonly client?: WardenClient;
  /** …options to connect one (closed when the worker stops). */
  readonly connect?: WardenClientOptions;
  /** Lanes to claim from. */
  readonly lanes: readonly string[];
  /** Handlers by job name; a job without one fails, not retryable. */
  readonly handlers: Readonly<Record<string, RemoteJobHandler>>;
  /** Jobs run at once. @default 1 */
  readonly concurrency?: number;
  /** Lease per claim; heartbeats every third of it. @default 30000 */
  readonly leaseMs?: number;
  /** Long-poll of one `task.claim`. @default 10000 */
  readonly waitMs?: number;
  /** Shown as the lease owner. @default 'remote-worker' */
  readonly workerName?: string;
  /** Stops the worker gracefully. */
  readonly signal?: AbortSignal;
  /** Errors the worker recovers from or drops (a failed heartbeat, a lost lease, a release that failed). @default ignore */
  readonly onError?: (error: WardenError, taskId: string | undefined) => void;
}

/** Counts of what the worker did, returned when it stops. */
export interface RemoteWorkerSummary {
  claimed: number;
  completed: number;
  failed: number;
  released: number;
  leaseLost: number;
}

const fn = z.custom<(...args: never[]) => unknown>(
  (v) => typeof v === 'function',
  'expected a function',
);
const optionsSchema = z
  .strictObject({
    client: z
      .custom<WardenClient>((v) => v instanceof WardenClient, 'expected a WardenClient')
      .optional(),
    connect: z.custom<WardenClientOptions>((v) => typeof v === 'object' && v !== null).optional(),
    lanes: z.array(z.string().min(1)).min(1),
    handlers: z.record(z.string(), fn),
    concurrency: z.number().int().min(1).max(256).optional(),
    leaseMs: z.number().int().min(30).optional(),
    waitMs: z.number().int().min(0).max(60_000).optional(),
    workerName: z.string().min(1).optional(),
    signal: z
      .custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal')
      .optional(),
    onError: fn.optional(),
  })
  .refine(
    (o) => (o.client === undefined) !== (o.connect === undefined),
    'expected exactly one of client and connect',
  );

/**
 * Runs until `signal` aborts (then stops gracefully) or the client closes for good (then
 * rejects with its error, after the running handlers are done). Resolves with a summary.
 */
export async function runRemoteWorker(options: RemoteWorkerOptions): Promise<RemoteWorkerSummary> {
  checkParams('runRemoteWorker', optionsSchema, options);
  const client = options.client ?? (await WardenClient.connect(options.connect!));
  const worker = new RemoteWorkerLoop(client, options);
  try {
    return await worker.run();
  } finally {
    if (options.client === undefined) await client.close();
  }
}

class RemoteWorkerLoop {
  readonly #client: WardenClient;
  readonly #o: RemoteWorkerOptions;
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #waitMs: number;
  readonly #running = new Set<Promise<void>>();
  readonly #summary: RemoteWorkerSummary = {
    claimed: 0,
    completed: 0,
    failed: 0,
    released: 0,
    leaseLost: 0,
  };
  readonly #stopped: Promise<void>;

  constructor(client: WardenClient, options: RemoteWorkerOptions) {
    this.#client = client;
    this.#o = options;
    this.#concurrency = options.concurrency ?? 1;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#waitMs = options.waitMs ?? 10_000;
    const signal = options.signal;
    this.#stopped = new Promise((resolve) => {
      if (signal === undefined) return;
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  get #stopping(): boolean {
    return this.#o.signal?.aborted === true;
  }

  async run(): Promise<RemoteWorkerSummary> {
    let fatal: WardenError | undefined;
    let failures = 0;
    while (!this.#stopping) {
      const free = this.#concurrency - this.#running.size;
      if (free <= 0) {
        await Promise.race([this.#stopped, ...this.#running]);
        continue;
      }
      let claims: Claim[];
      try {
        ({ claims } = await this.#client.tasks.claim({
          lanes: [...this.#o.lanes],
          limit: free,
          lease_ms: this.#leaseMs,
          wait_ms: this.#waitMs,
          worker_name: this.#o.workerName ?? 'remote-worker',
        }));
        failures = 0;
      } catch (error) {
        const e = coerceError(error);
        if (!e.retryable || this.#client.closed) {
          fatal = e;
          break;
        }
        this.#report(e, undefined);
        failures++;
        await this.#pause(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)));
        continue;
      }
      this.#summary.claimed += claims.length;
      for (const claim of claims) {
        if (this.#stopping) await this.#release(claim);
        else this.#start(claim);
      }
    }
    await Promise.all(this.#running);
    if (fatal !== undefined) throw fatal;
    return { ...this.#summary };
  }

  #start(claim: Claim): void {
    const done = this.#attempt(claim).catch((error: unknown) =>
      this.#report(coerceError(error), claim.task.id),
    );
    this.#running.add(done);
    void done.finally(() => this.#running.delete(done));
  }

  /** One attempt: heartbeat while the handler runs, then settle with the attempt token. */
  async #attempt(claim: Claim): Promise<void> {
    const taskId = claim.task.id;
    const token = claim.attempt_token;
    const controller = new AbortController();
    let leaseDeadline = Date.now() + this.#leaseMs;
    let lost = false;
    let beating = false;
    // Once the handler is done the settle decides; a heartbeat still in flight then may find the
    // task already settled (LEASE_LOST), which says nothing about this attempt.
    let settling = false;
    const beat = async () => {
      if (beating || lost || settling) return;
      beating = true;
      try {
        await this.#client.tasks.heartbeat(
          { task_id: taskId, attempt_token: token, lease_ms: this.#leaseMs },
          { timeoutMs: Math.max(1, Math.floor(this.#leaseMs / 3)) },
        );
        leaseDeadline = Date.now() + this.#leaseMs;
      } catch (error) {
        const e = coerceError(error);
        if (settling) return;
        if (e.code === 'LEASE_LOST') {
          lost = true;
          controller.abort(e);
        }
        this.#report(e, taskId); // anything else: the next beat tries again
      } finally {
        beating = false;
      }
    };
    const timer = setInterval(() => void beat(), Math.max(10, Math.floor(this.#leaseMs / 3)));
    try {
      const outcome = await this.#runHandler(claim, controller.signal);
      settling = true;
      clearInterval(timer);
      if (lost) {
        this.#summary.leaseLost++;
        return;
      }
      await this.#settle(claim, outcome, () => leaseDeadline);
    } finally {
      clearInterval(timer);
    }
  }

  async #runHandler(
    claim: Claim,
    signal: AbortSignal,
  ): Promise<{ result: unknown } | { error: TaskFailure }> {
    const task = claim.task;
    const handler = this.#o.handlers[task.name];
    if (handler === undefined) {
      return {
        error: {
          message: `no handler for job '${task.name}' on remote worker '${this.#o.workerName ?? 'remote-worker'}' (it handles ${Object.keys(this.#o.handlers).join(', ') || 'nothing'})`,
          code: 'NOT_FOUND',
          retryable: false,
          details: { job: task.name },
        },
      };
    }
    const job: RemoteJob = {
      id: task.id,
      name: task.name,
      payload: task.payload,
      attempt: claim.attempt,
      signal,
      task,
      attemptToken: claim.attempt_token,
      progress: async (data: unknown) => {
        await this.#client.tasks.progress({
          task_id: task.id,
          attempt_token: claim.attempt_token,
          data,
        });
      },
    };
    try {
      return { result: (await handler(job)) ?? null };
    } catch (error) {
      return { error: failureOf(error) };
    }
  }

  /** Completes or fails the attempt, retrying transient errors while the lease may last. */
  async #settle(
    claim: Claim,
    outcome: { result: unknown } | { error: TaskFailure },
    leaseDeadline: () => number,
  ): Promise<void> {
    const base = { task_id: claim.task.id, attempt_token: claim.attempt_token };
    for (let tries = 1; ; tries++) {
      try {
        if ('error' in outcome) {
          await this.#client.tasks.fail({ ...base, error: outcome.error });
          this.#summary.failed++;
        } else {
          await this.#client.tasks.complete({ ...base, result: outcome.result });
          this.#summary.completed++;
        }
        return;
      } catch (error) {
        const e = coerceError(error);
        if (e.code === 'LEASE_LOST') {
          this.#summary.leaseLost++;
          this.#report(e, claim.task.id);
          return;
        }
        if (!e.retryable || this.#client.closed || Date.now() > leaseDeadline()) {
          this.#report(e, claim.task.id);
          return;
        }
        await sleep(Math.min(2_000, 50 * 2 ** Math.min(tries, 6)));
      }
    }
  }

  async #release(claim: Claim): Promise<void> {
    try {
      await this.#client.tasks.release({
        task_id: claim.task.id,
        attempt_token: claim.attempt_token,
      });
      this.#summary.released++;
    } catch (error) {
      this.#report(coerceError(error), claim.task.id);
    }
  }

  #pause(ms: number): Promise<void> {
    return Promise.race([sleep(ms), this.#stopped]);
  }

  #report(error: WardenError, taskId: string | undefined): void {
    try {
      this.#o.onError?.(error, taskId);
    } catch {
      // the reporter's own failure has nowhere to go
    }
  }
}

/** The `task.fail` error for what a handler threw (the same rules as in-process job workers). */
function failureOf(error: unknown): TaskFailure {
  const e = isWardenError(error)
    ? error
    : new WardenError('JOB_FAILED', error instanceof Error ? error.message : String(error), {
        retryable: true,
      });
  return {
    message: e.message,
    code: e.code,
    retryable: e.retryable,
    ...(e.retryAfterMs === undefined ? {} : { retry_after_ms: e.retryAfterMs }),
    ...(e.details === undefined ? {} : { details: e.details }),
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
