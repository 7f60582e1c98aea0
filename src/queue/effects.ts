/**
 * The effect journal (DESIGN.md §2.3): at-least-once execution, at-most-once effects.
 *
 *   await effects.effect(key, request, () => sendEmail(request));
 *
 * 1. A `pending` record is written for `key` (with a hash of `request`) BEFORE `fn` runs.
 * 2. `fn` runs; its result is recorded as `done` with the result's hash.
 * 3. A later call with the same key returns the recorded result without running `fn` again.
 *    The same key with a different request is IDEMPOTENCY_CONFLICT.
 *
 * What a crash inside `fn` means — read this before relying on it:
 * - If the process dies after step 1 and before step 2 commits, the record stays `pending`,
 *   and Warden cannot know whether the effect happened. On the retry, if you passed
 *   `reconcile`, it is asked ("did this effect happen? return its result, or undefined"), and its
 *   answer is recorded instead of running `fn`; without `reconcile`, `fn` runs again, so the
 *   effect may happen twice. Exactly-once therefore needs a destination that can answer
 *   `reconcile` (or deduplicates on the key itself, like payment APIs' idempotency keys).
 * - If `fn` throws, the record is marked `failed` and the next call runs `fn` again.
 * - A `done` effect is never repeated, whatever happens afterwards.
 */
import { canonicalJson, type Clock, sha256Hex, systemClock, WardenError } from '../core/index.ts';
import type { Store } from '../store/index.ts';

export interface EffectOptions<T> {
  /** Names the kind of effect in the journal (e.g. `email.send`). @default 'effect' */
  readonly tool?: string;
  /** Asked after a crash left the record pending: the recorded outcome, or undefined if none. */
  readonly reconcile?: () => Promise<T | undefined> | T | undefined;
}

export class EffectJournal {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(store: Store, clock: Clock = systemClock) {
    this.#store = store;
    this.#clock = clock;
  }

  async effect<T>(
    key: string,
    request: unknown,
    fn: () => Promise<T> | T,
    options: EffectOptions<T> = {},
  ): Promise<T> {
    if (typeof key !== 'string' || key.length === 0 || key.length > 512) {
      throw new WardenError(
        'INVALID_PARAMS',
        'an effect key must be a non-empty string of at most 512 characters',
      );
    }
    const requestHash = sha256Hex(canonicalJson(request ?? null));
    const now = this.#clock.now();
    const { record, inserted } = await this.#store.beginEffect({
      idempotency_key: key,
      tool: options.tool ?? 'effect',
      request_hash: requestHash,
      status: 'pending',
      result_hash: null,
      result: null,
      created_at: now,
      updated_at: now,
    });
    if (record.request_hash !== requestHash) {
      throw new WardenError(
        'IDEMPOTENCY_CONFLICT',
        `effect key '${key}' was already used with a different request; use a new key`,
        {
          details: { key, tool: record.tool },
        },
      );
    }
    if (record.status === 'done') return record.result as T;
    // Pending and not ours: an earlier attempt began this effect and did not record its outcome.
    const resumed = record.status === 'pending' && !inserted;
    if (resumed && options.reconcile) {
      const found = await options.reconcile();
      if (found !== undefined) {
        await this.#store.finishEffect(
          key,
          'done',
          sha256Hex(canonicalJson(found)),
          found,
          this.#clock.now(),
        );
        return found;
      }
    }
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      await this.#store.finishEffect(key, 'failed', null, null, this.#clock.now());
      throw error;
    }
    const recorded = (result ?? null) as T; // what later calls get back, so the same now
    await this.#store.finishEffect(
      key,
      'done',
      sha256Hex(canonicalJson(recorded)),
      recorded,
      this.#clock.now(),
    );
    return recorded;
  }
}
