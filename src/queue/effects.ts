/**
 * The effect journal (DESIGN.md §2.3): at-least-once execution, at-most-once effects.
 *
 *   const effects = journal.forClaim(claim);            // scoped to one attempt (lease)
 *   await effects.effect(key, request, () => sendEmail(request), { reconcile });
 *
 * A record per key, in one of three states. Every transition below is ONE store transaction
 * holding a compare-and-set on the record's status AND owner (the lease token of the owning
 * attempt) together with its `effect.*` event (in the task's session, with task, process,
 * attempt and trace ids). A transition whose expectation no longer holds changes nothing.
 *
 *   (absent) ──begin──▶ pending(A) ──A: fn returned──▶ done            (terminal: never changes)
 *                          │    └─────A: fn threw────▶ failed
 *                          └──B: takeover──▶ pending(B)
 *   failed ──B: retry──▶ pending(B)
 *
 * - begin (`effect.started`): an attempt A inserts `pending(A)` BEFORE running `fn`. Fenced by
 *   A's lease in the same transaction: an attempt that has lost its lease cannot start an
 *   effect (LEASE_LOST, nothing written).
 * - finish (`effect.completed` / `effect.failed`): only the owner A may move `pending(A)` to
 *   `done` (result and its hash) or `failed` (the error). NOT fenced by the lease: A may have
 *   lost its lease while `fn` ran, but the effect happened, and recording it is exactly what
 *   lets the next attempt see `done` instead of repeating it. If the record is no longer
 *   `pending(A)` (another attempt took it over), A overwrites NOTHING: it writes
 *   `effect.superseded` instead, and a `done` result is still returned to A's caller (the
 *   effect did happen; the event makes the double execution visible), a failure still throws.
 * - retry (`effect.retried`): after `failed`, an attempt B holding its lease moves the record
 *   back to `pending(B)` BEFORE running `fn` again, so a crash during the retry is reconciled
 *   like any other pending record.
 * - takeover (`effect.taken_over`): a `pending(A)` with A ≠ B means A began the effect and has
 *   not recorded its outcome. A may be dead — or alive, having lost its lease, and about to
 *   record `done`. B takes the record over (CAS `pending(A)` → `pending(B)`, fenced by B's
 *   lease) only when A is known gone: A's worker is a dead process on this host
 *   (`isDeadOwner`), or A has lost its lease and `takeoverAfterMs` (default: twice the lease)
 *   passed since A began or lost its lease, whichever is later. Then B asks `reconcile` (when
 *   given) whether the effect happened, and records its answer instead of running `fn`;
 *   without `reconcile` (or when it answers undefined) B runs `fn`. While A is not known gone,
 *   B gets EFFECT_IN_PROGRESS (retryable, with `retry_after_ms`): meanwhile A can still finish,
 *   and B's retry then finds `done`.
 * - `done` returns the recorded result to every later call with the same key and request,
 *   without running `fn`. The same key with a different request is IDEMPOTENCY_CONFLICT. A
 *   result that cannot be stored (over `effectResultBytes`, or not JSON) is recorded `done`
 *   with the error instead, and every call with the key throws it (not retryable).
 * - `pending(A)` seen again by A itself (an earlier call of this attempt could not record its
 *   outcome, e.g. the store was busy) is treated like a takeover without the CAS, once a read
 *   of the task shows A still holds its lease. Concurrent calls with one key in one attempt
 *   share one execution.
 *
 * What a crash means — read this before relying on it: when the process dies after begin and
 * before finish commits, Warden cannot know whether the effect happened. Exactly-once needs a
 * `reconcile` that can answer (or a destination that deduplicates on the key itself, like
 * payment APIs' idempotency keys); without one, the attempt that takes over runs `fn` again.
 * A `fn` that throws is recorded `failed` and the next call runs `fn` again (so `fn` must not
 * throw after its effect happened). A `done` effect is never repeated, whatever happens.
 *
 * Cost: begin and finish are one write transaction each (as before owners and events), plus a
 * read of the record first. Their events (invariant §2.1) make an effect dearer on SQLite:
 * 5,000 sequential effects in one process took ~0.5 ms each instead of ~0.3 ms (2-core VM,
 * `fast` durability).
 */
import {
  assertWithin,
  boundedMessage,
  canonicalJson,
  checkParams,
  type Clock,
  coerceError,
  DEFAULT_LIMITS,
  ERROR_CATALOGUE,
  type ErrorCode,
  errors,
  type EventType,
  isWardenError,
  sha256Hex,
  systemClock,
  WardenError,
} from '../core/index.ts';
import type {
  ClaimedTask,
  EffectRecord,
  EffectTransitionTarget,
  Store,
  StoreOp,
  TaskError,
} from '../store/index.ts';
import { isDeadLocalOwner } from './owner-liveness.ts';
import { effectArgs, effectJournalArgs, forAttemptArgs, forClaimArgs } from './params.ts';

export interface EffectOptions<T> {
  /** Names the kind of effect in the journal and its events (e.g. `email.send`). @default 'effect' */
  readonly tool?: string;
  /**
   * Asked when this attempt takes over a record another attempt left pending (it crashed or
   * lost its lease inside `fn`): the effect's result if it happened, or undefined if it did not.
   */
  readonly reconcile?: () => Promise<T | undefined> | T | undefined;
  /**
   * Small facts about the result to keep in the `effect.completed` event beside its hash (an
   * evidence file's sha256, say), so the event log itself records them.
   */
  readonly summary?: (result: T) => Record<string, unknown>;
}

/** How an outcome is being recorded (see {@link JournalEffectOptions.record}). */
export interface EffectOutcome {
  readonly status: 'done' | 'failed';
  /** The result came from `reconcile` (the effect ran in an earlier attempt). */
  readonly reconciled: boolean;
  /** Another attempt owns the record now: `ops` hold only the `effect.superseded` event. */
  readonly superseded: boolean;
}

export interface JournalEffectOptions<T> extends EffectOptions<T> {
  /**
   * Commits `ops` (the outcome's transition and event) in ONE transaction, with whatever the
   * caller must record atomically with the outcome — the kernel adds the call's budget usage
   * here, so usage is recorded exactly when the outcome is. Must commit every op or none, and
   * let the transition's INVALID_STATE through. @default `store.commit(ops)`
   */
  readonly record?: (ops: readonly StoreOp[], outcome: EffectOutcome) => Promise<unknown>;
}

/** The attempt a journal acts for: whose lease fences it and where its events go. */
export interface EffectScope {
  readonly taskId: string;
  readonly leaseToken: string;
  readonly workerId: string;
  readonly sessionId: string;
  readonly processId: string | null;
  readonly traceId: string;
  readonly attempt: number;
  /** The attempt's lease length; the default takeover horizon is twice it. */
  readonly leaseMs: number;
}

export interface EffectJournalOptions {
  /** Whether a worker id names a process known to be dead. @default isDeadLocalOwner */
  readonly isDeadOwner?: (workerId: string) => boolean;
  /**
   * How long a record stays owned by an attempt that lost its lease (counted from when it began
   * the effect or lost the lease, whichever is later) before another attempt may take it over.
   * Too short and a slow but alive owner races the new attempt (the effect can happen twice,
   * reported as `effect.superseded`); too long and a dead remote owner delays the retry.
   * @default 2 × the current attempt's lease
   */
  readonly takeoverAfterMs?: number;
}

/** The journal as one attempt sees it. */
export interface AttemptEffects {
  readonly scope: EffectScope;
  /** Runs `fn` at most once per key (see the module comment); returns its recorded result. */
  effect<T>(
    key: string,
    request: unknown,
    fn: () => Promise<T> | T,
    options?: JournalEffectOptions<T>,
  ): Promise<T>;
}

const DEFAULT_LEASE_MS = 15_000;
/** Re-reads after losing a race on the record before giving up with CONFLICT. */
const MAX_ROUNDS = 8;

type Verdict =
  | { readonly gone: true; readonly why: 'owner_dead' | 'horizon'; readonly pendingMs: number }
  | { readonly gone: false; readonly retryAfterMs: number; readonly why: string };

export class EffectJournal {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #isDeadOwner: (workerId: string) => boolean;
  readonly #takeoverAfterMs: number | undefined;
  /** Calls running now, by attempt and key: a second call with the key joins the first. */
  readonly #inFlight = new Map<string, Promise<unknown>>();

  /** INVALID_PARAMS naming the argument for a bad one. */
  constructor(store: Store, clock: Clock = systemClock, options: EffectJournalOptions = {}) {
    checkParams('new EffectJournal', effectJournalArgs, { store, clock, options });
    this.#store = store;
    this.#clock = clock;
    this.#isDeadOwner = options.isDeadOwner ?? isDeadLocalOwner;
    this.#takeoverAfterMs = options.takeoverAfterMs;
  }

  /** The journal for the attempt that holds this claim. */
  forClaim(claim: ClaimedTask, isDeadOwner?: (workerId: string) => boolean): AttemptEffects {
    checkParams('EffectJournal.forClaim', forClaimArgs, { claim, isDeadOwner });
    const task = claim.task;
    const leaseMs =
      task.lease_expires_at !== null && task.claimed_at != null
        ? task.lease_expires_at - task.claimed_at
        : DEFAULT_LEASE_MS;
    return this.#forAttempt(
      {
        taskId: task.id,
        leaseToken: claim.leaseToken,
        workerId: task.lease_owner ?? 'unknown',
        sessionId: task.session_id,
        processId: task.process_id,
        traceId: task.trace_id,
        attempt: claim.attempt,
        leaseMs: leaseMs > 0 ? leaseMs : DEFAULT_LEASE_MS,
      },
      isDeadOwner,
    );
  }

  /** The journal for one attempt, described by hand (a remote worker's, say). */
  forAttempt(scope: EffectScope, isDeadOwner?: (workerId: string) => boolean): AttemptEffects {
    checkParams('EffectJournal.forAttempt', forAttemptArgs, { scope, isDeadOwner });
    return this.#forAttempt(scope, isDeadOwner);
  }

  #forAttempt(scope: EffectScope, isDeadOwner?: (workerId: string) => boolean): AttemptEffects {
    const dead = isDeadOwner ?? this.#isDeadOwner;
    return {
      scope,
      effect: (key, request, fn, options) =>
        this.#effect(scope, dead, key, request, fn, options ?? {}),
    };
  }

  async #effect<T>(
    scope: EffectScope,
    isDeadOwner: (workerId: string) => boolean,
    key: string,
    request: unknown,
    fn: () => Promise<T> | T,
    options: JournalEffectOptions<T>,
  ): Promise<T> {
    checkParams('effect', effectArgs, { key, fn, options });
    const flight = `${scope.leaseToken}\u0000${key}`;
    const joined = this.#inFlight.get(flight);
    if (joined) return joined as Promise<T>;
    const call = new EffectCall(this.#store, this.#clock, scope, key, request, fn, options);
    const promise = call.run((record) => this.#verdict(scope, isDeadOwner, record));
    this.#inFlight.set(flight, promise);
    try {
      return await promise;
    } finally {
      this.#inFlight.delete(flight);
    }
  }

  /** Whether the attempt owning a pending record is known gone (see the module comment). */
  async #verdict(
    scope: EffectScope,
    isDeadOwner: (workerId: string) => boolean,
    record: EffectRecord,
  ): Promise<Verdict> {
    const now = this.#clock.now();
    if (record.owner_worker !== null && isDeadOwner(record.owner_worker))
      return { gone: true, why: 'owner_dead', pendingMs: now - record.updated_at };
    let since = record.updated_at;
    if (record.task_id !== null && record.owner !== null) {
      const task = await this.#store.getTask(record.task_id);
      if (task?.state === 'running' && task.lease_token === record.owner) {
        const left = (task.lease_expires_at ?? now) - now;
        return {
          gone: false,
          retryAfterMs: Math.max(100, left),
          why: 'its owner still holds its lease',
        };
      }
      const lost = (await this.#store.listAttempts(record.task_id)).find(
        (a) => a.lease_token === record.owner,
      )?.ended_at;
      if (lost != null) since = Math.max(since, lost);
    }
    const horizon = this.#takeoverAfterMs ?? 2 * scope.leaseMs;
    const waited = now - since;
    if (waited >= horizon)
      return { gone: true, why: 'horizon', pendingMs: now - record.updated_at };
    return {
      gone: false,
      retryAfterMs: Math.max(10, horizon - waited),
      why: `its owner began it or lost its lease ${waited} ms ago and may still finish (takeover after ${horizon} ms)`,
    };
  }
}

/** One `effect()` call: reads the record and drives it through the state machine. */
class EffectCall<T> {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #scope: EffectScope;
  readonly #key: string;
  readonly #tool: string;
  readonly #requestHash: string;
  readonly #fn: () => Promise<T> | T;
  readonly #options: JournalEffectOptions<T>;

  constructor(
    store: Store,
    clock: Clock,
    scope: EffectScope,
    key: string,
    request: unknown,
    fn: () => Promise<T> | T,
    options: JournalEffectOptions<T>,
  ) {
    this.#store = store;
    this.#clock = clock;
    this.#scope = scope;
    this.#key = key;
    this.#tool = options.tool ?? 'effect';
    this.#requestHash = sha256Hex(canonicalJson(request ?? null));
    this.#fn = fn;
    this.#options = options;
  }

  async run(verdict: (record: EffectRecord) => Promise<Verdict>): Promise<T> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const record = await this.#store.getEffect(this.#key);
      if (!record) {
        if (await this.#begin()) return this.#execute(false);
        continue; // another attempt inserted it first: read it again
      }
      if (record.request_hash !== this.#requestHash) {
        throw new WardenError(
          'IDEMPOTENCY_CONFLICT',
          `effect key '${this.#key}' was already used with a different request; use a new key`,
          { details: { key: this.#key, tool: record.tool } },
        );
      }
      if (record.status === 'done') return doneResult<T>(record);
      if (record.status === 'failed') {
        const moved = await this.#claimRecord(record, 'effect.retried', {
          previous_error: record.error,
        });
        if (moved) return this.#execute(false);
        continue;
      }
      if (record.owner === this.#scope.leaseToken) {
        // Ours, from an earlier call of this attempt that could not record its outcome. A read
        // is enough to check that the attempt still holds its lease before running `fn` again:
        // the outcome is recorded by owner, not by lease, whatever a fence would have seen.
        await this.#assertLease();
        return this.#execute(true);
      }
      const v = await verdict(record);
      if (!v.gone) {
        throw new WardenError(
          'EFFECT_IN_PROGRESS',
          `effect '${this.#key}' is pending under another attempt (worker ${record.owner_worker ?? 'unknown'}): ${v.why}; retry later`,
          {
            retryAfterMs: v.retryAfterMs,
            details: { key: this.#key, tool: record.tool, owner_worker: record.owner_worker },
          },
        );
      }
      const moved = await this.#claimRecord(record, 'effect.taken_over', {
        why: v.why,
        previous_worker: record.owner_worker,
        pending_ms: v.pendingMs,
      });
      if (moved) return this.#execute(true);
    }
    throw new WardenError(
      'CONFLICT',
      `effect '${this.#key}' kept changing under concurrent attempts; retry`,
      { details: { key: this.#key } },
    );
  }

  /** absent → pending(me), fenced by the lease. False when the key appeared meanwhile. */
  #begin(): Promise<boolean> {
    const now = this.#clock.now();
    const s = this.#scope;
    return this.#tryCommit([
      this.#fence(),
      {
        op: 'effect.insert',
        row: {
          idempotency_key: this.#key,
          tool: this.#tool,
          request_hash: this.#requestHash,
          status: 'pending',
          result_hash: null,
          result: null,
          owner: s.leaseToken,
          owner_worker: s.workerId,
          task_id: s.taskId,
          session_id: s.sessionId,
          error: null,
          created_at: now,
          updated_at: now,
        },
      },
      this.#event('effect.started', { request_hash: this.#requestHash }),
    ]);
  }

  /** failed(X) or pending(X) → pending(me), fenced by the lease. False when it moved on. */
  #claimRecord(
    record: EffectRecord,
    type: 'effect.retried' | 'effect.taken_over',
    data: Record<string, unknown>,
  ): Promise<boolean> {
    return this.#tryCommit([
      this.#fence(),
      this.#transition(record.status, record.owner, this.#target('pending', null, null, null)),
      this.#event(type, data),
    ]);
  }

  async #execute(resumed: boolean): Promise<T> {
    if (resumed && this.#options.reconcile) {
      const found = await this.#options.reconcile();
      if (found !== undefined) return this.#finishDone(found, true);
    }
    let result: T;
    try {
      result = await this.#fn();
    } catch (error) {
      await this.#finishFailed(error);
      throw error;
    }
    return this.#finishDone((result ?? null) as T, false); // what later calls get back, so the same now
  }

  async #finishDone(result: T, reconciled: boolean): Promise<T> {
    // The effect has happened, so it is `done` whatever its result. A result that cannot be
    // stored — over the size limit (PAYLOAD_TOO_LARGE) or not JSON at all, like a cycle or a
    // BigInt (INVALID_PARAMS) — is recorded without it, with the error, and this and every later
    // call with the key fail with that error (not retried) instead of running the effect again.
    // It is measured before it is hashed: hashing a cyclic value would throw with the record
    // still pending, and a takeover would run the effect again.
    let unstorable: WardenError | null = null;
    try {
      assertWithin(
        `the result of effect '${this.#key}'`,
        result,
        DEFAULT_LIMITS.effectResultBytes,
        'return a reference (an id, a URL) to large data instead of the data',
      );
    } catch (error) {
      unstorable = coerceError(error);
    }
    // An oversized result is JSON still, and keeps its hash; one that is not JSON has none.
    const resultHash =
      unstorable === null || unstorable.code === 'PAYLOAD_TOO_LARGE'
        ? sha256Hex(canonicalJson(result))
        : null;
    const ops = [
      this.#transition(
        'pending',
        this.#scope.leaseToken,
        this.#target(
          'done',
          resultHash,
          unstorable ? null : result,
          unstorable
            ? { code: unstorable.code, message: boundedMessage(unstorable.message) }
            : null,
        ),
      ),
      this.#event('effect.completed', {
        ...(unstorable || !this.#options.summary ? {} : this.#options.summary(result)),
        result_hash: resultHash,
        reconciled,
      }),
    ];
    await this.#record(
      ops,
      { status: 'done', reconciled, superseded: false },
      { result_hash: resultHash },
    );
    if (unstorable) throw unstorable; // non-retryable, like the error later calls get
    return result;
  }

  async #finishFailed(cause: unknown): Promise<void> {
    const wardenError = coerceError(cause, 'JOB_FAILED');
    const error: TaskError = {
      code: wardenError.code,
      message: boundedMessage(wardenError.message),
    };
    const ops = [
      this.#transition(
        'pending',
        this.#scope.leaseToken,
        this.#target('failed', null, null, error),
      ),
      this.#event('effect.failed', { error }),
    ];
    await this.#record(ops, { status: 'failed', reconciled: false, superseded: false }, { error });
  }

  /**
   * Commits an outcome; when the record is no longer ours, records `effect.superseded` instead
   * (through the same hook, so the caller's own ops — usage — are still committed once).
   */
  async #record(
    ops: readonly StoreOp[],
    outcome: EffectOutcome,
    data: Record<string, unknown>,
  ): Promise<void> {
    const record = this.#options.record ?? ((o: readonly StoreOp[]) => this.#store.commit(o));
    try {
      await record(ops, outcome);
      return;
    } catch (error) {
      if (!isEffectMiss(error)) throw error;
    }
    const current = await this.#store.getEffect(this.#key);
    await record(
      [
        this.#event('effect.superseded', {
          outcome: outcome.status,
          ...data,
          status: current?.status ?? null,
          current_worker: current?.owner_worker ?? null,
        }),
      ],
      { ...outcome, superseded: true },
    );
  }

  #target(
    status: EffectTransitionTarget['status'],
    resultHash: string | null,
    result: unknown,
    error: TaskError | null,
  ): EffectTransitionTarget {
    const s = this.#scope;
    return {
      status,
      owner: s.leaseToken,
      owner_worker: s.workerId,
      task_id: s.taskId,
      session_id: s.sessionId,
      result_hash: resultHash,
      result,
      error,
    };
  }

  #transition(
    status: EffectRecord['status'],
    owner: string | null,
    to: EffectTransitionTarget,
  ): StoreOp {
    return {
      op: 'effect.transition',
      key: this.#key,
      from: { status, owner },
      to,
      now: this.#clock.now(),
    };
  }

  #fence(): StoreOp {
    return { op: 'task.fence', id: this.#scope.taskId, leaseToken: this.#scope.leaseToken };
  }

  #event(type: EventType, data: Record<string, unknown>): StoreOp {
    const s = this.#scope;
    return {
      op: 'event',
      event: {
        session_id: s.sessionId,
        type,
        trace_id: s.traceId,
        process_id: s.processId,
        task_id: s.taskId,
        attempt: s.attempt,
        data: { key: this.#key, tool: this.#tool, ...data },
      },
    };
  }

  /** LEASE_LOST (NOT_FOUND when the task is gone) unless this attempt holds its lease now. */
  async #assertLease(): Promise<void> {
    const s = this.#scope;
    const task = await this.#store.getTask(s.taskId);
    if (!task) throw errors.notFound('task', s.taskId);
    if (task.state !== 'running' || task.lease_token !== s.leaseToken) {
      const lost = errors.leaseLost(s.taskId, s.attempt);
      throw new WardenError('LEASE_LOST', lost.message, {
        details: { ...lost.details, state: task.state },
      });
    }
  }

  /** Commits; false when an effect op lost a race (the record exists or moved on). */
  async #tryCommit(ops: readonly StoreOp[]): Promise<boolean> {
    try {
      await this.#store.commit(ops);
      return true;
    } catch (error) {
      if (isEffectMiss(error)) return false;
      throw error;
    }
  }
}

/** The store's answer when an effect insert or transition found the record in another state. */
function isEffectMiss(error: unknown): boolean {
  return (
    (isWardenError(error, 'CONFLICT') || isWardenError(error, 'INVALID_STATE')) &&
    typeof error.details?.effect_key === 'string'
  );
}

/**
 * A `done` record's result. One recorded with an error (its result could not be stored: too
 * large, or not JSON) fails every call with that error, never retryable: the effect happened.
 */
function doneResult<T>(record: EffectRecord): T {
  if (record.error)
    throw doneError(record.idempotency_key, record.tool, record.error.code, record.error.message);
  return record.result as T;
}

function doneError(key: string, tool: string, code: string, message: string): WardenError {
  const known = Object.hasOwn(ERROR_CATALOGUE, code) ? (code as ErrorCode) : 'INTERNAL';
  return new WardenError(known, message, { retryable: false, details: { key, tool } });
}
