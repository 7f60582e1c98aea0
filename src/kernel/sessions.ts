/** Sessions: a work context with its own event log. Created on first use, by key. */
import { GENESIS_HASH, SYSTEM_SESSION_KEY, WardenError } from '../core/index.ts';
import type { SessionRecord } from '../store/index.ts';
import type { KernelContext } from './process-ops.ts';

const KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

export class SessionManager {
  readonly #ctx: KernelContext;
  readonly #cache = new Map<string, SessionRecord>();

  constructor(ctx: KernelContext) {
    this.#ctx = ctx;
  }

  /** Returns the session with this key, creating it (with a `session.created` event) if needed. */
  async ensure(key: string, settings: Record<string, unknown> = {}): Promise<SessionRecord> {
    if (!KEY_PATTERN.test(key)) {
      throw new WardenError(
        'INVALID_PARAMS',
        `session key '${key}' is invalid: use 1-128 letters, digits, _ . : -`,
      );
    }
    const cached = this.#cache.get(key);
    if (cached) return cached;
    const existing = await this.#ctx.store.getSessionByKey(key);
    if (existing) {
      this.#cache.set(key, existing);
      return existing;
    }
    const now = this.#ctx.clock.now();
    const row: SessionRecord = {
      id: this.#ctx.ids.next('s'),
      key,
      settings,
      created_at: now,
      updated_at: now,
      last_seq: 0,
      last_hash: GENESIS_HASH,
    };
    try {
      await this.#ctx.store.commit([
        { op: 'session.insert', row },
        {
          op: 'event',
          event: {
            session_id: row.id,
            type: 'session.created',
            trace_id: this.#ctx.ids.next('tr'),
            data: { key, settings },
          },
        },
      ]);
    } catch (error) {
      // Another process created the same key first: use theirs.
      const raced = await this.#ctx.store.getSessionByKey(key);
      if (raced) return raced;
      throw error;
    }
    this.#cache.set(key, row);
    return row;
  }

  system(): Promise<SessionRecord> {
    return this.ensure(SYSTEM_SESSION_KEY);
  }
}
