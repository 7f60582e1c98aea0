/**
 * One ACP connection: the handshake, calls (validated, authorized and run through the shared
 * command layer), subscriptions, and a bounded outbound buffer. When the buffer passes its
 * high-water mark — or stays unflushed for `stallMs` while a replay waits on it — the client is
 * told (`system.backpressure`) and disconnected with 1013; it resumes from its last seq.
 */
import type { WebSocket } from 'ws';

import { WardenError } from '../../core/index.ts';
import type { EventRecord } from '../../store/index.ts';
import {
  authorize,
  type Caller,
  type CommandServices,
  dispatch,
  isCommandName,
  parseParams,
  PROTOCOL_VERSIONS,
} from '../commands/index.ts';
import { EventPump } from './event-pump.ts';
import {
  errorResponse,
  methodNotFound,
  notification,
  parseFrame,
  type RequestId,
  response,
  toRpcError,
} from './frames.ts';

export interface ConnectionLimits {
  readonly maxFrameBytes: number;
  readonly replayPageSize: number;
  readonly highWaterBytes: number;
  /** How long a replay waits for the client to read before it is cut off. */
  readonly stallMs: number;
  readonly maxSubscriptions: number;
  readonly maxInFlight: number;
}

export interface ConnectionHooks {
  readonly serverVersion: string;
  readonly onBackpressure?: () => void;
  readonly onSubscriptions?: (delta: number) => void;
  /** Called for a sample of delivered events (1 in 64), e.g. to observe fan-out lag. */
  readonly onDelivered?: (event: EventRecord) => void;
  readonly log?: (
    level: 'info' | 'warn' | 'error',
    msg: string,
    fields: Record<string, unknown>,
  ) => void;
}

export class AcpConnection {
  readonly id: string;
  readonly caller: Caller;
  readonly #ws: WebSocket;
  readonly #services: CommandServices;
  readonly #limits: ConnectionLimits;
  readonly #hooks: ConnectionHooks;
  readonly #subscriptions = new Map<string, EventPump>();
  readonly #inFlight = new Set<AbortController>();
  readonly #closed = new AbortController();
  #helloDone = false;
  #subscriptionCounter = 0;
  #cutOff = false;
  #draining = false;

  constructor(
    ws: WebSocket,
    caller: Caller,
    services: CommandServices,
    limits: ConnectionLimits,
    hooks: ConnectionHooks,
  ) {
    this.id = caller.connectionId;
    this.caller = caller;
    this.#ws = ws;
    this.#services = services;
    this.#limits = limits;
    this.#hooks = hooks;
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('close', () => this.#teardown());
    ws.on('error', () => this.#teardown());
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  get open(): boolean {
    return !this.#closed.signal.aborted;
  }

  /** Tells the client the server is stopping; new calls are refused from now on. */
  announceShutdown(reason: string, graceMs: number): void {
    this.#draining = true;
    // Long polls (task.claim, run.wait) answer now, empty, instead of holding the shutdown.
    for (const c of this.#inFlight) c.abort();
    this.#send(notification('system.shutdown', { reason, grace_ms: graceMs }));
  }

  close(code: number, reason: string): void {
    this.#teardown();
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING)
      this.#ws.close(code, reason);
    // A client that does not read never completes the closing handshake.
    setTimeout(() => this.#ws.terminate(), 2_000).unref();
  }

  #teardown(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    for (const c of this.#inFlight) c.abort();
    this.#hooks.onSubscriptions?.(-this.#subscriptions.size);
    for (const pump of this.#subscriptions.values()) pump.close();
    this.#subscriptions.clear();
  }

  #onMessage(data: unknown, isBinary: boolean): void {
    if (!this.open) return;
    if (isBinary) {
      this.#send(
        errorResponse(null, {
          code: -32600,
          message: 'binary frames are not supported: send JSON-RPC as text frames',
          data: { code: 'INVALID_PARAMS', message: 'binary frame', retryable: false },
        }),
      );
      return;
    }
    const text = Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Array.isArray(data)
        ? Buffer.concat(data as Buffer[]).toString('utf8')
        : Buffer.from(data as ArrayBuffer).toString('utf8');
    const frame = parseFrame(text);
    if (frame.kind === 'invalid') {
      this.#send(errorResponse(frame.id, frame.error));
      return;
    }
    const { id, method, params } = frame;
    void this.#call(id, method, params);
  }

  async #call(id: RequestId | null, method: string, params: unknown): Promise<void> {
    const reply = (result: unknown) => {
      if (id !== null) this.#send(response(id, result));
    };
    const fail = (error: unknown) => {
      if (id !== null) this.#send(errorResponse(id, toRpcError(error)));
    };
    if (!isCommandName(method)) {
      if (id !== null) this.#send(errorResponse(id, methodNotFound(method)));
      return;
    }
    if (method === 'system.hello') {
      try {
        return reply(this.#hello(params));
      } catch (error) {
        fail(error);
        if (error instanceof WardenError && error.code === 'PROTOCOL_MISMATCH')
          setImmediate(() => this.close(1002, 'no common protocol version'));
        return;
      }
    }
    if (!this.#helloDone)
      return fail(
        new WardenError(
          'HANDSHAKE_REQUIRED',
          `${method}: call system.hello first (see docs/protocol/acp.md#the-handshake-systemhello); nothing was done`,
          { details: { method } },
        ),
      );
    if (this.#draining)
      return fail(
        new WardenError('DAEMON_UNREACHABLE', 'the daemon is shutting down; reconnect later', {
          retryable: true,
          retryAfterMs: 1_000,
        }),
      );
    if (this.#inFlight.size >= this.#limits.maxInFlight)
      return fail(
        new WardenError(
          'RATE_LIMITED',
          `at most ${this.#limits.maxInFlight} calls may be in flight on one connection; wait for answers`,
          { retryAfterMs: 100 },
        ),
      );
    const controller = new AbortController();
    this.#inFlight.add(controller);
    try {
      if (method === 'events.subscribe') reply(await this.#subscribe(params));
      else if (method === 'events.unsubscribe') {
        await authorize('events.unsubscribe', this.caller, this.#services.security);
        reply(this.#unsubscribe(params));
      } else reply(await dispatch(method, params, this.#services, this.caller, controller.signal));
    } catch (error) {
      if (!isWardenLike(error))
        this.#hooks.log?.('error', 'command failed unexpectedly', {
          method,
          connection_id: this.id,
          err: error instanceof Error ? error.message : String(error),
        });
      fail(error);
    } finally {
      this.#inFlight.delete(controller);
    }
  }

  #hello(params: unknown): unknown {
    if (this.#helloDone)
      throw new WardenError('INVALID_STATE', 'system.hello was already called on this connection');
    const p = parseParams('system.hello', params);
    const low = Math.max(p.protocol.min, PROTOCOL_VERSIONS.min);
    const high = Math.min(p.protocol.max, PROTOCOL_VERSIONS.max);
    if (low > high)
      throw new WardenError(
        'PROTOCOL_MISMATCH',
        `no common protocol version: the client speaks ${p.protocol.min}-${p.protocol.max}, this server ${PROTOCOL_VERSIONS.min}-${PROTOCOL_VERSIONS.max}; upgrade the older side`,
        { details: { server: PROTOCOL_VERSIONS } },
      );
    this.#helloDone = true;
    return {
      protocol: high,
      server: { name: 'warden', version: this.#hooks.serverVersion, protocol: PROTOCOL_VERSIONS },
      connection_id: this.id,
      principal: { kind: this.caller.kind, id: this.caller.id, name: this.caller.name },
      scopes: [...this.caller.scopes],
      limits: {
        max_frame_bytes: this.#limits.maxFrameBytes,
        replay_page_size: this.#limits.replayPageSize,
        outbound_high_water_bytes: this.#limits.highWaterBytes,
      },
    };
  }

  async #subscribe(params: unknown): Promise<unknown> {
    await authorize('events.subscribe', this.caller, this.#services.security);
    const p = parseParams('events.subscribe', params);
    if (this.#subscriptions.size >= this.#limits.maxSubscriptions)
      throw new WardenError(
        'QUEUE_FULL',
        `at most ${this.#limits.maxSubscriptions} subscriptions per connection; unsubscribe first or open another connection`,
        { retryAfterMs: 1_000 },
      );
    const store = this.#services.kernel.store;
    const session = await store.getSession(p.session_id);
    if (!session) throw new WardenError('NOT_FOUND', `session '${p.session_id}' does not exist`);
    const fromSeq = p.from_seq ?? 0;
    // REPLAY_GAP now, as the answer, rather than after the subscription is confirmed.
    await store.readEvents({ sessionId: p.session_id, afterSeq: fromSeq, limit: 1 });
    const subscriptionId = `sub_${++this.#subscriptionCounter}`;
    const low = this.#limits.highWaterBytes / 4;
    const ws = this.#ws;
    const pump = new EventPump(store, p.session_id, fromSeq, this.#limits.replayPageSize, {
      send: (event) => this.#sendEvent(subscriptionId, event),
      flushed: () => this.#flushed(),
      // Replay reads the next page only while the outbound buffer is below a quarter of the mark.
      get canReadMore() {
        return ws.bufferedAmount <= low;
      },
      batch: (fn) => this.#batch(fn),
      fail: (error) => {
        this.#send(
          notification('events.error', {
            subscription_id: subscriptionId,
            error: toRpcError(error).data,
          }),
        );
        this.#subscriptions.delete(subscriptionId);
        this.#hooks.onSubscriptions?.(-1);
      },
    });
    this.#subscriptions.set(subscriptionId, pump);
    this.#hooks.onSubscriptions?.(1);
    // Answer first, then replay: the events follow the confirmation on the wire.
    setImmediate(() => {
      if (this.#subscriptions.get(subscriptionId) === pump) pump.start();
    });
    return { subscription_id: subscriptionId, session_id: p.session_id, from_seq: fromSeq };
  }

  #unsubscribe(params: unknown): unknown {
    const p = parseParams('events.unsubscribe', params);
    const pump = this.#subscriptions.get(p.subscription_id);
    if (!pump)
      throw new WardenError(
        'NOT_FOUND',
        `no subscription '${p.subscription_id}' on this connection`,
      );
    pump.close();
    this.#subscriptions.delete(p.subscription_id);
    this.#hooks.onSubscriptions?.(-1);
    return { ok: true };
  }

  #sendEvent(subscriptionId: string, event: EventRecord): boolean {
    if ((event.seq & 63) === 0) this.#hooks.onDelivered?.(event);
    // The envelope around the event is fixed per subscription: serialise the event only.
    return this.#send(
      `{"jsonrpc":"2.0","method":"events.event","params":{"subscription_id":${JSON.stringify(subscriptionId)},"event":${JSON.stringify(event)}}}`,
    );
  }

  /**
   * Sends made inside `fn` leave in as few socket writes as the kernel allows (the socket is
   * corked for the duration): a page of events costs one write, not one per event.
   */
  #batch(fn: () => void): void {
    const socket = (this.#ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    socket?.cork();
    try {
      fn();
    } finally {
      socket?.uncork();
    }
  }

  /** Sends a frame; false once the connection is closed or was cut off for backpressure. */
  #send(frame: string): boolean {
    if (this.#cutOff || this.#ws.readyState !== this.#ws.OPEN) return false;
    this.#ws.send(frame);
    if (this.#ws.bufferedAmount > this.#limits.highWaterBytes) {
      this.#backpressure();
      return false;
    }
    return true;
  }

  /** Resolves true once the outbound buffer is below a quarter of the mark; false if cut off. */
  #flushed(): Promise<boolean> {
    const low = this.#limits.highWaterBytes / 4;
    if (this.#ws.bufferedAmount <= low) return Promise.resolve(this.open && !this.#cutOff);
    return new Promise((resolve) => {
      const started = Date.now();
      const check = () => {
        if (!this.open || this.#cutOff) return resolve(false);
        if (this.#ws.bufferedAmount <= low) return resolve(true);
        if (Date.now() - started > this.#limits.stallMs) {
          this.#backpressure();
          return resolve(false);
        }
        setTimeout(check, 5);
      };
      setTimeout(check, 1);
    });
  }

  #backpressure(): void {
    if (this.#cutOff) return;
    const buffered = this.#ws.bufferedAmount;
    // The notice goes out ahead of the close frame; the buffer was the problem, not its content.
    this.#ws.send(
      notification('system.backpressure', {
        buffered_bytes: buffered,
        high_water_bytes: this.#limits.highWaterBytes,
        message:
          'this connection did not read fast enough; reconnect and subscribe again from your last seq',
      }),
    );
    this.#cutOff = true;
    this.#hooks.onBackpressure?.();
    this.#hooks.log?.('warn', 'connection cut off for backpressure', {
      connection_id: this.id,
      buffered_bytes: buffered,
    });
    this.close(1013, 'backpressure: resume from your last seq');
  }
}

function isWardenLike(error: unknown): boolean {
  return (
    error instanceof WardenError || (typeof error === 'object' && error !== null && 'code' in error)
  );
}
