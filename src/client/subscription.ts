/**
 * A live subscription to one session's events, kept across reconnects by the client.
 *
 * States: attaching (an `events.subscribe` is on its way) → attached (the server's
 * `subscription_id` is known and events flow) → detached (the connection dropped; the client
 * attaches it again from `lastSeq` after the next handshake) … → closed (by `close()`, by an
 * error that cannot be retried such as REPLAY_GAP, or when the client closes).
 *
 * Exactly once, in order: an event with `seq ≤ lastSeq` is a duplicate and is dropped; an
 * event with `seq > lastSeq + 1` means something skipped events (a bug on either side), so
 * the event is dropped and the subscription is attached again from `lastSeq`. The one
 * exception is the first event of a subscription from seq 0: retention may have pruned the
 * start of the log, so any seq is accepted there.
 */
import { coerceError, type WardenError } from '../core/index.ts';
import type { EventRecord } from './types.ts';

export interface SubscribeOptions {
  /**
   * Deliver events after this seq (the last one you saw).
   * @default 0 (everything still kept)
   */
  readonly fromSeq?: number;
  /** Called once per event, in seq order. A throw is reported to `onError`; delivery goes on. */
  readonly onEvent?: (event: EventRecord) => void;
  /**
   * Called when the subscription ends with an error (REPLAY_GAP when a resume point was
   * pruned, FORBIDDEN, NOT_FOUND, the client closing), or when `onEvent` throws.
   */
  readonly onError?: (error: WardenError) => void;
  /**
   * Resume from `lastSeq` after the connection drops. With `false` the subscription ends with
   * DAEMON_UNREACHABLE instead.
   * @default true
   */
  readonly reconnect?: boolean;
}

/** What the subscription needs from its client. */
export interface SubscriptionHost {
  /** Attach again from `lastSeq` (after a gap). */
  reattach(subscription: Subscription): void;
  /** Forget the subscription and unsubscribe on the server. */
  release(subscription: Subscription): Promise<void>;
}

interface Waiter {
  readonly resolve: (result: IteratorResult<EventRecord>) => void;
  readonly reject: (error: WardenError) => void;
}

/**
 * Events of one session: an async iterable, and the `onEvent` callback. Without `onEvent`,
 * events queue until the iterator reads them (unbounded: read them, or pass `onEvent`).
 */
export class Subscription implements AsyncIterable<EventRecord> {
  readonly sessionId: string;
  /** Resume after a disconnect, or end with DAEMON_UNREACHABLE. */
  readonly reconnect: boolean;
  /** @internal the server's id while attached on the current connection. */
  serverId: string | undefined = undefined;
  /** @internal an `events.subscribe` for this subscription is on its way. */
  attaching = false;
  /** @internal the first subscribe succeeded: the client resumes it after reconnects. */
  established = false;
  #lastSeq: number;
  #closed = false;
  #error: WardenError | undefined = undefined;
  readonly #host: SubscriptionHost;
  readonly #onEvent: ((event: EventRecord) => void) | undefined;
  readonly #onError: ((error: WardenError) => void) | undefined;
  readonly #queue: EventRecord[] = [];
  #iterating: boolean;
  #waiter: Waiter | undefined = undefined;

  /** @internal made by {@link WardenClient.subscribe}. */
  constructor(host: SubscriptionHost, sessionId: string, options: SubscribeOptions) {
    this.#host = host;
    this.sessionId = sessionId;
    this.reconnect = options.reconnect ?? true;
    this.#lastSeq = options.fromSeq ?? 0;
    this.#onEvent = options.onEvent;
    this.#onError = options.onError;
    this.#iterating = options.onEvent === undefined;
  }

  /** The seq of the last event delivered (or `fromSeq` before the first). Resume from it. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The error that ended the subscription, if one did. */
  get error(): WardenError | undefined {
    return this.#error;
  }

  /** Stops the events: unsubscribes on the server and ends the iterator. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#end(undefined);
    await this.#host.release(this);
  }

  /** @internal one event from the server, for this subscription. */
  deliver(event: EventRecord): void {
    if (this.#closed) return;
    if (event.seq <= this.#lastSeq) return; // a duplicate (a replay overlapping what we have)
    if (this.#lastSeq > 0 && event.seq !== this.#lastSeq + 1) {
      this.#host.reattach(this);
      return;
    }
    this.#lastSeq = event.seq;
    if (this.#onEvent !== undefined) {
      try {
        this.#onEvent(event);
      } catch (error) {
        this.#report(coerceError(error));
      }
    }
    if (!this.#iterating) return;
    if (this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter.resolve({ value: event, done: false });
    } else {
      this.#queue.push(event);
    }
  }

  /** @internal ends the subscription with an error (reported once to `onError`). */
  fail(error: WardenError): void {
    if (this.#closed) return;
    this.#end(error);
    this.#report(error);
    void this.#host.release(this);
  }

  [Symbol.asyncIterator](): AsyncIterator<EventRecord> {
    this.#iterating = true;
    return {
      next: () => {
        const event = this.#queue.shift();
        if (event !== undefined) return Promise.resolve({ value: event, done: false });
        if (this.#closed) {
          return this.#error === undefined
            ? Promise.resolve({ value: undefined, done: true })
            : Promise.reject(this.#error);
        }
        return new Promise((resolve, reject) => {
          this.#waiter = { resolve, reject };
        });
      },
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  #end(error: WardenError | undefined): void {
    this.#closed = true;
    this.#error = error;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter === undefined) return;
    if (error === undefined) waiter.resolve({ value: undefined, done: true });
    else waiter.reject(error);
  }

  #report(error: WardenError): void {
    try {
      this.#onError?.(error);
    } catch {
      // an onError that throws has nowhere left to report to
    }
  }
}
