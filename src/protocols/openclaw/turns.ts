/**
 * Chat turns (reference §4.15–§4.18, §6.2): each message that runs is one Warden run of the
 * gateway's chat workflow in the session, so budgets, policy, interrupts and the event log
 * apply to it as to any run. One run is active per session; later messages wait in the
 * session's queue by its queue mode. The queue is durable (the store's key-value table,
 * namespace `openclaw.queue`, compare-and-set on its version), so queued turns survive a
 * restart and two nodes never start two turns of one session at once. When a run ends the
 * next turn starts — from the commit that ended it when this process sees it, and from a
 * periodic sweep otherwise (another node's commit, a restart).
 *
 * Handing a turn out (the queue's commit) and starting its run are two commits, so a process
 * killed between them leaves a turn active with no run; the queue keeps what the sweep needs
 * to start it (`starting`), once the process that handed it out is dead.
 */
import { randomUUID } from 'node:crypto';

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
import { isDeadLocalOwner, type Kernel, localWorkerId } from '../../kernel/index.ts';
import type { ProcessRecord } from '../../store/index.ts';
import { ensureSession, wardenSessionKey } from './session-records.ts';

const QUEUE_NAMESPACE = 'openclaw.queue';
const RUNS_NAMESPACE = 'openclaw.runs';
/** How many of a session's runs the sweep reads looking for a turn's run (as transcripts do). */
const MAX_SESSION_RUNS = 5_000;
/**
 * How long a turn handed out by a process the sweep cannot judge (another host) may stay
 * without a run before the sweep starts it; a dead process of this host is judged at once.
 * Starting takes milliseconds: only a lost process leaves a turn this long.
 */
export const STARTING_GRACE_MS = 30_000;

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
  /** The model the message asked for (request or session override), kept while it waits. */
  readonly model?: string;
}

interface StoredQueue extends SessionQueue {
  /** Origins of pending turns by id (what the run is started with). */
  readonly origins?: Readonly<Record<string, TurnOrigin>>;
  /** The mode the last message was offered with: draining merges only in `collect`. */
  readonly mode?: QueueMode;
  /** The turn last handed out, kept until the next: the sweep starts it if its run is missing. */
  readonly starting?: StartingTurn;
}

/** A turn handed out: what its run starts with, and who handed it out when. */
interface StartingTurn {
  readonly turn: HandedTurn;
  readonly origin: TurnOrigin;
  readonly model?: string;
  /** The handing process, as a lease owner id (queue/owner-liveness.ts). */
  readonly by: string;
  readonly at: number;
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
  /** This process as the owner of the turns it hands out. */
  readonly #owner = localWorkerId(randomUUID());

  constructor(options: TurnsOptions) {
    this.#options = options;
  }

  get #kernel(): Kernel {
    return this.#options.kernel();
  }

  /** This process as a lease owner id (what it claims or hands out names it). */
  get owner(): string {
    return this.#owner;
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
      const handed: HandedTurn = { ...queued, sourceIds: [turn.runId] };
      const result = await this.#transition(turn.key, (queue) => {
        const offered = offer(queue, queued, settings);
        const origins = { ...(queue.origins ?? {}) };
        for (const dropped of offered.dropped) delete origins[dropped.id];
        if (offered.outcome.kind !== 'rejected' && offered.outcome.kind !== 'start')
          origins[turn.runId] = turn.model ? { ...turn.origin, model: turn.model } : turn.origin;
        const next: StoredQueue = { ...offered.queue, origins, mode: turn.mode };
        return {
          queue:
            offered.outcome.kind === 'start'
              ? { ...next, starting: this.#starting(handed, turn.origin, turn.model, now) }
              : next,
          result: offered,
        };
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
          const run = await this.#startOrRelease(turn.key, handed, turn.origin, turn.model);
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

  #starting(
    turn: HandedTurn,
    origin: TurnOrigin,
    model: string | undefined,
    now: number,
  ): StartingTurn {
    return { turn, origin, ...(model ? { model } : {}), by: this.#owner, at: now };
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
    override?: string,
  ): Promise<ProcessRecord> {
    const kernel = this.#kernel;
    const model = override ?? origin.model;
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
    return this.#serial(key, () => this.#endedNow(key, runId));
  }

  /** {@link ended}, inside the session's chain. */
  async #endedNow(key: string, runId: string): Promise<void> {
    const now = Date.now();
    const { next, origin, retryAt } = await this.#transition(key, (queue) =>
      this.#handOut(queue, finish(queue, runId, now, settingsOf(queue)), now),
    );
    await this.#launch(key, next, origin, retryAt);
  }

  #handOut(
    queue: StoredQueue,
    done: { queue: SessionQueue; next: HandedTurn | null; retryAt?: number },
    now: number,
  ): {
    queue: StoredQueue;
    result: { next: HandedTurn | null; origin: TurnOrigin | undefined; retryAt?: number };
  } {
    const origins = { ...(queue.origins ?? {}) };
    const origin = done.next ? origins[done.next.id] : undefined;
    if (done.next) for (const id of done.next.sourceIds) delete origins[id];
    // A `starting` left from an earlier turn is kept: it only counts while its turn is active.
    return {
      queue: {
        ...done.queue,
        origins,
        ...(queue.mode ? { mode: queue.mode } : {}),
        ...(done.next
          ? {
              starting: this.#starting(done.next, origin ?? DEFAULT_ORIGIN, undefined, now),
            }
          : {}),
      },
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
      await this.#startOrRelease(key, next, origin ?? DEFAULT_ORIGIN).catch((error: unknown) =>
        this.#options.onError?.(error, key),
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
        this.#handOut(queue, drain(queue, now, settingsOf(queue)), now),
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
      if (!ref?.pid) {
        await this.#unrecorded(entry.key, queue.activeRunId);
        continue;
      }
      const run = await this.#kernel.getProcess(ref.pid).catch(() => null);
      if (!run || run.state === 'terminated' || run.state === 'zombie')
        await this.ended(entry.key, queue.activeRunId);
    }
  }

  /**
   * An active turn whose run the gateway has not recorded: being started right now, or its
   * process was killed after the hand-out but before the run started, or after the start but
   * before its pid was recorded. Finds the run — records it, and ends the turn if the run
   * ended (it may have ended before this gateway listened: a crash-looped step dies in the
   * start-up recovery) — or, when there is none and the process that handed the turn out is
   * dead, starts it (claimed by compare-and-set, so one sweeper does).
   */
  #unrecorded(key: string, runId: string): Promise<void> {
    // In the session's chain: a start of this process for the session is over by then.
    return this.#serial(key, async () => {
      const { queue } = await this.#readQueue(key);
      if (queue.activeRunId !== runId || (await this.lookup(runId))?.pid) return;
      const run = await this.#findRun(key, runId);
      if (run) {
        const ids = (run.envelope.metadata.openclaw as { sourceIds?: string[] }).sourceIds;
        for (const id of ids ?? [runId])
          await this.#remember({
            runId: id,
            sessionKey: key,
            pid: run.pid,
            queuedAt: run.created_at,
          });
        this.#options.onStarted?.(
          { runId, sessionKey: key, pid: run.pid, queuedAt: run.created_at },
          run,
        );
        if (run.state === 'terminated' || run.state === 'zombie') await this.#endedNow(key, runId);
        return;
      }
      const starting = queue.starting;
      if (starting?.turn.id !== runId) return;
      const now = Date.now();
      if (starting.by !== this.#owner && !abandonedBy(starting.by, starting.at, now)) return;
      const claimed = await this.#transition(key, (q) =>
        q.activeRunId === runId && q.starting?.by === starting.by && q.starting.at === starting.at
          ? { queue: { ...q, starting: { ...starting, by: this.#owner, at: now } }, result: true }
          : { queue: q, result: false },
      );
      if (!claimed) return;
      await this.#startOrRelease(key, starting.turn, starting.origin, starting.model).catch(
        (error: unknown) => this.#options.onError?.(error, key),
      );
    });
  }

  /**
   * Whether the gateway has any trace of turn `runId` of session `key`: it waits or runs, it
   * was dropped, or a run carries it. A message with none never reached the queue.
   */
  async known(key: string, runId: string): Promise<boolean> {
    const ref = await this.lookup(runId);
    if (ref?.pid || ref?.dropped !== undefined) return true;
    const { queue } = await this.#readQueue(key);
    if (queue.activeRunId === runId || queue.pending.some((t) => t.id === runId)) return true;
    return (await this.#findRun(key, runId)) !== null;
  }

  /** The run a turn started, looked up among its session's runs by the turn's ids. */
  async #findRun(key: string, runId: string): Promise<ProcessRecord | null> {
    const store = this.#kernel.store;
    const session = await store.getSessionByKey(wardenSessionKey(key));
    if (!session) return null;
    const runs = await store.listProcesses({ sessionId: session.id, limit: MAX_SESSION_RUNS });
    const found = runs.find((run) => {
      const meta = run.envelope.metadata.openclaw as
        { runId?: unknown; sourceIds?: unknown } | undefined;
      return (
        meta?.runId === runId || (Array.isArray(meta?.sourceIds) && meta.sourceIds.includes(runId))
      );
    });
    return found ?? null;
  }
}

/**
 * Whether what `owner` took at `at` is abandoned: its process (of this host) is dead, or it is
 * older than {@link STARTING_GRACE_MS} (an owner the liveness check cannot judge).
 */
export function abandonedBy(owner: string, at: number, now: number): boolean {
  return isDeadLocalOwner(owner) || now - at >= STARTING_GRACE_MS;
}

/** Who a turn comes from when its origin was not kept. */
const DEFAULT_ORIGIN: TurnOrigin = { kind: 'chat', user: 'openclaw' };

function settingsOf(queue: StoredQueue): QueueSettings {
  return resolveQueueSettings({ mode: queue.mode });
}
