/**
 * Inbound message dedupe (reference §6.4, last bullet: 20 min, 5000 entries): a map from
 * message key to the first outcome, bounded in time and size.
 *
 * Every entry lives `ttlMs` from when it was set. The TTL is the same for all entries and
 * expiry times are clamped to never decrease, so insertion order IS expiry order: the front
 * of the `Map` is always the entry that expires soonest. Pruning expired entries and evicting
 * when full both pop from the front, O(1) per entry. Eviction can drop an entry before its
 * TTL: a duplicate arriving after that is treated as new (the bound wins over the window).
 */
export interface InboundDedupeOptions {
  /** How long an entry is remembered, in ms. @default 1_200_000 (20 min) */
  readonly ttlMs?: number;
  /** Entries kept at most; the soonest-expiring is evicted beyond. @default 5000 */
  readonly maxEntries?: number;
}

export const INBOUND_DEDUPE_TTL_MS = 1_200_000;
export const INBOUND_DEDUPE_MAX = 5000;

interface Entry<V> {
  readonly value: V;
  readonly expiresAt: number;
}

export class InboundDedupe<V> {
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly #entries = new Map<string, Entry<V>>();
  #lastExpiry = 0;

  constructor(options: InboundDedupeOptions = {}) {
    this.ttlMs = options.ttlMs ?? INBOUND_DEDUPE_TTL_MS;
    this.maxEntries = options.maxEntries ?? INBOUND_DEDUPE_MAX;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value stored for `key` unless it expired by `nowMs`. */
  get(key: string, nowMs: number): V | undefined {
    this.#prune(nowMs);
    return this.#entries.get(key)?.value;
  }

  /** Stores `value` for `key` until `nowMs + ttlMs`, evicting the soonest-expiring when full. */
  set(key: string, value: V, nowMs: number): void {
    this.#prune(nowMs);
    this.#entries.delete(key);
    while (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    // Clamped so a clock that steps back cannot break the expiry order the Map relies on.
    this.#lastExpiry = Math.max(this.#lastExpiry, nowMs + this.ttlMs);
    this.#entries.set(key, { value, expiresAt: this.#lastExpiry });
  }

  /**
   * Forgets `key` (a sink failure: the sender may retry); with `only`, just when `key` still
   * maps to that value (a newer entry for the key is kept).
   */
  delete(key: string, only?: V): void {
    if (only !== undefined && this.#entries.get(key)?.value !== only) return;
    this.#entries.delete(key);
  }

  #prune(nowMs: number): void {
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt > nowMs) return;
      this.#entries.delete(key);
    }
  }
}
