/**
 * One subscription's delivery: every event of a session after a cursor, in order, exactly once.
 *
 * There is one cursor (the last seq sent) and every event goes out through it, so the seam
 * between replay and live cannot gap or repeat: replay reads stored pages after the cursor;
 * a commit by this process whose first event is cursor + 1 is sent straight from memory (the
 * fast path) while the connection's outbound buffer is low; anything else — another process's
 * commit (watchChanges), a hole, a full buffer — makes the pump read from the store after the
 * cursor again. Reads are flow-controlled: the next page is read only once the connection has
 * flushed most of what it sent, so a client slower than the writers is fed from the store at
 * its own pace (memory stays bounded) and only a client that stops reading is cut off.
 */
import type { EventRecord, Store } from '../../store/index.ts';

export interface PumpSink {
  /** Sends one event; false when the connection is gone or closing. */
  send(event: EventRecord): boolean;
  /** Resolves once the connection has flushed what it sent (false: it gave up, closing). */
  flushed(): Promise<boolean>;
  /** Whether the connection's outbound buffer is small enough to read another page. */
  readonly canReadMore: boolean;
  /** A store read failed: the subscription ends with this error. */
  fail(error: unknown): void;
  /** Runs `fn`, whose sends go out in as few socket writes as possible. */
  batch(fn: () => void): void;
}

export class EventPump {
  readonly #store: Store;
  readonly #sessionId: string;
  readonly #pageSize: number;
  readonly #sink: PumpSink;
  #cursor: number;
  #reading = false;
  #dirty = true;
  #closed = false;
  readonly #offs: Array<() => void> = [];

  constructor(store: Store, sessionId: string, fromSeq: number, pageSize: number, sink: PumpSink) {
    this.#store = store;
    this.#sessionId = sessionId;
    this.#cursor = fromSeq;
    this.#pageSize = pageSize;
    this.#sink = sink;
  }

  get cursor(): number {
    return this.#cursor;
  }

  /** Starts replay, then live delivery. Listeners go on first, so nothing slips between. */
  start(): void {
    this.#offs.push(
      this.#store.onCommit((events) => this.#onCommit(events)),
      this.#store.watchChanges(() => this.#wake()),
    );
    void this.#read();
  }

  close(): void {
    this.#closed = true;
    for (const off of this.#offs.splice(0)) off();
  }

  #onCommit(events: readonly EventRecord[]): void {
    if (this.#closed) return;
    this.#sink.batch(() => {
      for (const event of events) {
        if (event.session_id !== this.#sessionId || event.seq <= this.#cursor) continue;
        if (
          !this.#reading &&
          !this.#dirty &&
          event.seq === this.#cursor + 1 &&
          this.#sink.canReadMore
        ) {
          if (!this.#sink.send(event)) return this.close();
          this.#cursor = event.seq;
        } else {
          this.#wake();
          return;
        }
      }
    });
  }

  #wake(): void {
    this.#dirty = true;
    if (!this.#reading) void this.#read();
  }

  async #read(): Promise<void> {
    if (this.#reading || this.#closed) return;
    this.#reading = true;
    try {
      while (this.#dirty && !this.#closed) {
        this.#dirty = false;
        for (;;) {
          // Flow control for replay and live alike: a client slower than the writers is fed
          // from the store as fast as it reads; only one that stops reading is cut off.
          if (!this.#sink.canReadMore && !(await this.#sink.flushed())) return this.close();
          const page = await this.#store.readEvents({
            sessionId: this.#sessionId,
            afterSeq: this.#cursor,
            limit: this.#pageSize,
          });
          if (this.#closed) return;
          let open = true;
          this.#sink.batch(() => {
            for (const event of page) {
              if (event.seq !== this.#cursor + 1) break; // never skip: read again from the cursor
              if (!(open = this.#sink.send(event))) break;
              this.#cursor = event.seq;
            }
          });
          if (!open) return this.close();
          if (page.length < this.#pageSize) break;
        }
      }
    } catch (error) {
      if (!this.#closed) this.#sink.fail(error);
      this.close();
    } finally {
      this.#reading = false;
    }
    // A commit that arrived as the last read finished.
    if (this.#dirty && !this.#closed) void this.#read();
  }
}
