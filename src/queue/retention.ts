/**
 * Retention: a background job that prunes old history so the database stays bounded
 * (DESIGN.md §6 "Retention").
 *
 * What goes, and when (horizons are ages, measured on the injected Clock at each sweep):
 * - after `finishedMs` (7 days): finished tasks (succeeded, failed, canceled) with their attempts
 *   and idempotency keys (a key lives on its task row and is released with it, so keep this
 *   horizon above the queue's idempotency window, 24 h by default); terminated and zombie runs
 *   with all their tasks, attempts and settled interrupts (a run that still has a queued,
 *   running or dead task, or a pending interrupt, stays); finished effect-journal records;
 * - after `deadMs` (30 days, never less than `finishedMs`): dead tasks (the DLQ);
 * - after `eventsMs` (30 days): events, per session, as a contiguous prefix of its log — the
 *   session keeps the anchor so `ledger verify` still checks what remains, and reading from a
 *   cursor older than it is REPLAY_GAP. Age alone decides: a long-running run's old events go too.
 *
 * A sweep first asks the store whether anything is prunable (a read); when nothing is, it
 * writes nothing — an idle system makes no write transaction. Otherwise it deletes in batches
 * of at most `batchSize` rows of each kind, ONE short write transaction per batch (the write
 * lock is shared with every other process on the database, so it is never held long), yielding
 * to the event loop between batches. Each batch records a `retention.pruned` event in the
 * `system` session in its own transaction. Several processes may sweep the same database: each
 * batch re-selects its rows under the write lock, so nothing is deleted or counted twice.
 */
import { z } from 'zod';

import {
  type Clock,
  coerceError,
  IdGenerator,
  systemClock,
  type WardenError,
} from '../core/index.ts';
import { type PruneResult, SessionDirectory, type Store } from '../store/index.ts';
import { parseOrThrow } from './options.ts';

const MINUTE = 60_000;
const DAY = 86_400_000;

export const RETENTION_DEFAULTS = {
  finishedMs: 7 * DAY,
  deadMs: 30 * DAY,
  eventsMs: 30 * DAY,
  intervalMs: 10 * MINUTE,
  batchSize: 500,
} as const;

/** Batches one sweep runs at most; the rest waits for the next sweep. */
const MAX_BATCHES_PER_SWEEP = 1_000;

const horizon = z
  .number()
  .int()
  .min(MINUTE, 'expected at least 60000 (1 minute)')
  .max(100 * 365 * DAY);

export const retentionOptionsSchema = z
  .strictObject({
    /** Age after which finished tasks, ended runs and finished effects go. @default 7 days */
    finishedMs: horizon.optional(),
    /** Age after which dead tasks (the DLQ) go; at least `finishedMs`. @default 30 days */
    deadMs: horizon.optional(),
    /** Age after which events go (per session, oldest first). @default 30 days */
    eventsMs: horizon.optional(),
    /** Time between background sweeps. @default 10 minutes */
    intervalMs: z.number().int().min(1_000).max(DAY).optional(),
    /** Most rows of each kind one batch (one write transaction) deletes. @default 500 */
    batchSize: z.number().int().min(1).max(10_000).optional(),
  })
  .superRefine((o, ctx) => {
    const finished = o.finishedMs ?? RETENTION_DEFAULTS.finishedMs;
    const dead = o.deadMs ?? RETENTION_DEFAULTS.deadMs;
    if (dead < finished)
      ctx.addIssue({
        code: 'custom',
        path: ['deadMs'],
        message: `expected at least finishedMs (${finished}): dead tasks are kept longer than finished work`,
      });
  });

export type RetentionOptions = z.input<typeof retentionOptionsSchema>;

export interface ResolvedRetentionOptions {
  readonly finishedMs: number;
  readonly deadMs: number;
  readonly eventsMs: number;
  readonly intervalMs: number;
  readonly batchSize: number;
}

/** Validates and fills defaults; INVALID_PARAMS naming the field otherwise. */
export function resolveRetentionOptions(options: RetentionOptions = {}): ResolvedRetentionOptions {
  const o = parseOrThrow(retentionOptionsSchema, options, 'retention options');
  return Object.freeze({
    finishedMs: o.finishedMs ?? RETENTION_DEFAULTS.finishedMs,
    deadMs: o.deadMs ?? RETENTION_DEFAULTS.deadMs,
    eventsMs: o.eventsMs ?? RETENTION_DEFAULTS.eventsMs,
    intervalMs: o.intervalMs ?? RETENTION_DEFAULTS.intervalMs,
    batchSize: o.batchSize ?? RETENTION_DEFAULTS.batchSize,
  });
}

export interface RetentionSweeperOptions extends RetentionOptions {
  readonly store: Store;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Failures of background sweeps (the next sweep tries again). */
  readonly onError?: (error: WardenError) => void;
}

/** What one sweep deleted, in all its batches. */
export interface SweepResult extends Omit<PruneResult, 'more'> {
  /** Write transactions the sweep made (0 when nothing was prunable). */
  readonly batches: number;
  /** The longest batch, start of its transaction to commit, in ms (wall time). */
  readonly maxBatchMs: number;
  /** True when the sweep stopped at its batch cap with more to prune. */
  readonly more: boolean;
}

type Counts = { -readonly [K in keyof Omit<PruneResult, 'more'>]: number };

export class RetentionSweeper {
  readonly options: ResolvedRetentionOptions;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #ids: IdGenerator;
  readonly #sessions: SessionDirectory;
  readonly #onError: ((error: WardenError) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<SweepResult> | undefined;
  #started = false;
  /** Set while stop() waits: a sweep in progress ends after its current batch. */
  #stopping = false;

  constructor(options: RetentionSweeperOptions) {
    const { store, clock, onError, ...rest } = options;
    this.options = resolveRetentionOptions(rest);
    this.#store = store;
    this.#clock = clock ?? store.clock ?? systemClock;
    this.#ids = new IdGenerator(this.#clock);
    this.#sessions = new SessionDirectory(store, this.#ids, this.#clock);
    this.#onError = onError;
  }

  /**
   * Sweeps now and then every `intervalMs` in the background. The timer is unref'd: it never
   * keeps the process alive.
   */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#schedule(0);
  }

  /** Stops the timer and waits for a sweep in progress (it stops after its current batch). */
  async stop(): Promise<void> {
    this.#started = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopping = true;
    try {
      await this.#running?.catch(() => undefined);
    } finally {
      this.#stopping = false;
    }
  }

  /** Runs one sweep (or joins the one in progress). */
  sweep(): Promise<SweepResult> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  #schedule(delayMs: number): void {
    if (!this.#started) return;
    this.#timer = setTimeout(() => {
      this.sweep()
        .catch((error: unknown) => this.#onError?.(coerceError(error)))
        .finally(() => this.#schedule(this.options.intervalMs));
    }, delayMs);
    this.#timer.unref();
  }

  async #sweep(): Promise<SweepResult> {
    const now = this.#clock.now();
    const policy = {
      finishedBefore: now - this.options.finishedMs,
      deadBefore: now - this.options.deadMs,
      eventsBefore: now - this.options.eventsMs,
    };
    const totals: Counts = {
      tasks: 0,
      dead_tasks: 0,
      attempts: 0,
      processes: 0,
      interrupts: 0,
      effects: 0,
      events: 0,
      sessions: 0,
    };
    let batches = 0;
    let maxBatchMs = 0;
    let more = false;
    let systemSession: string | undefined;
    for (;;) {
      // A read: with nothing to prune, no write transaction is made at all.
      if (!(await this.#store.hasPrunable(policy))) break;
      if (batches >= MAX_BATCHES_PER_SWEEP) {
        more = true;
        break;
      }
      systemSession ??= (await this.#sessions.system()).id;
      const started = performance.now();
      const result = await this.#store.prune({
        policy,
        limit: this.options.batchSize,
        event: { session_id: systemSession, trace_id: this.#ids.next('tr') },
      });
      maxBatchMs = Math.max(maxBatchMs, performance.now() - started);
      batches += 1;
      for (const key of Object.keys(totals) as Array<keyof Counts>) totals[key] += result[key];
      if (this.#stopping) {
        more = await this.#store.hasPrunable(policy);
        break;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { ...totals, batches, maxBatchMs, more };
  }
}
