/**
 * Sessions by key, created on first use with a `session.created` event. A helper over the
 * Store port (not part of it), shared by the kernel and the queue; it caches ids, which never
 * change once created.
 */
import {
  type Clock,
  GENESIS_HASH,
  type IdGenerator,
  SYSTEM_SESSION_KEY,
  WardenError,
} from '../core/index.ts';
import type { NewSession, SessionRecord, Store, StoreOp } from './types.ts';

const KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

export class SessionDirectory {
  readonly #store: Store;
  readonly #ids: IdGenerator;
  readonly #clock: Clock;
  readonly #cache = new Map<string, SessionRecord>();

  constructor(store: Store, ids: IdGenerator, clock: Clock) {
    this.#store = store;
    this.#ids = ids;
    this.#clock = clock;
  }

  /** Returns the session with this key, creating it if needed. INVALID_PARAMS for a bad key. */
  async ensure(key: string, settings: Record<string, unknown> = {}): Promise<SessionRecord> {
    assertKey(key);
    const cached = this.#cache.get(key);
    if (cached) return cached;
    const existing = await this.#store.getSessionByKey(key);
    if (existing) {
      this.#cache.set(key, existing);
      return existing;
    }
    const row = this.#newRow(key, settings);
    try {
      await this.#store.commit(this.createOps({ row, traceId: this.#ids.next('tr') }));
    } catch (error) {
      // Another process created the same key first: use theirs.
      const raced = await this.#store.getSessionByKey(key);
      if (raced) {
        this.#cache.set(key, raced);
        return raced;
      }
      throw error;
    }
    this.#cache.set(key, row);
    return row;
  }

  /**
   * For callers that create a session inside their own transaction (Store.submitTasks
   * `sessions`): the id of the session with this key when it exists, else a new row to insert
   * (`create`), whose id the caller's records use until the store places them. Writes nothing.
   * INVALID_PARAMS for a bad key.
   */
  async prepare(
    key: string,
    settings: Record<string, unknown> = {},
  ): Promise<{ id: string; create: NewSession | null }> {
    assertKey(key);
    const cached = this.#cache.get(key);
    if (cached) return { id: cached.id, create: null };
    const existing = await this.#store.getSessionByKey(key);
    if (existing) {
      this.#cache.set(key, existing);
      return { id: existing.id, create: null };
    }
    const row = this.#newRow(key, settings);
    return { id: row.id, create: { row, traceId: this.#ids.next('tr') } };
  }

  /**
   * The ops that create a prepared session (see {@link prepare}): its row and its
   * `session.created` event, for the caller's transaction. None when it exists already.
   */
  createOps(create: NewSession | null): StoreOp[] {
    if (!create) return [];
    const { row, traceId } = create;
    return [
      { op: 'session.insert', row },
      {
        op: 'event',
        event: {
          session_id: row.id,
          type: 'session.created',
          trace_id: traceId,
          data: { key: row.key, settings: row.settings },
        },
      },
    ];
  }

  #newRow(key: string, settings: Record<string, unknown>): SessionRecord {
    const now = this.#clock.now();
    return {
      id: this.#ids.next('s'),
      key,
      settings,
      created_at: now,
      updated_at: now,
      last_seq: 0,
      last_hash: GENESIS_HASH,
    };
  }

  /** Caches a session created through {@link prepare} once its commit succeeded. */
  remember(session: SessionRecord): void {
    this.#cache.set(session.key, session);
  }

  /** Forgets a cached key (its creation lost a race: read it again). */
  forget(key: string): void {
    this.#cache.delete(key);
  }

  /** The reserved session for kernel-wide events and session-less jobs. */
  system(): Promise<SessionRecord> {
    return this.ensure(SYSTEM_SESSION_KEY);
  }
}

function assertKey(key: string): void {
  if (!KEY_PATTERN.test(key)) {
    throw new WardenError(
      'INVALID_PARAMS',
      `session key '${key}' is invalid: use 1-128 letters, digits, _ . : -`,
    );
  }
}
