/**
 * The per-session turn queue of OpenClaw's queue modes (Gateway v4 reference §6.2), as pure state
 * transitions. One session has at most one active run; a message that arrives while one is active
 * is handled by the queue mode:
 *
 * | mode            | with an active run                                                     |
 * |-----------------|------------------------------------------------------------------------|
 * | `followup`      | appended; runs as its own turn, in order                               |
 * | `steer`         | replaces anything pending: only the newest waits (see below)           |
 * | `collect`       | appended; at drain, consecutive prompt-only turns of one channel+thread |
 * |                 | merge into one turn (`prev + "\n\n" + new`) after a quiet window       |
 * | `interrupt`     | the caller aborts the active run; only the newest waits                |
 * | `steer-backlog` | appended (Warden cannot steer, so only the backlog half remains)       |
 *
 * Steering injects a message into a running model call at its next tool or model boundary.
 * Warden's runtime cannot do that, so `steer` takes OpenClaw's own fallback ("the message waits
 * and runs as a followup") and, like the Rust scheduler, keeps only the newest pending message.
 *
 * States and transitions (`SessionQueue`):
 * - idle: `activeRunId === null`, nothing pending. {@link offer} starts the turn at once and makes
 *   it active.
 * - running: `activeRunId !== null`. {@link offer} queues per the mode and the cap;
 *   {@link finish} of the active run hands out the next turn and makes it active, or goes idle.
 * - waiting: `activeRunId === null` with turns pending; only `collect`'s quiet window leaves the
 *   queue here. {@link offer} queues behind the waiting turns (never jumps them), and the caller
 *   **must** call {@link drain} at the `retryAt` it was given, or the pending turns never run.
 *
 * A turn handed out by {@link finish} or {@link drain} is active from that moment (its id is the
 * `activeRunId` until {@link markActive} names the real run), so no second turn can start for the
 * session in between. Every offered turn ends up exactly once in one of: started, handed out (its
 * id in `sourceIds`), pending, `dropped`, or `rejected`. The caller **must** report `dropped` and
 * `rejected` turns to their senders; nothing else records them.
 *
 * Cap overflow (`cap` pending turns, default 20) follows `drop`: `summarize` (default) drops the
 * oldest pending turn and keeps a one-line summary of it, prepended to the next handed-out turn;
 * `old` drops the oldest silently; `new` rejects the newest. Turns replaced by `steer` and
 * `interrupt` are dropped the same way (summarised under `summarize`).
 *
 * Not covered here: the session lane's global concurrency cap (`agents.defaults.maxConcurrent`),
 * aborting the run (the caller does it on an `interrupt` outcome), and timers (the caller
 * schedules `drain` at `retryAt`).
 */
import { WardenError } from '../errors.ts';

/** The queue modes Warden implements; the legacy aliases normalise to these. */
export const QUEUE_MODES = ['followup', 'steer', 'collect', 'interrupt', 'steer-backlog'] as const;
export type QueueMode = (typeof QUEUE_MODES)[number];

/** Legacy spellings accepted on input (reference §6.2). */
export const QUEUE_MODE_ALIASES: Readonly<Record<string, QueueMode>> = Object.freeze({
  queue: 'steer',
  'steer+backlog': 'steer-backlog',
  steer_backlog: 'steer-backlog',
});

export const DROP_POLICIES = ['summarize', 'old', 'new'] as const;
export type DropPolicy = (typeof DROP_POLICIES)[number];

/**
 * Warden's default mode is `followup`, not OpenClaw's `steer`. OpenClaw's `steer` means "inject
 * into the running model call"; Warden cannot inject, so its `steer` only keeps the newest
 * pending message and discards earlier ones. Making that the default would silently drop
 * messages; `followup` is what OpenClaw's `steer` itself falls back to, and what the Rust rewrite
 * defaults to.
 */
export const DEFAULT_QUEUE_MODE: QueueMode = 'followup';

/** How many dropped-turn summaries a queue keeps; older ones are only counted. */
export const MAX_DROP_SUMMARIES = 20;
/** The longest one-line summary of a dropped turn, in characters. */
export const DROP_SUMMARY_MAX_CHARS = 120;

/** One inbound message waiting for (or starting) a turn. */
export interface QueuedTurn {
  /** Unique per session; OpenClaw's `runId` (= `idempotencyKey` for `chat.send`). */
  readonly id: string;
  readonly text: string;
  /** The channel the message came from; `collect` drains each channel+thread separately. */
  readonly channel?: string;
  readonly threadId?: string;
  /** When it was offered, in ms since the epoch (the caller's clock). */
  readonly enqueuedAt: number;
  /** True for plain text with nothing else attached; only such turns merge in `collect`. */
  readonly promptOnly: boolean;
  readonly attachments?: number;
}

/** A turn handed out by {@link finish} or {@link drain}. */
export interface HandedTurn extends QueuedTurn {
  /** The ids of the offered turns it carries: one, or several merged by `collect`. */
  readonly sourceIds: readonly string[];
}

export interface SessionQueue {
  /** The running turn's run id; `null` when nothing runs. */
  readonly activeRunId: string | null;
  /** Waiting turns, oldest first; never more than the cap. */
  readonly pending: readonly QueuedTurn[];
  /** One-line summaries of dropped turns not yet handed out, oldest first (at most 20). */
  readonly summaries: readonly string[];
  /** Turns dropped with a summary since the last hand-out, counting evicted summaries too. */
  readonly droppedCount?: number;
}

export interface QueueSettings {
  readonly mode: QueueMode;
  /** Maximum pending turns per session. @default 20 */
  readonly cap: number;
  /** @default 'summarize' */
  readonly drop: DropPolicy;
  /** `collect`'s quiet window before a batch drains, in ms. @default 500 */
  readonly debounceMs: number;
}

export const DEFAULT_QUEUE_SETTINGS: QueueSettings = Object.freeze({
  mode: DEFAULT_QUEUE_MODE,
  cap: 20,
  drop: 'summarize',
  debounceMs: 500,
});

export const EMPTY_SESSION_QUEUE: SessionQueue = Object.freeze({
  activeRunId: null,
  pending: Object.freeze([]),
  summaries: Object.freeze([]),
});

export type OfferOutcome =
  | { readonly kind: 'start' }
  | { readonly kind: 'queued'; readonly position: number }
  | { readonly kind: 'interrupt'; readonly abortRunId: string }
  | { readonly kind: 'rejected'; readonly reason: 'queue full' };

export interface OfferResult {
  readonly queue: SessionQueue;
  readonly outcome: OfferOutcome;
  /** Pending turns this offer pushed out (cap overflow, or replaced by steer/interrupt). */
  readonly dropped: readonly QueuedTurn[];
}

export interface DrainResult {
  readonly queue: SessionQueue;
  readonly next: HandedTurn | null;
  /** Set when `collect`'s quiet window holds the batch back: call {@link drain} at this time. */
  readonly retryAt?: number;
}

/** A mode name from config, `/queue` or `chat.send.queueMode`, or `null` if it is none. */
export function normalizeQueueMode(raw: unknown): QueueMode | null {
  if (typeof raw !== 'string') return null;
  const mode = raw.trim().toLowerCase();
  if ((QUEUE_MODES as readonly string[]).includes(mode)) return mode as QueueMode;
  return Object.hasOwn(QUEUE_MODE_ALIASES, mode) ? (QUEUE_MODE_ALIASES[mode] ?? null) : null;
}

/**
 * Fills in defaults. As in OpenClaw, a `cap` below 1 and a negative or non-finite `debounceMs`
 * are ignored (the default applies), and an unknown mode or drop policy falls back too.
 */
export function resolveQueueSettings(
  input: {
    readonly mode?: unknown;
    readonly cap?: number | undefined;
    readonly drop?: unknown;
    readonly debounceMs?: number | undefined;
  } = {},
): QueueSettings {
  const cap = input.cap !== undefined && input.cap >= 1 ? Math.floor(input.cap) : undefined;
  const debounce =
    input.debounceMs !== undefined && Number.isFinite(input.debounceMs) && input.debounceMs >= 0
      ? input.debounceMs
      : undefined;
  const drop = (DROP_POLICIES as readonly unknown[]).includes(input.drop)
    ? (input.drop as DropPolicy)
    : undefined;
  return Object.freeze({
    mode: normalizeQueueMode(input.mode) ?? DEFAULT_QUEUE_SETTINGS.mode,
    cap: cap !== undefined && Number.isFinite(cap) ? cap : DEFAULT_QUEUE_SETTINGS.cap,
    drop: drop ?? DEFAULT_QUEUE_SETTINGS.drop,
    debounceMs: debounce ?? DEFAULT_QUEUE_SETTINGS.debounceMs,
  });
}

/**
 * The mode for one message, by the precedence of §6.2: the request's own `queueMode`
 * (`chat.send`), the session's `/queue` override, `messages.queue.byChannel.<channel>`,
 * `messages.queue.mode`, then {@link DEFAULT_QUEUE_MODE}. Values that are not modes are skipped.
 */
export function resolveQueueMode(sources: {
  readonly request?: unknown;
  readonly session?: unknown;
  readonly byChannel?: Readonly<Record<string, unknown>> | undefined;
  readonly channel?: string | undefined;
  readonly global?: unknown;
}): QueueMode {
  const channel = sources.channel?.trim().toLowerCase();
  const byChannel =
    channel !== undefined && sources.byChannel !== undefined
      ? channelEntry(sources.byChannel, channel)
      : undefined;
  return (
    normalizeQueueMode(sources.request) ??
    normalizeQueueMode(sources.session) ??
    normalizeQueueMode(byChannel) ??
    normalizeQueueMode(sources.global) ??
    DEFAULT_QUEUE_MODE
  );
}

function channelEntry(byChannel: Readonly<Record<string, unknown>>, channel: string): unknown {
  // Own keys only, so a channel named "constructor" cannot read the prototype.
  for (const [name, mode] of Object.entries(byChannel)) {
    if (name.trim().toLowerCase() === channel) return mode;
  }
  return undefined;
}

/**
 * Offers a new message to the session. Idle: it starts (`start`) and becomes the active run.
 * Otherwise it is queued per the mode and the cap; an `interrupt` outcome tells the caller which
 * run to abort, and the new turn runs when that run's {@link finish} arrives.
 * @throws ALREADY_EXISTS when a turn with the same id is active or pending (dedupe by
 * `idempotencyKey` first, reference §6.4).
 */
export function offer(queue: SessionQueue, turn: QueuedTurn, settings: QueueSettings): OfferResult {
  if (queue.activeRunId === turn.id || queue.pending.some((t) => t.id === turn.id)) {
    throw new WardenError(
      'ALREADY_EXISTS',
      `turn '${turn.id}' is already running or queued in this session; dedupe retries by idempotencyKey before offering them`,
      { details: { turn_id: turn.id } },
    );
  }
  if (queue.activeRunId === null && queue.pending.length === 0) {
    return {
      queue: { ...queue, activeRunId: turn.id },
      outcome: { kind: 'start' },
      dropped: [],
    };
  }
  const active = queue.activeRunId;
  if (active !== null && (settings.mode === 'steer' || settings.mode === 'interrupt')) {
    const replaced = queue.pending;
    const next = { ...withDropped(queue, replaced, settings), pending: [turn] };
    const outcome: OfferOutcome =
      settings.mode === 'interrupt'
        ? { kind: 'interrupt', abortRunId: active }
        : { kind: 'queued', position: 1 };
    return { queue: next, outcome, dropped: replaced };
  }
  // followup, collect, steer-backlog, and any mode while turns wait for a quiet window.
  const cap = effectiveCap(settings);
  if (queue.pending.length < cap) {
    const pending = [...queue.pending, turn];
    return {
      queue: { ...queue, pending },
      outcome: { kind: 'queued', position: pending.length },
      dropped: [],
    };
  }
  if (settings.drop === 'new') {
    return { queue, outcome: { kind: 'rejected', reason: 'queue full' }, dropped: [] };
  }
  const overflow = queue.pending.length - cap + 1;
  const dropped = queue.pending.slice(0, overflow);
  const pending = [...queue.pending.slice(overflow), turn];
  return {
    queue: { ...withDropped(queue, dropped, settings), pending },
    outcome: { kind: 'queued', position: pending.length },
    dropped,
  };
}

/** Names the real run id of the active turn (or of a run started outside the queue). */
export function markActive(queue: SessionQueue, runId: string): SessionQueue {
  if (runId === '') throw new WardenError('INVALID_PARAMS', 'markActive: runId must not be empty');
  return { ...queue, activeRunId: runId };
}

/**
 * The active run `runId` ended (finished, failed or was aborted): hands out the next turn as in
 * {@link drain}. A `finish` for a run that is not the active one changes nothing and hands out
 * nothing, so a duplicate end event (abort plus natural end) cannot start two turns.
 */
export function finish(
  queue: SessionQueue,
  runId: string,
  now: number,
  settings: QueueSettings,
): DrainResult {
  if (queue.activeRunId !== runId) return { queue, next: null };
  return drain({ ...queue, activeRunId: null }, now, settings);
}

/**
 * Hands out the next turn when nothing runs, and makes it active. In `collect` mode consecutive
 * prompt-only turns with the same channel+thread merge into one, after a quiet window: while the
 * newest pending turn is younger than `debounceMs` at `now`, nothing is handed out and `retryAt`
 * says when to call again. Summaries of dropped turns are prepended to the handed-out text.
 */
export function drain(queue: SessionQueue, now: number, settings: QueueSettings): DrainResult {
  const head = queue.pending[0];
  if (queue.activeRunId !== null || head === undefined) return { queue, next: null };
  let taken = 1;
  let text = head.text;
  if (settings.mode === 'collect') {
    const newest = queue.pending[queue.pending.length - 1] ?? head;
    if (now - newest.enqueuedAt < settings.debounceMs) {
      return { queue, next: null, retryAt: newest.enqueuedAt + settings.debounceMs };
    }
    while (head.promptOnly) {
      const candidate = queue.pending[taken];
      if (candidate === undefined || !candidate.promptOnly || !sameRoute(head, candidate)) break;
      text = `${text}\n\n${candidate.text}`;
      taken += 1;
    }
  }
  const sources = queue.pending.slice(0, taken);
  const next: HandedTurn = {
    ...head,
    text: withSummaryPreamble(queue, text),
    sourceIds: sources.map((t) => t.id),
  };
  return {
    queue: {
      activeRunId: next.id,
      pending: queue.pending.slice(taken),
      summaries: [],
    },
    next,
  };
}

/** A one-line summary of a dropped turn: whitespace collapsed, cut to 120 chars, quoted. */
export function summarizeTurn(turn: QueuedTurn): string {
  const flat = turn.text.replace(/\s+/g, ' ').trim();
  const cut =
    flat.length <= DROP_SUMMARY_MAX_CHARS ? flat : `${flat.slice(0, DROP_SUMMARY_MAX_CHARS - 1)}…`;
  const files =
    turn.attachments !== undefined && turn.attachments > 0
      ? ` (+${turn.attachments} attachment${turn.attachments === 1 ? '' : 's'})`
      : '';
  return `${cut === '' ? '(no text)' : JSON.stringify(cut)}${files}`;
}

function effectiveCap(settings: QueueSettings): number {
  return Number.isFinite(settings.cap) && settings.cap >= 1 ? Math.floor(settings.cap) : 1;
}

function sameRoute(a: QueuedTurn, b: QueuedTurn): boolean {
  return (a.channel ?? '') === (b.channel ?? '') && (a.threadId ?? '') === (b.threadId ?? '');
}

/** Records dropped turns: summarised (bounded, counted) under `summarize`, silently otherwise. */
function withDropped(
  queue: SessionQueue,
  dropped: readonly QueuedTurn[],
  settings: QueueSettings,
): SessionQueue {
  if (settings.drop !== 'summarize' || dropped.length === 0) return queue;
  const summaries = [...queue.summaries, ...dropped.map(summarizeTurn)].slice(-MAX_DROP_SUMMARIES);
  const droppedCount = (queue.droppedCount ?? queue.summaries.length) + dropped.length;
  return { ...queue, summaries, droppedCount };
}

function withSummaryPreamble(queue: SessionQueue, text: string): string {
  if (queue.summaries.length === 0) return text;
  const count = Math.max(queue.droppedCount ?? 0, queue.summaries.length);
  const more = count > queue.summaries.length ? `; and ${count - queue.summaries.length} more` : '';
  const noun = count === 1 ? 'message' : 'messages';
  return `[${count} earlier ${noun} dropped: ${queue.summaries.join('; ')}${more}]\n\n${text}`;
}
