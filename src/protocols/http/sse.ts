/**
 * `GET /events?session_id=…[&from_seq=N]`: a session's event log as server-sent events
 * (DESIGN.md §10), with the same replay rules as ACP's `events.subscribe` (docs/protocol/acp.md).
 *
 * How one stream works — ONE cursor (the seq of the last event written) decides everything:
 *
 * 1. Before streaming: the parameters are checked (400), the session must exist (404), the
 *    cursor (`Last-Event-ID` header, else `from_seq`, else the oldest kept event) must not be
 *    older than retention (410 REPLAY_GAP) nor past the session's last seq (400). The commit
 *    listeners are attached BEFORE the first read, so a commit made while it runs is not missed.
 * 2. Replay: pages of `pageSize` events after the cursor are read from the store. The next page
 *    is read only once the socket drained (`res.write` returned false → wait for 'drain'), so a
 *    slow client holds at most about one page in memory — no cap on the total replayed.
 * 3. Live: `store.onCommit` hands this process's commits over directly; an event is written at
 *    once when its seq is cursor + 1. Anything else — a seq ahead of the cursor (a hole: the
 *    replay is still behind, or a commit this process did not make), or `store.watchChanges`
 *    saying another process committed — wakes the pump, which reads from the cursor.
 *
 * An event whose seq ≤ cursor is never written, and nothing after a hole is written before the
 * hole is read from the store: every event is sent exactly once, in order, with no gap at the
 * replay → live seam. A client that stops reading is cut off, never buffered without bound:
 * when the unflushed output passes `highWaterBytes`, or a drain does not come within
 * `drainTimeoutMs`, the stream writes an `event: backpressure` frame and ends; the client
 * resumes with `Last-Event-ID` (EventSource does so by itself). A store failure mid-stream is
 * an `event: error` frame, then the end.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { z } from 'zod';

import { checkParams, coerceError, errors, invalidParams, WardenError } from '../../core/index.ts';
import type { EventRecord, Store } from '../../store/index.ts';
import { sendHttpError } from './errors.ts';

export interface SseOptions {
  readonly store: Store;
  /** Events per replay read (1–10,000). @default 500 */
  readonly pageSize?: number;
  /** Unflushed output (bytes) beyond which a client is cut off. @default 8 MiB */
  readonly highWaterBytes?: number;
  /** Interval of the `: ping` comment lines, in ms. @default 15000 */
  readonly heartbeatMs?: number;
  /** How long a replay waits for a socket to drain before cutting the client off, in ms. @default 60000 */
  readonly drainTimeoutMs?: number;
  /** Called with the seconds from an event's commit to its live delivery (metrics). */
  readonly observeLag?: (seconds: number) => void;
}

/** Serves one request; the promise settles (never rejects) when the response is over. */
export type SseHandler = (req: IncomingMessage, res: ServerResponse, url?: URL) => Promise<void>;

const optionsSchema = z.object({
  store: z.custom<Store>((v) => typeof v === 'object' && v !== null, 'expected a Store'),
  pageSize: z.number().int().min(1).max(10_000).optional(),
  highWaterBytes: z.number().int().min(1_024).optional(),
  heartbeatMs: z.number().int().min(10).optional(),
  drainTimeoutMs: z.number().int().min(10).optional(),
  observeLag: z.function().optional(),
});

const seqText = z
  .string()
  .regex(/^\d{1,15}$/, 'expected a sequence number (a non-negative integer)')
  .transform(Number);
const querySchema = z.object({
  session_id: z.string().min(1).max(200),
  from_seq: seqText.optional(),
  'Last-Event-ID': seqText.optional(),
});

const WHERE = 'GET /events';
/** After the backpressure frame, a client that still does not read is dropped this much later. */
const CLOSE_GRACE_MS = 5_000;

/** Builds the `/events` handler. */
export function createSseHandler(options: SseOptions): SseHandler {
  checkParams('createSseHandler', optionsSchema, options);
  const config: StreamConfig = {
    store: options.store,
    pageSize: options.pageSize ?? 500,
    highWaterBytes: options.highWaterBytes ?? 8 * 1024 * 1024,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    drainTimeoutMs: options.drainTimeoutMs ?? 60_000,
    observeLag: options.observeLag ?? null,
  };
  return async (req, res, url) => {
    if (req.method !== 'GET') {
      res.setHeader('allow', 'GET');
      sendHttpError(res, new WardenError('INVALID_PARAMS', `${WHERE}: only GET is allowed`));
      return;
    }
    let stream: EventStream;
    try {
      const where = url ?? new URL(req.url ?? '/', 'http://localhost');
      stream = await EventStream.open(config, where, req.headers['last-event-id']);
    } catch (error) {
      sendHttpError(res, error);
      return;
    }
    await stream.run(res);
  };
}

interface StreamConfig {
  readonly store: Store;
  readonly pageSize: number;
  readonly highWaterBytes: number;
  readonly heartbeatMs: number;
  readonly drainTimeoutMs: number;
  readonly observeLag: ((seconds: number) => void) | null;
}

/** One client's stream: the cursor and the pump (see the module comment). */
class EventStream {
  readonly #config: StreamConfig;
  readonly #sessionId: string;
  #cursor: number;
  #firstPage: EventRecord[];
  #detach: Array<() => void>;
  #res: ServerResponse | null = null;
  #pumping = false;
  #dirty = false;
  #closed = false;
  #heartbeat: NodeJS.Timeout | null = null;
  #finished!: () => void;
  readonly #done = new Promise<void>((resolve) => (this.#finished = resolve));

  private constructor(config: StreamConfig, sessionId: string, cursor: number) {
    this.#config = config;
    this.#sessionId = sessionId;
    this.#cursor = cursor;
    this.#firstPage = [];
    // Listeners first, then the first read: a commit in between only marks the stream dirty.
    this.#detach = [
      config.store.onCommit((events) => this.#onCommit(events)),
      config.store.watchChanges(() => this.#kick()),
    ];
  }

  /** Checks everything that answers an HTTP error, and reads the first page. */
  static async open(
    config: StreamConfig,
    url: URL,
    lastEventId: string | string[] | undefined,
  ): Promise<EventStream> {
    const raw: Record<string, unknown> = {};
    for (const key of ['session_id', 'from_seq'] as const) {
      const values = url.searchParams.getAll(key);
      if (values.length > 1) throw invalidParams(WHERE, [{ path: key, message: 'given twice' }]);
      if (values.length === 1) raw[key] = values[0];
    }
    if (lastEventId !== undefined) raw['Last-Event-ID'] = lastEventId;
    const query = checkParams(WHERE, querySchema, raw);
    const { store } = config;
    const session = await store.getSession(query.session_id);
    if (!session) throw errors.notFound('session', query.session_id);
    const oldest = session.pruned_seq ?? 0;
    const cursor = query['Last-Event-ID'] ?? query.from_seq ?? oldest;
    if (cursor < oldest) throw errors.replayGap(session.id, cursor, oldest);
    if (cursor > session.last_seq) {
      throw invalidParams(WHERE, [
        {
          path: query['Last-Event-ID'] === undefined ? 'from_seq' : 'Last-Event-ID',
          message: `seq ${cursor} is past the last event of session ${session.id} (seq ${session.last_seq})`,
        },
      ]);
    }
    const stream = new EventStream(config, session.id, cursor);
    try {
      stream.#firstPage = await store.readEvents({
        sessionId: session.id,
        afterSeq: cursor,
        limit: config.pageSize,
      });
    } catch (error) {
      stream.#cleanup();
      throw error;
    }
    return stream;
  }

  /** Streams until the client goes away or is cut off. */
  run(res: ServerResponse): Promise<void> {
    this.#res = res;
    res.on('close', () => this.#cleanup());
    res.on('error', () => this.#cleanup());
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    this.#heartbeat = setInterval(() => this.#ping(), this.#config.heartbeatMs);
    const page = this.#firstPage;
    this.#firstPage = [];
    try {
      this.#writePage(page);
    } catch (error) {
      this.#fail(error);
    }
    // Always look once more: commits made while the first page was read only marked us dirty.
    this.#kick();
    return this.#done;
  }

  #onCommit(events: readonly EventRecord[]): void {
    if (this.#closed) return;
    for (const event of events) {
      if (event.session_id !== this.#sessionId) continue;
      const outcome = this.#res === null ? 'hole' : this.#emit(event);
      if (outcome === 'hole') {
        this.#kick(); // not streaming yet, or behind: the pump reads from the cursor
        return;
      }
      if (outcome === 'written') this.#config.observeLag?.((Date.now() - event.ts) / 1000);
    }
  }

  #kick(): void {
    this.#dirty = true;
    if (!this.#pumping && this.#res !== null && !this.#closed) void this.#pump();
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#dirty && !this.#closed) {
        this.#dirty = false;
        if (this.#res!.writableNeedDrain && !(await this.#drained())) return;
        const page = await this.#config.store.readEvents({
          sessionId: this.#sessionId,
          afterSeq: this.#cursor,
          limit: this.#config.pageSize,
        });
        if (this.#closed) return;
        this.#writePage(page);
        if (page.length === this.#config.pageSize) this.#dirty = true;
      }
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#pumping = false;
    }
  }

  #writePage(page: readonly EventRecord[]): void {
    for (const event of page) {
      if (this.#closed) return;
      if (this.#emit(event) === 'hole') {
        // The store returns contiguous seqs after the cursor; a hole here is a broken log.
        throw new WardenError(
          'LEDGER_BROKEN',
          `session ${this.#sessionId}: event seq ${event.seq} follows seq ${this.#cursor}; run \`warden ledger verify\``,
          { details: { session_id: this.#sessionId, expected_seq: this.#cursor + 1 } },
        );
      }
    }
  }

  /** Writes the event if it is the next one; never an event at or before the cursor. */
  #emit(event: EventRecord): 'written' | 'skipped' | 'hole' {
    if (this.#closed || event.seq <= this.#cursor) return 'skipped';
    if (event.seq !== this.#cursor + 1) return 'hole';
    this.#cursor = event.seq;
    this.#res!.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    this.#checkHighWater();
    return 'written';
  }

  #ping(): void {
    if (this.#closed) return;
    this.#res!.write(': ping\n\n');
    this.#checkHighWater();
  }

  #checkHighWater(): void {
    const buffered = this.#res!.writableLength;
    if (buffered > this.#config.highWaterBytes) {
      this.#cutOff(
        buffered,
        `the client read too slowly: ${buffered} bytes were waiting (limit ${this.#config.highWaterBytes}); reconnect with Last-Event-ID: ${this.#cursor}`,
      );
    }
  }

  /** Resolves true once the socket drained; false when the stream ended meanwhile. */
  #drained(): Promise<boolean> {
    const res = this.#res!;
    return new Promise((resolve) => {
      const settle = () => {
        clearTimeout(timer);
        res.off('drain', settle);
        res.off('close', settle);
        resolve(!this.#closed);
      };
      const timer = setTimeout(() => {
        this.#cutOff(
          res.writableLength,
          `the client read nothing for ${this.#config.drainTimeoutMs} ms; reconnect with Last-Event-ID: ${this.#cursor}`,
        );
        settle();
      }, this.#config.drainTimeoutMs);
      res.on('drain', settle);
      res.on('close', settle);
    });
  }

  /** Tells the client why (if it ever reads again), ends the response, drops it if it still lags. */
  #cutOff(buffered: number, message: string): void {
    if (this.#closed) return;
    const res = this.#res!;
    const data = {
      buffered_bytes: buffered,
      high_water_bytes: this.#config.highWaterBytes,
      last_seq: this.#cursor,
      message,
    };
    this.#cleanup();
    res.end(`event: backpressure\ndata: ${JSON.stringify(data)}\n\n`);
    setTimeout(() => res.destroy(), CLOSE_GRACE_MS).unref();
  }

  #fail(error: unknown): void {
    if (this.#closed) return;
    const res = this.#res!;
    this.#cleanup();
    res.end(`event: error\ndata: ${JSON.stringify(coerceError(error).toJSON())}\n\n`);
  }

  #cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const detach of this.#detach.splice(0)) detach();
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    this.#finished();
  }
}
