/**
 * Chat turns (reference §4.15–§4.18, §6.2): each message that runs is one Warden run of the
 * gateway's chat workflow in the session, so budgets, policy, interrupts and the event log
 * apply to it as to any run. One run is active per session; later messages wait in the
 * session's queue by its queue mode. The queue is durable (the store's key-value table,
 * namespace `openclaw.queue`, compare-and-set on its version), so queued turns survive a
 * restart and two nodes never start two turns of one session at once. When a run ends the
 * next turn starts — from the commit that ended it when this process sees it, and from a
 * periodic sweep otherwise (another node's commit, a restart).
 */
import { isWardenError, WardenError } from '../../core/index.ts';
import {
  drain,
  EMPTY_SESSION_QUEUE,
  finish,
  type HandedTurn,
  offer,
  type QueuedTurn,
  type QueueMode,
  type QueueSettings,
  resolveQueueSettings,
  type SessionQueue,
} from '../../core/openclaw/index.ts';
import type { LoadedWorkflow } from '../../core/workflow/load.ts';
import type { Kernel } from '../../kernel/index.ts';
import type { ProcessRecord } from '../../store/index.ts';
import { ensureSession, wardenSessionKey } from './session-records.ts';

const QUEUE_NAMESPACE = 'openclaw.queue';
const RUNS_NAMESPACE = 'openclaw.runs';

/** The `dropped` reason of a queued turn that `chat.abort`/`sessions.abort` removed. */
export const DROPPED_BY_ABORT = 'aborted while queued';

/** What a queued or running turn remembers about where it came from. */
export interface TurnOrigin {
  readonly kind: 'chat' | 'agent' | 'channel';
  readonly user: string;
  readonly channel?: string;
  readonly threadId?: string;
  /** Where replies to a channel message go (the channel driver's own data). */
  readonly replyTo?: unknown;
}

interface StoredQueue extends SessionQueue {
  /** Origins of pending turns by id (what the run is started with). */
  readonly origins?: Readonly<Record<string, TurnOrigin>>;
  /** The mode the last message was offered with: draining merges only in `collect`. */
  readonly mode?: QueueMode;
}

/** Where a run id leads: the Warden run, once started (merged `collect` turns share one). */
export interface RunRef {
  readonly runId: string;
  readonly sessionKey: string;
  readonly pid: string | null;
  readonly queuedAt: number;
  /** Why the turn never ran (replaced, pushed out of a full queue, aborted while queued). */
  readonly dropped?: string;
}

export interface SubmitTurn {
  readonly key: string;
  readonly runId: string;
  readonly message: string;
  readonly mode: QueueMode;
  readonly origin: TurnOrigin;
  /** Overrides for this turn's model (from the session entry or the request). */
  readonly model?: string | undefined;
}

export type SubmitOutcome =
  | { readonly status: 'started'; readonly pid: string }
  | { readonly status: 'queued'; readonly position: number; readonly interrupted?: string };

export interface TurnsOptions {
  readonly kernel: () => Kernel;
  /** The workflow a turn runs (its input: message, prompt, sessionKey, runId, model). */
  readonly workflow: (model?: string) => LoadedWorkflow;
  /** A run started for a turn (events may now flow for it). */
  readonly onStarted?: (ref: RunRef, run: ProcessRecord) => void;
  /** A queued turn will never run: its sender must be told (its `chat` ends `aborted`). */
  readonly onDropped?: (ref: RunRef) => void;
  readonly onError?: (error: unknown, key: string) => void;
}

export class Turns {
  readonly #options: TurnsOptions;
  /** Per-session chains: one queue transition at a time in this process (CAS covers others). */
  readonly #chains = new Map<string, Promise<unknown>>();
  #sweeper: NodeJS.Timeout | null = null;
  readonly #retries = new Map<string, NodeJS.Timeout>();

  constructor(options: TurnsOptions) {
    this.#options = options;
  }

  get #kernel(): Kernel {
    return this.#options.kernel();
  }

  /**
   * Starts the sweep that drains queues whose active run ended out of sight. The first sweep
   * runs now: a run that ended while no gateway was up must not hold its session until the
   * first tick.
   */
  start(intervalMs = 2_000): void {
    void this.sweep().catch(() => undefined);
    this.#sweeper = setInterval(() => void this.sweep().catch(() => undefined), intervalMs);
    this.#sweeper.unref();
  }

  stop(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    for (const timer of this.#retries.values()) clearTimeout(timer);
    this.#retries.clear();
  }

  #serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.#chains.set(key, settled);
    void settled.then(() => {
      if (this.#chains.get(key) === settled) this.#chains.delete(key);
    });
    return next;
  }

  async #readQueue(key: string): Promise<{ queue: StoredQueue; version: number | null }> {
    const stored = await this.#kernel.store.kvGet(QUEUE_NAMESPACE, key);
    return stored
      ? { queue: stored.value as StoredQueue, version: stored.version }
      : { queue: { ...EMPTY_SESSION_QUEUE, origins: {} }, version: null };
  }

  async #writeQueue(key: string, queue: StoredQueue, version: number | null): Promise<void> {
    await this.#kernel.store.commit([
      {
        op: 'kv.set',
        namespace: QUEUE_NAMESPACE,
        key,
        value: queue,
        expected_version: version,
        now: Date.now(),
      },
    ]);
  }

  /** Compare-and-set on the queue, retried when another writer got there first. */
  async #transition<T>(
    key: string,
    change: (queue: StoredQueue) => { queue: StoredQueue; result: T },
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const { queue, version } = await this.#readQueue(key);
      const { queue: next, result } = change(queue);
      try {
        await this.#writeQueue(key, next, version);
        return result;
      } catch (error) {
        if (!isWardenError(error) || error.code !== 'CONFLICT' || attempt >= 20) throw error;
      }
    }
  }

  async #remember(ref: RunRef): Promise<void> {
    await this.#kernel.store.commit([
      { op: 'kv.set', namespace: RUNS_NAMESPACE, key: ref.runId, value: ref, now: Date.now() },
    ]);
  }

  /** Where `runId` led, or null when the gateway never saw it. */
  async lookup(runId: string): Promise<RunRef | null> {
    const stored = await this.#kernel.store.kvGet(RUNS_NAMESPACE, runId);
    return (stored?.value as RunRef | undefined) ?? null;
  }

  /** Offers a message to its session: it starts now, or waits per the queue mode. */
  submit(turn: SubmitTurn): Promise<SubmitOutcome> {
    return this.#serial(turn.key, async () => {
      const now = Date.now();
      const settings = resolveQueueSettings({ mode: turn.mode });
      const queued: QueuedTurn = {
        id: turn.runId,
        text: turn.message,
        enqueuedAt: now,
        promptOnly: true,
        ...(turn.origin.channel === undefined ? {} : { channel: turn.origin.channel }),
        ...(turn.origin.threadId === undefined ? {} : { threadId: turn.origin.threadId }),
      };
      await this.#remember({ runId: turn.runId, sessionKey: turn.key, pid: null, queuedAt: now });
      const result = await this.#transition(turn.key, (queue) => {
        const offered = offer(queue, queued, settings);
        const origins = { ...(queue.origins ?? {}) };
        for (const dropped of offered.dropped) delete origins[dropped.id];
        if (offered.outcome.kind !== 'rejected' && offered.outcome.kind !== 'start')
          origins[turn.runId] = turn.origin;
        return { queue: { ...offered.queue, origins, mode: turn.mode }, result: offered };
      });
      const replaced = settings.mode === 'steer' || settings.mode === 'interrupt';
      await this.#dropped(
        turn.key,
        result.dropped,
        replaced
          ? `replaced by a newer message (queue mode ${settings.mode})`
          : `pushed out of the session's full queue (${String(settings.cap)} waiting)`,
      );
      switch (result.outcome.kind) {
        case 'rejected':
          throw new WardenError(
            'QUEUE_FULL',
            `the session's queue is full (${settings.cap} waiting); wait for a turn to finish`,
            { retryAfterMs: 1_000 },
          );
        case 'start': {
          const run = await this.#startOrRelease(
            turn.key,
            {
              ...queued,
              sourceIds: [turn.runId],
            },
            turn.origin,
            turn.model,
          );
          return { status: 'started', pid: run.pid };
        }
        case 'interrupt': {
          const active = await this.lookup(result.outcome.abortRunId);
          if (active?.pid)
            await this.#kernel
              .cancelRun(active.pid, 'interrupted by a newer message (queue mode interrupt)')
              .catch(() => undefined);
          return { status: 'queued', position: 1, interrupted: result.outcome.abortRunId };
        }
        case 'queued':
          return { status: 'queued', position: result.outcome.position };
      }
    });
  }

  /** Records that `turns` will never run (agent.wait answers at once) and reports them. */
  async #dropped(key: string, turns: readonly QueuedTurn[], reason: string): Promise<void> {
    for (const turn of turns) {
      const ref: RunRef = {
        runId: turn.id,
        sessionKey: key,
        pid: null,
        queuedAt: turn.enqueuedAt,
        dropped: reason,
      };
      await this.#remember(ref).catch(() => undefined);
      this.#options.onDropped?.(ref);
    }
  }

  async #startOrRelease(
    key: string,
    turn: HandedTurn,
    origin: TurnOrigin,
    model?: string,
  ): Promise<ProcessRecord> {
    try {
      return await this.#start(key, turn, origin, model);
    } catch (error) {
      // Nothing runs: free the session so the next message (or a retry) can start.
      await this.#transition(key, (queue) => ({
        queue: queue.activeRunId === turn.id ? { ...queue, activeRunId: null } : queue,
        result: undefined,
      })).catch(() => undefined);
      throw error;
    }
  }

  async #start(
    key: string,
    turn: HandedTurn,
    origin: TurnOrigin,
    model?: string,
  ): Promise<ProcessRecord> {
    const kernel = this.#kernel;
    await ensureSession(kernel, key, origin.channel ? { channel: origin.channel } : {});
    const run = await kernel.startRun({
      workflow: this.#options.workflow(model),
      input: {
        message: turn.text,
        prompt: turn.text,
        sessionKey: key,
        runId: turn.id,
        ...(model ? { model } : {}),
      },
      sessionKey: wardenSessionKey(key),
      userId: origin.user,
      source: `openclaw:${origin.kind}`,
      metadata: {
        openclaw: {
          runId: turn.id,
          sessionKey: key,
          kind: origin.kind,
          sourceIds: [...turn.sourceIds],
          ...(origin.channel === undefined ? {} : { channel: origin.channel }),
          ...(origin.threadId === undefined ? {} : { threadId: origin.threadId }),
          ...(origin.replyTo === undefined ? {} : { replyTo: origin.replyTo }),
        },
      },
    });
    const ref: RunRef = {
      runId: turn.id,
      sessionKey: key,
      pid: run.pid,
      queuedAt: turn.enqueuedAt,
    };
    // Every id the turn carries (merged `collect` messages) leads to this run.
    for (const id of turn.sourceIds)
      await this.#remember({ ...ref, runId: id }).catch(() => undefined);
    this.#options.onStarted?.(ref, run);
    return run;
  }

  /** The run `runId` of session `key` ended: start the next waiting turn, if any. */
  ended(key: string, runId: string): Promise<void> {
    return this.#serial(key, async () => {
      const now = Date.now();
      const { next, origin, retryAt } = await this.#transition(key, (queue) =>
        this.#handOut(queue, finish(queue, runId, now, settingsOf(queue))),
      );
      await this.#launch(key, next, origin, retryAt);
    });
  }

  #handOut(
    queue: StoredQueue,
    done: { queue: SessionQueue; next: HandedTurn | null; retryAt?: number },
  ): {
    queue: StoredQueue;
    result: { next: HandedTurn | null; origin: TurnOrigin | undefined; retryAt?: number };
  } {
    const origins = { ...(queue.origins ?? {}) };
    const origin = done.next ? origins[done.next.id] : undefined;
    if (done.next) for (const id of done.next.sourceIds) delete origins[id];
    return {
      queue: { ...done.queue, origins, ...(queue.mode ? { mode: queue.mode } : {}) },
      result: {
        next: done.next,
        origin,
        ...(done.retryAt === undefined ? {} : { retryAt: done.retryAt }),
      },
    };
  }

  async #launch(
    key: string,
    next: HandedTurn | null,
    origin: TurnOrigin | undefined,
    retryAt: number | undefined,
  ): Promise<void> {
    if (next) {
      await this.#startOrRelease(key, next, origin ?? { kind: 'chat', user: 'openclaw' }).catch(
        (error: unknown) => this.#options.onError?.(error, key),
      );
      return;
    }
    if (retryAt !== undefined && !this.#retries.has(key)) {
      const timer = setTimeout(
        () => {
          this.#retries.delete(key);
          void this.#drainIdle(key).catch((error: unknown) => this.#options.onError?.(error, key));
        },
        Math.max(0, retryAt - Date.now()),
      );
      timer.unref();
      this.#retries.set(key, timer);
    }
  }

  /** Starts the next turn of an idle session (the `collect` quiet window ended). */
  #drainIdle(key: string): Promise<void> {
    return this.#serial(key, async () => {
      const now = Date.now();
      const { next, origin, retryAt } = await this.#transition(key, (queue) =>
        this.#handOut(queue, drain(queue, now, settingsOf(queue))),
      );
      await this.#launch(key, next, origin, retryAt);
    });
  }

  /**
   * Pending turns not yet started, and the active run: removes the pending ones (all, or the
   * one `runId` names) and cancels the active run when asked. Returns the run ids affected.
   */
  abort(key: string, runId?: string): Promise<string[]> {
    return this.#serial(key, async () => {
      const removed = await this.#transition(key, (queue) => {
        const drop = queue.pending.filter((t) => runId === undefined || t.id === runId);
        const origins = { ...(queue.origins ?? {}) };
        for (const t of drop) delete origins[t.id];
        return {
          queue: {
            ...queue,
            pending: queue.pending.filter((t) => !drop.includes(t)),
            origins,
          },
          result: { pending: drop, active: queue.activeRunId },
        };
      });
      await this.#dropped(key, removed.pending, DROPPED_BY_ABORT);
      const aborted = removed.pending.map((t) => t.id);
      if (removed.active && (runId === undefined || runId === removed.active)) {
        const ref = await this.lookup(removed.active);
        if (ref?.pid) {
          const run = await this.#kernel.getProcess(ref.pid).catch(() => null);
          if (run && run.state !== 'terminated' && run.state !== 'zombie') {
            await this.#kernel.cancelRun(ref.pid, 'aborted by chat.abort');
            aborted.push(removed.active);
          }
        }
      }
      return aborted;
    });
  }

  /** Drops the queue of a deleted session. */
  async forget(key: string): Promise<void> {
    await this.#kernel.store.commit([{ op: 'kv.delete', namespace: QUEUE_NAMESPACE, key }]);
  }

  /** The queue of `key` as stored (for status views). */
  async queueOf(key: string): Promise<SessionQueue> {
    return (await this.#readQueue(key)).queue;
  }

  /**
   * Removes a queue with nothing running, waiting or summarised: it reads the same as no entry,
   * and the sweep lists every entry. Compare-and-set: a turn offered meanwhile keeps it.
   */
  async #deleteIdle(key: string, version: number): Promise<void> {
    await this.#kernel.store
      .commit([{ op: 'kv.delete', namespace: QUEUE_NAMESPACE, key, expected_version: version }])
      .catch((error: unknown) => {
        if (!(isWardenError(error) && error.code === 'CONFLICT')) throw error;
      });
  }

  /** Drains every session whose active run has ended (missed events, other nodes, restarts). */
  async sweep(): Promise<void> {
    const entries = await this.#kernel.store.kvList(QUEUE_NAMESPACE, { limit: 10_000 });
    for (const entry of entries) {
      const queue = entry.value as StoredQueue;
      if (queue.activeRunId === null) {
        if (queue.pending.length > 0) await this.#drainIdle(entry.key);
        else if (queue.summaries.length === 0) await this.#deleteIdle(entry.key, entry.version);
        continue;
      }
      const ref = await this.lookup(queue.activeRunId);
      if (!ref?.pid) continue;
      const run = await this.#kernel.getProcess(ref.pid).catch(() => null);
      if (!run || run.state === 'terminated' || run.state === 'zombie')
        await this.ended(entry.key, queue.activeRunId);
    }
  }
}

function settingsOf(queue: StoredQueue): QueueSettings {
  return resolveQueueSettings({ mode: queue.mode });
}
