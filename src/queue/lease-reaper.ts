/**
 * The one reclaim path for every task kind (DESIGN.md §6 "Recovery at start and while running").
 *
 * A running task whose lease expired, or whose owner is a dead local process, is taken back:
 * it returns to `queued` after backoff, counted as a failed attempt, or goes to `dead` when it
 * is out of attempts, so a task that kills its worker every time ends in the DLQ instead of
 * looping. One policy decides for every kind (core/failure-policy with the fingerprint
 * `LEASE_EXPIRED`; a lease expiry does not count toward poison: an external kill says nothing
 * about the task).
 *
 * Each reclaim is fenced by the lease token it read AND re-checks the expiry in the same write
 * (`expiredBy`), so a lease renewed a moment ago is never stolen, and a worker completing
 * concurrently wins or loses cleanly.
 *
 * Kinds whose reclaim must also move something else on register a {@link ReclaimHook} for the
 * store: the kernel registers one for `agent_step` (the run goes back to `ready`, or its step
 * fails and the run routes on). A process that has no hook for a kind leaves those tasks to a
 * process that has one; `job` and `plan_task` need none.
 *
 * {@link LeaseReaper} runs the reclaim continuously in every worker: a timer at the earliest
 * lease expiry (re-armed when the database changes while nothing is running), never a fixed
 * poll, and it only reads until something has expired.
 */
import {
  type Clock,
  coerceError,
  decideFailure,
  isWardenError,
  sortKey,
  type TaskKind,
  type WardenError,
} from '../core/index.ts';
import type {
  NewEvent,
  Store,
  StoreOp,
  TaskError,
  TaskRecord,
  TaskSettle,
} from '../store/index.ts';

export type ReclaimWhy = 'owner_dead' | 'lease_expired';

export interface ReclaimDecision {
  readonly state: 'queued' | 'dead';
  readonly why: ReclaimWhy;
  readonly delayMs: number;
  readonly error: TaskError;
  readonly outcome: string;
}

/** Extra operations committed with a reclaim of this kind (in the same transaction). */
export type ReclaimHook = (
  task: TaskRecord,
  decision: ReclaimDecision,
  now: number,
) => Promise<StoreOp[]>;

const hooksByStore = new WeakMap<Store, Map<TaskKind, ReclaimHook>>();
/** Kinds that need nothing beyond the task's own settle. */
const PLAIN_KINDS: ReadonlySet<TaskKind> = new Set(['job', 'plan_task']);

/** Registers what a reclaim of `kind` must also do; returns the unregister function. */
export function registerReclaimHook(store: Store, kind: TaskKind, hook: ReclaimHook): () => void {
  let hooks = hooksByStore.get(store);
  if (!hooks) hooksByStore.set(store, (hooks = new Map<TaskKind, ReclaimHook>()));
  hooks.set(kind, hook);
  return () => {
    if (hooks.get(kind) === hook) hooks.delete(kind);
  };
}

/**
 * The kinds this process can reclaim: those that need nothing more, and those with a hook.
 * Others' expired leases are not even read (they would starve the ones we can handle).
 */
export function handledKinds(store: Store): TaskKind[] {
  return [...new Set<TaskKind>([...PLAIN_KINDS, ...(hooksByStore.get(store)?.keys() ?? [])])];
}

export interface ReclaimOptions {
  readonly isDeadOwner: (owner: string) => boolean;
  readonly agingMs: number;
  readonly random?: () => number;
  readonly limit?: number;
}

/** The settle (with its events) that takes back `task`, and the decision behind it. */
export function reclaimSettle(
  task: TaskRecord,
  why: ReclaimWhy,
  now: number,
  agingMs: number,
  random: () => number = Math.random,
): { settle: TaskSettle; decision: ReclaimDecision } {
  const error: TaskError = {
    code: 'LEASE_EXPIRED',
    message:
      why === 'owner_dead'
        ? `worker ${task.lease_owner} died holding the lease`
        : `the lease held by ${task.lease_owner} expired`,
    retryable: true,
    fingerprint: 'LEASE_EXPIRED',
  };
  const failure = decideFailure(
    {
      attempt: task.attempts,
      maxAttempts: task.max_attempts,
      retryable: true,
      fingerprint: 'LEASE_EXPIRED',
      previous: task.options.consecutive_fingerprint,
      poisonThreshold: task.options.poison_threshold,
      backoff: {
        base_ms: task.options.backoff_ms,
        max_ms: task.options.max_backoff_ms,
        jitter: 'full',
      },
      countsTowardPoison: false,
    },
    random,
  );
  const state = failure.state === 'queued' ? 'queued' : 'dead';
  const decision: ReclaimDecision = {
    state,
    why,
    delayMs: failure.delayMs,
    error,
    outcome: failure.outcome,
  };
  const base = {
    session_id: task.session_id,
    trace_id: task.trace_id,
    process_id: task.process_id,
    task_id: task.id,
    attempt: task.attempts,
  };
  const events: NewEvent[] = [
    {
      ...base,
      type: 'task.lease_expired',
      data: { owner: task.lease_owner, why, attempt: task.attempts },
    },
    state === 'queued'
      ? {
          ...base,
          type: 'task.retry_scheduled',
          data: {
            attempt: task.attempts,
            max_attempts: task.max_attempts,
            delay_ms: failure.delayMs,
            error,
          },
        }
      : {
          ...base,
          type: 'task.dead',
          data: { attempts: task.attempts, reason: failure.outcome, error },
        },
  ];
  const availableAt = now + failure.delayMs;
  return {
    decision,
    settle: {
      id: task.id,
      leaseToken: task.lease_token!,
      state,
      error,
      availableAt,
      sortKey: sortKey(availableAt, task.priority, agingMs),
      attemptOutcome: 'lease_expired',
      // A dead owner's lease is taken at once; an expiry is re-checked in the write.
      ...(why === 'lease_expired' ? { expiredBy: now } : {}),
      now,
      events,
    },
  };
}

/**
 * Reclaims every expired lease (and every lease of a dead local owner) this process can
 * handle. Returns how many tasks were taken back.
 */
export async function reclaimExpiredLeases(
  store: Store,
  now: number,
  options: ReclaimOptions,
): Promise<number> {
  const owners = await store.listLeaseOwners();
  const dead = owners.filter((owner) => options.isDeadOwner(owner));
  const hooks = hooksByStore.get(store);
  const expired = await store.findExpiredLeases(
    now,
    dead,
    options.limit ?? 1_000,
    handledKinds(store),
  );
  if (expired.length === 0) return 0;
  const plain: TaskSettle[] = [];
  let count = 0;
  for (const task of expired) {
    const why: ReclaimWhy = dead.includes(task.lease_owner ?? '') ? 'owner_dead' : 'lease_expired';
    const { settle, decision } = reclaimSettle(task, why, now, options.agingMs, options.random);
    const hook = hooks?.get(task.kind);
    if (!hook) {
      if (PLAIN_KINDS.has(task.kind)) plain.push(settle);
      continue;
    }
    try {
      const { events, ...op } = settle;
      await store.commit([
        { op: 'task.settle', ...op },
        ...events.map((event): StoreOp => ({ op: 'event', event })),
        ...(await hook(task, decision, now)),
      ]);
      count += 1;
    } catch (error) {
      // The worker finished or renewed first (LEASE_LOST), or the run moved on (CONFLICT).
      if (!isWardenError(error, 'LEASE_LOST') && !isWardenError(error, 'CONFLICT')) throw error;
    }
  }
  if (plain.length > 0) {
    const outcomes = await store.settleTasks(plain);
    count += outcomes.filter((o) => o.ok).length;
  }
  return count;
}

export interface LeaseReaperOptions extends ReclaimOptions {
  readonly store: Store;
  readonly clock: Clock;
  /** Longest sleep between looks while leases are held. @default 15_000 */
  readonly maxWaitMs?: number;
  readonly onReclaimed?: (count: number) => void;
  readonly onError?: (error: WardenError) => void;
}

/** Shortest gap between two reclaim passes (a lease this process cannot handle stays expired). */
const MIN_GAP_MS = 250;

export class LeaseReaper {
  readonly #options: LeaseReaperOptions;
  #timer: NodeJS.Timeout | undefined;
  #armedFor: number | null = null;
  #unwatch: (() => void) | null = null;
  #running = false;
  #busy: Promise<void> = Promise.resolve();

  constructor(options: LeaseReaperOptions) {
    this.#options = options;
  }

  /** Reclaims what has expired now, then keeps watching. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    // A claim anywhere (with a shorter lease than ours, say) may create an earlier expiry than
    // the one armed: look (a read) and re-arm when it is earlier or nothing is armed.
    // Deferred to the next loop turn and coalesced: the change that woke us is usually a claim
    // whose handler should start first.
    this.#unwatch = this.#options.store.watchChanges(() => {
      if (this.#rearmQueued) return;
      this.#rearmQueued = true;
      setImmediate(() => {
        this.#rearmQueued = false;
        this.#rearm();
      });
    });
    this.#kick();
    await this.#busy;
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#unwatch?.();
    this.#unwatch = null;
    clearTimeout(this.#timer);
    this.#armedFor = null;
    await this.#busy;
  }

  #kick(): void {
    if (this.#passQueued) return;
    this.#passQueued = true;
    this.#busy = this.#busy.then(() => {
      this.#passQueued = false;
      return this.#pass();
    });
  }

  async #pass(): Promise<void> {
    if (!this.#running) return;
    clearTimeout(this.#timer);
    this.#armedFor = null;
    const { store, clock } = this.#options;
    try {
      const count = await reclaimExpiredLeases(store, clock.now(), this.#options);
      if (count > 0) this.#options.onReclaimed?.(count);
    } catch (error) {
      this.#options.onError?.(coerceError(error));
    }
    if (!this.#running) return;
    let next: number | null;
    try {
      next = await store.nextLeaseExpiry(handledKinds(store));
    } catch (error) {
      // Never sleep without a timer on a failed read: look again after the longest wait.
      this.#options.onError?.(coerceError(error));
      next = clock.now() + (this.#options.maxWaitMs ?? 15_000);
    }
    if (next === null) return; // nothing running: the next change re-arms
    this.#arm(next);
  }

  /** Sets the timer for a lease expiring at `next` (never sooner than MIN_GAP_MS from now). */
  #arm(next: number): void {
    if (!this.#running) return;
    clearTimeout(this.#timer);
    const now = this.#options.clock.now();
    const wait = Math.min(Math.max(MIN_GAP_MS, next - now + 1), this.#options.maxWaitMs ?? 15_000);
    this.#armedFor = now + wait;
    this.#timer = setTimeout(() => this.#kick(), wait);
    this.#timer.unref();
  }

  #checking = false;
  #rearmQueued = false;
  /** A pass is queued behind the one running (further kicks meanwhile add nothing). */
  #passQueued = false;

  /**
   * After a change: re-arm if a lease now expires before the armed time, or arm when nothing
   * was (a change cannot create an expired lease, so one read is enough, not a pass). Reads only.
   */
  #rearm(): void {
    if (!this.#running || this.#checking || this.#passQueued) return;
    this.#checking = true;
    this.#options.store
      .nextLeaseExpiry(handledKinds(this.#options.store))
      .then(
        (next) => {
          const armedFor = this.#armedFor;
          if (next !== null && (armedFor === null || next + 1 < armedFor)) this.#arm(next);
        },
        () => undefined,
      )
      .finally(() => (this.#checking = false));
  }
}
