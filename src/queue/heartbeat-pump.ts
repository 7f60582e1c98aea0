/**
 * Keeps the leases of running tasks alive (DESIGN.md §6: heartbeats user code cannot starve).
 * With a database another connection can reach, renewals run in a worker thread
 * (heartbeat-thread.ts) and keep going while a handler blocks this event loop; the thread stops
 * renewing if this loop stalls past `stallLimitMs`. Otherwise (in-memory stores) a timer on this
 * thread renews them. Lost leases are reported through `onLost`.
 */
import { Worker as Thread } from 'node:worker_threads';

import type { Clock } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import type {
  FromHeartbeatThread,
  HeartbeatThreadData,
  ToHeartbeatThread,
} from './heartbeat-protocol.ts';

export interface HeartbeatPumpOptions {
  readonly store: Store;
  /** The clock leases are claimed with: renewals use the same one. */
  readonly clock: Clock;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly stallLimitMs: number;
  /** `thread` needs a store with a location; `auto` picks it when possible. @default 'auto' */
  readonly mode?: 'auto' | 'thread' | 'timer';
  readonly onLost: (ids: readonly string[]) => void;
  readonly onStall?: (since: number) => void;
}

export class HeartbeatPump {
  readonly #options: HeartbeatPumpOptions;
  readonly #tracked = new Map<string, string>();
  #thread: Thread | null = null;
  #timer: NodeJS.Timeout | undefined;
  #tick: NodeJS.Timeout | undefined;

  constructor(options: HeartbeatPumpOptions) {
    this.#options = options;
  }

  get mode(): 'thread' | 'timer' {
    return this.#thread ? 'thread' : 'timer';
  }

  start(): void {
    const { store, mode = 'auto' } = this.#options;
    const location = store.location;
    if (mode !== 'timer' && location) {
      const data: HeartbeatThreadData = {
        file: location.file,
        durability: location.durability,
        leaseMs: this.#options.leaseMs,
        heartbeatMs: this.#options.heartbeatMs,
        stallLimitMs: this.#options.stallLimitMs,
        now: this.#options.clock.now(),
      };
      const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
      this.#thread = new Thread(new URL(`./heartbeat-thread${ext}`, import.meta.url), {
        workerData: data,
      });
      this.#thread.unref();
      this.#thread.on('message', (message: FromHeartbeatThread) => {
        if (message.op === 'lost') this.#lost(message.ids);
        else if (message.op === 'stalled') this.#options.onStall?.(message.since);
      });
      this.#thread.on('error', () => {
        // The thread died: fall back to renewing on this thread.
        this.#thread = null;
        this.#startTimer();
      });
      this.#tick = setInterval(
        () => this.#post({ op: 'tick', now: this.#options.clock.now() }),
        Math.max(10, Math.floor(this.#options.heartbeatMs / 2)),
      );
      this.#tick.unref();
      return;
    }
    if (mode === 'thread')
      throw new Error('heartbeat thread needs a database with a file location');
    this.#startTimer();
  }

  #startTimer(): void {
    this.#timer = setInterval(() => {
      if (this.#tracked.size === 0) return;
      const items = [...this.#tracked].map(([id, leaseToken]) => ({ id, leaseToken }));
      this.#options.store
        .heartbeatTasks(items, this.#options.leaseMs, this.#options.clock.now())
        .then(
          (lost) => this.#lost(lost),
          () => undefined, // a failed renewal is retried on the next beat; expiry is the backstop
        );
    }, this.#options.heartbeatMs);
    this.#timer.unref();
  }

  track(id: string, token: string): void {
    this.#tracked.set(id, token);
    this.#change('+', id, token);
  }

  untrack(id: string): void {
    this.#tracked.delete(id);
    this.#change('-', id);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#tick);
    const thread = this.#thread;
    this.#thread = null;
    if (thread) {
      const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
      thread.postMessage({ op: 'stop' } satisfies ToHeartbeatThread);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 2_000)))]);
      clearTimeout(timer);
      await thread.terminate();
    }
  }

  /** Track/untrack changes not yet sent (see the `batch` message). */
  #outbox: string[] = [];
  #flushQueued = false;

  /**
   * Sends queued track/untrack messages now. Call it after tracking a batch and before running
   * handlers: a handler that blocks the event loop would otherwise hold the messages back.
   */
  flush(): void {
    if (this.#outbox.length === 0) return;
    const messages = this.#outbox;
    this.#outbox = [];
    this.#thread?.postMessage({ op: 'batch', changes: messages } satisfies ToHeartbeatThread);
  }

  #post(message: ToHeartbeatThread): void {
    this.#thread?.postMessage(message);
  }

  /** Batches track/untrack changes into one postMessage per turn (or per flush). */
  #change(...change: [op: '+', id: string, token: string] | [op: '-', id: string]): void {
    if (!this.#thread) return;
    this.#outbox.push(...change);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.flush();
      });
    }
  }

  #lost(ids: readonly string[]): void {
    const mine = ids.filter((id) => this.#tracked.delete(id));
    if (mine.length > 0) this.#options.onLost(mine);
  }
}
