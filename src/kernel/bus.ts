/**
 * The in-process message bus (DESIGN.md §5): `publish` fans out to subscribers, `send` goes to
 * exactly one handler (NOT_FOUND if none), `query` is request/response with a timeout.
 * Subscribers have bounded buffers; when one is full the message is dropped *for that
 * subscriber*, counted, and the subscriber is told how many it missed on its next delivery.
 * Nothing is dropped silently.
 */
import { checkParams, WardenError } from '../core/index.ts';
import { subscribeArgs } from './params.ts';

export interface BusMessage {
  readonly type: string;
  readonly payload: unknown;
}

export interface Subscription {
  /** Messages dropped for this subscriber because its buffer was full. */
  readonly dropped: number;
  unsubscribe(): void;
}

type Deliver = (message: BusMessage, missed: number) => void | Promise<void>;

interface Subscriber {
  readonly types: ReadonlySet<string> | null;
  readonly deliver: Deliver;
  readonly capacity: number;
  readonly queue: BusMessage[];
  dropped: number;
  missedSinceLast: number;
  draining: boolean;
  closed: boolean;
}

export class Bus {
  #subscribers: readonly Subscriber[] = [];
  readonly #handlers = new Map<string, (payload: unknown) => unknown>();
  #droppedTotal = 0;

  /** Subscribe to some types (or all with `null`). Buffer: `capacity` messages (default 1024). */
  subscribe(types: readonly string[] | null, deliver: Deliver, capacity = 1_024): Subscription {
    checkParams('Bus.subscribe', subscribeArgs, { types, deliver, capacity });
    const sub: Subscriber = {
      types: types ? new Set(types) : null,
      deliver,
      capacity,
      queue: [],
      dropped: 0,
      missedSinceLast: 0,
      draining: false,
      closed: false,
    };
    // Copy-on-write: a publish in progress keeps iterating the old array.
    this.#subscribers = [...this.#subscribers, sub];
    return {
      get dropped() {
        return sub.dropped;
      },
      unsubscribe: () => {
        sub.closed = true;
        this.#subscribers = this.#subscribers.filter((s) => s !== sub);
      },
    };
  }

  publish(type: string, payload: unknown): void {
    const message = { type, payload };
    for (const sub of this.#subscribers) {
      if (sub.closed || (sub.types && !sub.types.has(type))) continue;
      if (sub.queue.length >= sub.capacity) {
        sub.dropped += 1;
        sub.missedSinceLast += 1;
        this.#droppedTotal += 1;
        continue;
      }
      sub.queue.push(message);
      if (!sub.draining) void this.#drain(sub);
    }
  }

  async #drain(sub: Subscriber): Promise<void> {
    sub.draining = true;
    try {
      while (sub.queue.length > 0 && !sub.closed) {
        const message = sub.queue.shift()!;
        const missed = sub.missedSinceLast;
        sub.missedSinceLast = 0;
        try {
          await sub.deliver(message, missed);
        } catch {
          // A failing subscriber must not break the publisher or other subscribers.
        }
      }
    } finally {
      sub.draining = false;
    }
  }

  /** Registers the single handler for a command or query type. */
  handle(type: string, handler: (payload: unknown) => unknown): () => void {
    if (this.#handlers.has(type))
      throw new WardenError('CONFLICT', `a handler for '${type}' is already registered`);
    this.#handlers.set(type, handler);
    return () => {
      // Only remove our own registration, never a newer handler's.
      if (this.#handlers.get(type) === handler) this.#handlers.delete(type);
    };
  }

  async send(type: string, payload: unknown): Promise<void> {
    await this.query(type, payload);
  }

  async query<T = unknown>(type: string, payload: unknown, timeoutMs = 30_000): Promise<T> {
    const handler = this.#handlers.get(type);
    if (!handler)
      throw new WardenError('NOT_FOUND', `no handler is registered for '${type}'`, {
        details: { type },
      });
    let timer: NodeJS.Timeout | undefined;
    try {
      return (await Promise.race([
        Promise.resolve().then(() => handler(payload)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new WardenError('TIMEOUT', `'${type}' did not answer within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ])) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  stats(): { subscribers: number; handlers: number; dropped: number } {
    return {
      subscribers: this.#subscribers.length,
      handlers: this.#handlers.size,
      dropped: this.#droppedTotal,
    };
  }
}
