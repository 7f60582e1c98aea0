/**
 * `idempotencyKey` dedupe (reference §6.4), durable: entries live in the store's key-value
 * table (namespace `openclaw.dedupe`), so a retry after a daemon restart — or through another
 * node — still finds the first request's run and replays its answer (OpenClaw kept them in
 * memory and lost them on restart). The first request claims its key with an insert that
 * fails if the key exists (compare-and-set on "absent"), so two racing duplicates start one
 * run. Entries expire after {@link DEDUPE_TTL_MS}; at most {@link DEDUPE_MAX} are kept, the
 * oldest finished ones pruned first; entries of runs still in flight are never pruned.
 */
import { isWardenError } from '../../core/index.ts';
import type { Store } from '../../store/index.ts';

/** §6.4 `DEDUPE_TTL_MS`. */
export const DEDUPE_TTL_MS = 300_000;
/** §6.4 `DEDUPE_MAX`. */
export const DEDUPE_MAX = 1_000;
const NAMESPACE = 'openclaw.dedupe';

export interface DedupeEntry {
  readonly ts: number;
  /** `pending` while the run is in flight; `done` once its final answer is stored. */
  readonly state: 'pending' | 'done';
  readonly runId: string;
  readonly pid: string | null;
  readonly sessionKey: string;
  /** The ack sent for the first request (replayed to duplicates while pending). */
  readonly ack?: unknown;
  /**
   * The process that claimed the key (a lease owner id, queue/owner-liveness.ts): a claim whose
   * process died before the message reached its session's queue can be taken over.
   */
  readonly owner?: string;
  /** The final response: `ok` with its payload, or the error shape (and payload) sent. */
  readonly ok?: boolean;
  readonly payload?: unknown;
  readonly error?: unknown;
}

export type Claim =
  | { readonly first: true; readonly version: number }
  | { readonly first: false; readonly entry: DedupeEntry; readonly version: number };

export class Dedupe {
  readonly #store: () => Store;
  #sincePrune = 0;

  constructor(store: () => Store) {
    this.#store = store;
  }

  /**
   * Claims `key` for a new request, or returns the live entry of an earlier one. An expired
   * entry is replaced (compare-and-set on its version).
   */
  async claim(key: string, entry: DedupeEntry): Promise<Claim> {
    const store = this.#store();
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await store.kvGet(NAMESPACE, key);
      const current = existing?.value as DedupeEntry | undefined;
      if (current && (entry.ts - current.ts < DEDUPE_TTL_MS || current.state === 'pending'))
        return { first: false, entry: current, version: existing!.version };
      try {
        await store.commit([
          {
            op: 'kv.set',
            namespace: NAMESPACE,
            key,
            value: entry,
            expected_version: existing ? existing.version : null,
            now: entry.ts,
          },
        ]);
        this.#maybePrune(entry.ts);
        return { first: true, version: existing ? existing.version + 1 : 1 };
      } catch (error) {
        if (!isWardenError(error) || error.code !== 'CONFLICT') throw error;
        // Someone else claimed (or refreshed) it meanwhile: read it again.
      }
    }
    const existing = await store.kvGet(NAMESPACE, key);
    return { first: false, entry: existing!.value as DedupeEntry, version: existing!.version };
  }

  /**
   * Replaces the entry at `version` (an abandoned claim) with a new claim; false when it
   * changed meanwhile (its request went on, or another retry took it over first).
   */
  async takeOver(key: string, version: number, entry: DedupeEntry): Promise<boolean> {
    try {
      await this.#store().commit([
        {
          op: 'kv.set',
          namespace: NAMESPACE,
          key,
          value: entry,
          expected_version: version,
          now: entry.ts,
        },
      ]);
      return true;
    } catch (error) {
      if (isWardenError(error) && error.code === 'CONFLICT') return false;
      throw error;
    }
  }

  async get(key: string): Promise<DedupeEntry | null> {
    const value = await this.#store().kvGet(NAMESPACE, key);
    return (value?.value as DedupeEntry | undefined) ?? null;
  }

  /** Updates the entry of a request this process claimed (unconditional: the key is ours). */
  async update(key: string, entry: DedupeEntry): Promise<void> {
    await this.#store().commit([
      { op: 'kv.set', namespace: NAMESPACE, key, value: entry, now: Date.now() },
    ]);
  }

  /** Forgets a claim whose request failed before anything started (so a retry can run). */
  async release(key: string): Promise<void> {
    await this.#store().commit([{ op: 'kv.delete', namespace: NAMESPACE, key }]);
  }

  #maybePrune(now: number): void {
    if (++this.#sincePrune < 50) return;
    this.#sincePrune = 0;
    void this.prune(now).catch(() => undefined);
  }

  /** Deletes expired finished entries, then the oldest finished ones above {@link DEDUPE_MAX}. */
  async prune(now: number): Promise<number> {
    const store = this.#store();
    const entries = await store.kvList(NAMESPACE, { limit: 10_000 });
    const finished = entries
      .map((e) => ({ key: e.key, version: e.version, value: e.value as DedupeEntry }))
      .filter((e) => e.value.state === 'done')
      .sort((a, b) => a.value.ts - b.value.ts);
    const over = Math.max(0, entries.length - DEDUPE_MAX);
    const doomed = finished.filter((e, i) => i < over || now - e.value.ts >= DEDUPE_TTL_MS);
    for (const e of doomed) {
      try {
        await store.commit([
          { op: 'kv.delete', namespace: NAMESPACE, key: e.key, expected_version: e.version },
        ]);
      } catch (error) {
        if (!isWardenError(error) || error.code !== 'CONFLICT') throw error;
      }
    }
    return doomed.length;
  }
}
