/**
 * Sessions by key, created on first use with a `session.created` event; patched and deleted.
 * A helper over the Store port (not part of it), shared by the kernel and the queue. It caches
 * key → session for {@link ensure} and {@link prepare} (ids never change once created); a
 * patch or delete through this directory updates or drops the entry. Another process's
 * directory does not hear of it: a key deleted there may still be served from its cache until
 * it is forgotten, and a write to the deleted id then fails with NOT_FOUND.
 */
import {
  type Clock,
  GENESIS_HASH,
  type IdGenerator,
  isJsonObject,
  SYSTEM_SESSION_KEY,
  WardenError,
} from '../core/index.ts';
import type { DeleteSessionCounts, NewSession, SessionRecord, Store, StoreOp } from './types.ts';

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

  /**
   * Replaces a session's settings, with a `session.updated` event `{key, settings, version}`
   * in the same transaction. Compare-and-set on `expectVersion` (a session's `version ?? 0` as
   * read): CONFLICT when it changed since. Without it, the version read just before the write
   * is used: the patch still fails rather than interleave with a concurrent one. NOT_FOUND for
   * an unknown id. Returns the session as written.
   */
  async patch(
    id: string,
    settings: Record<string, unknown>,
    expectVersion?: number,
  ): Promise<SessionRecord> {
    if (!isJsonObject(settings))
      throw new WardenError(
        'INVALID_PARAMS',
        'SessionDirectory.patch: settings: expected a plain object of JSON values',
      );
    const current = await this.#store.getSession(id);
    if (!current)
      throw new WardenError('NOT_FOUND', `session '${id}' does not exist`, {
        details: { what: 'session', id },
      });
    const expected = expectVersion ?? current.version ?? 0;
    const now = this.#clock.now();
    const [event] = await this.#store.commit([
      { op: 'session.update', id, settings, expectVersion: expected, now },
      {
        op: 'event',
        event: {
          session_id: id,
          type: 'session.updated',
          trace_id: this.#ids.next('tr'),
          data: { key: current.key, settings, version: expected + 1 },
        },
      },
    ]);
    this.#cache.delete(current.key);
    const updated = await this.#store.getSession(id);
    // Deleted between the commit and this read: answer what was written.
    return updated ?? { ...current, settings, version: expected + 1, updated_at: event?.ts ?? now };
  }

  /**
   * Deletes a session and everything that belongs to it (see {@link Store.deleteSession}),
   * with a `session.deleted` event in the `system` session. INVALID_STATE while it has live
   * work or for the `system` session; NOT_FOUND for an unknown id.
   */
  async delete(id: string): Promise<DeleteSessionCounts> {
    const system = await this.system();
    // Dropped first: even a refused delete re-reads the key next time.
    for (const [key, session] of this.#cache) if (session.id === id) this.#cache.delete(key);
    return this.#store.deleteSession({
      id,
      event: { session_id: system.id, trace_id: this.#ids.next('tr') },
    });
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
