/**
 * `WardenClient`: a connection to a Warden daemon over ACP (docs/protocol/acp.md) that
 * survives drops.
 *
 * States: open (a socket with a finished `system.hello`) → reconnecting (the socket dropped:
 * network, daemon restart, `1013` after backpressure, `1001` at shutdown; the client reopens
 * it with exponential backoff and jitter and says hello again) → open … → closed (`close()`,
 * a refusal that retrying cannot fix — UNAUTHORIZED, FORBIDDEN, PROTOCOL_MISMATCH — or
 * `reconnect.maxAttempts` spent).
 *
 * Calls in flight when the socket drops reject with DAEMON_UNREACHABLE (retryable): the
 * client cannot know whether the daemon carried them out, so it never repeats them itself.
 * Calls made while reconnecting wait for the connection, within their own timeout.
 * Subscriptions are attached again from their `lastSeq` after each reconnect.
 */
import { EventEmitter } from 'node:events';

import { z } from 'zod';

import { checkParams, isWardenError, WardenError } from '../core/index.ts';
import { Connection } from './connection.ts';
import {
  type Call,
  type CallOptions,
  interruptMethods,
  ledgerMethods,
  runMethods,
  securityMethods,
  sessionMethods,
  systemMethods,
  taskMethods,
} from './methods.ts';
import {
  resolveClientOptions,
  type ResolvedWardenClientOptions,
  type WardenClientOptions,
} from './options.ts';
import { type SubscribeOptions, Subscription, type SubscriptionHost } from './subscription.ts';
import type {
  AcpMethod,
  BackpressureNotice,
  EventRecord,
  HelloResult,
  ParamsOf,
  ResultOf,
  ShutdownNotice,
} from './types.ts';
import { unreachable } from './wire-errors.ts';

/** Events a client emits. */
export interface WardenClientEvents {
  /** The daemon is stopping; the client reconnects after the close that follows. */
  shutdown: [notice: ShutdownNotice];
  /** The daemon's outbound buffer for this connection overflowed; a `1013` close follows. */
  backpressure: [notice: BackpressureNotice];
  /** The socket closed; in-flight calls were rejected with DAEMON_UNREACHABLE. */
  disconnect: [info: { code: number; reason: string }];
  /** A new socket is open and its handshake done; subscriptions are being resumed. */
  reconnect: [hello: HelloResult];
  /** The client is closed for good: `error` is why (undefined after `close()`). */
  closed: [error: WardenError | undefined];
}

/** Refusals that a reconnect cannot fix. */
const FATAL = new Set(['UNAUTHORIZED', 'FORBIDDEN', 'PROTOCOL_MISMATCH']);

const subscribeArgs = z.strictObject({
  sessionId: z.string().min(1),
  options: z
    .strictObject({
      fromSeq: z.number().int().min(0).optional(),
      onEvent: z.custom<(e: EventRecord) => void>((v) => typeof v === 'function').optional(),
      onError: z.custom<(e: WardenError) => void>((v) => typeof v === 'function').optional(),
      reconnect: z.boolean().optional(),
    })
    .optional(),
});

interface Waiter {
  readonly resolve: (connection: Connection) => void;
  readonly reject: (error: WardenError) => void;
}

export class WardenClient extends EventEmitter<WardenClientEvents> implements SubscriptionHost {
  readonly #options: ResolvedWardenClientOptions;
  #connection: Connection | undefined;
  #hello: HelloResult;
  #closedWith: WardenError | undefined = undefined;
  #closed = false;
  #waiters = new Set<Waiter>();
  #retryTimer: NodeJS.Timeout | undefined = undefined;
  readonly #subscriptions = new Set<Subscription>();
  /** Subscriptions attached on the current connection, by the server's id. */
  readonly #byServerId = new Map<string, Subscription>();
  /** Events that arrived before their `events.subscribe` answer (see #onEvent). */
  readonly #early = new Map<string, EventRecord[]>();
  #subscribesInFlight = 0;

  readonly call: Call;
  readonly sessions;
  readonly runs;
  readonly tasks;
  readonly interrupts;
  readonly system;
  readonly ledger;
  /** Policy, audit, grants and quarantine (DESIGN.md §8). */
  readonly security;

  private constructor(
    options: ResolvedWardenClientOptions,
    connection: Connection,
    hello: HelloResult,
  ) {
    super();
    this.#options = options;
    this.#connection = connection;
    this.#hello = hello;
    this.call = <M extends AcpMethod>(method: M, params: ParamsOf<M>, o?: CallOptions) =>
      this.#call(method, params, o);
    this.sessions = sessionMethods(this.call);
    this.runs = runMethods(this.call, options.timeoutMs);
    this.tasks = taskMethods(this.call, options.timeoutMs);
    this.interrupts = interruptMethods(this.call);
    this.system = systemMethods(this.call);
    this.ledger = ledgerMethods(this.call);
    this.security = securityMethods(this.call);
  }

  /**
   * Opens a connection and says `system.hello`. Rejects with INVALID_PARAMS (bad options, or
   * a token in the URL), UNAUTHORIZED (HTTP 401), FORBIDDEN (403: Origin), DAEMON_UNREACHABLE
   * (nothing listening, another HTTP status) or PROTOCOL_MISMATCH. The first connection is
   * not retried: a wrong URL fails at once.
   */
  static async connect(options: WardenClientOptions): Promise<WardenClient> {
    const resolved = resolveClientOptions(options);
    const holder: { client?: WardenClient } = {};
    const { connection, hello } = await openConnection(resolved, {
      onNotification: (method, params) => {
        if (holder.client) holder.client.#onNotification(method, params);
      },
      onClose: (connection, code, reason) => {
        if (holder.client) holder.client.#onClose(connection, code, reason);
      },
    });
    const client = new WardenClient(resolved, connection, hello);
    holder.client = client;
    // Dropped between the handshake and now: its close went unheard.
    if (connection.closed) client.#onClose(connection, 1006, '');
    return client;
  }

  /** The answer to the latest `system.hello` (it changes after a reconnect). */
  get hello(): HelloResult {
    return this.#hello;
  }

  /** True once the client is closed for good. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Subscribes to a session's events from `fromSeq`; resolves once the daemon accepted.
   * Rejects with the daemon's error (NOT_FOUND, FORBIDDEN, REPLAY_GAP, QUEUE_FULL); later
   * errors go to `onError` and end the iterator.
   */
  async subscribe(sessionId: string, options: SubscribeOptions = {}): Promise<Subscription> {
    checkParams('WardenClient.subscribe', subscribeArgs, { sessionId, options });
    const subscription = new Subscription(this, sessionId, options);
    this.#subscriptions.add(subscription);
    try {
      for (;;) {
        const connection = await this.#connected(this.#options.timeoutMs, undefined);
        try {
          await this.#attach(subscription, connection);
          subscription.established = true;
          return subscription;
        } catch (error) {
          // Dropped while subscribing: try again on the next connection.
          if (!isWardenError(error, 'DAEMON_UNREACHABLE') || this.#closed) throw error;
        }
      }
    } catch (error) {
      this.#subscriptions.delete(subscription);
      throw error;
    }
  }

  /** Closes the connection and every subscription. Pending calls reject with DAEMON_UNREACHABLE. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const connection = this.#connection;
    this.#shutdown(undefined);
    return connection?.done ?? Promise.resolve();
  }

  /** @internal (SubscriptionHost) a gap: attach again from lastSeq. */
  reattach(subscription: Subscription): void {
    this.#detach(subscription, true);
    const connection = this.#connection;
    if (connection !== undefined) this.#resume(subscription, connection);
  }

  /** @internal (SubscriptionHost) */
  release(subscription: Subscription): Promise<void> {
    this.#subscriptions.delete(subscription);
    this.#detach(subscription, true);
    return Promise.resolve();
  }

  async #call<M extends AcpMethod>(
    method: M,
    params: ParamsOf<M>,
    options: CallOptions = {},
  ): Promise<ResultOf<M>> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs;
    const started = Date.now();
    const connection = await this.#connected(timeoutMs, options.signal);
    const left = Math.max(1, timeoutMs - (Date.now() - started));
    return (await connection.request(method, params, left, options.signal)) as ResultOf<M>;
  }

  /** The open connection, waiting for a reconnect (at most `timeoutMs`) when there is none. */
  #connected(timeoutMs: number, signal: AbortSignal | undefined): Promise<Connection> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const current = this.#connection;
    if (current !== undefined && !current.closed) return Promise.resolve(current);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
      };
      const waiter: Waiter = {
        resolve: (c) => (done(), resolve(c)),
        reject: (e) => (done(), reject(e)),
      };
      const timer = setTimeout(
        () =>
          waiter.reject(
            new WardenError(
              'DAEMON_UNREACHABLE',
              `the connection to ${this.#options.url} has been down for ${timeoutMs} ms; the client keeps reconnecting`,
              { details: { url: this.#options.url } },
            ),
          ),
        timeoutMs,
      );
      const onAbort = () =>
        waiter.reject(new WardenError('CANCELED', 'the call was canceled by its signal'));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  #closedError(): WardenError {
    return (
      this.#closedWith ??
      new WardenError('DAEMON_UNREACHABLE', `the client for ${this.#options.url} is closed`, {
        retryable: false,
        details: { url: this.#options.url },
      })
    );
  }

  /** Sends `events.subscribe` from the subscription's lastSeq and registers the server's id. */
  async #attach(subscription: Subscription, connection: Connection): Promise<void> {
    subscription.attaching = true;
    this.#subscribesInFlight++;
    try {
      const result = (await connection.request(
        'events.subscribe',
        { session_id: subscription.sessionId, from_seq: subscription.lastSeq },
        this.#options.timeoutMs,
        undefined,
      )) as ResultOf<'events.subscribe'>;
      const id = result.subscription_id;
      if (subscription.closed || connection !== this.#connection || connection.closed) {
        if (!connection.closed) void this.#unsubscribe(connection, id);
        if (subscription.closed) return;
        // The answer came on a connection that is gone: subscribe() tries the next one.
        throw unreachable(this.#options.url, new Error('the connection closed while subscribing'));
      }
      subscription.serverId = id;
      this.#byServerId.set(id, subscription);
      const early = this.#early.get(id) ?? [];
      this.#early.delete(id);
      for (const event of early) {
        if (subscription.serverId !== id) break; // a gap among them: reattached
        subscription.deliver(event);
      }
    } finally {
      subscription.attaching = false;
      if (--this.#subscribesInFlight === 0) this.#early.clear();
    }
  }

  /** Attaches an established subscription again; errors that retrying cannot fix end it. */
  #resume(subscription: Subscription, connection: Connection): void {
    if (subscription.attaching || subscription.closed) return;
    this.#attach(subscription, connection).catch((error: unknown) => {
      const e = isWardenError(error) ? error : unreachable(this.#options.url, error);
      if (e.code === 'DAEMON_UNREACHABLE') return; // the next reconnect resumes it
      if (e.retryable && !this.#closed) {
        setTimeout(() => {
          const current = this.#connection;
          if (current !== undefined && subscription.serverId === undefined) {
            this.#resume(subscription, current);
          }
        }, e.retryAfterMs ?? 1_000).unref();
        return;
      }
      subscription.fail(e);
    });
  }

  #detach(subscription: Subscription, unsubscribe: boolean): void {
    const id = subscription.serverId;
    if (id === undefined) return;
    subscription.serverId = undefined;
    this.#byServerId.delete(id);
    const connection = this.#connection;
    if (unsubscribe && connection !== undefined && !connection.closed) {
      void this.#unsubscribe(connection, id);
    }
  }

  async #unsubscribe(connection: Connection, id: string): Promise<void> {
    try {
      await connection.request(
        'events.unsubscribe',
        { subscription_id: id },
        this.#options.timeoutMs,
        undefined,
      );
    } catch {
      // The subscription is forgotten here either way; the daemon drops it with the socket.
    }
  }

  #onNotification(method: string, params: unknown): void {
    switch (method) {
      case 'events.event':
        this.#onEvent(params as { subscription_id: string; event: EventRecord });
        return;
      case 'system.backpressure':
        this.emit('backpressure', params as BackpressureNotice);
        return;
      case 'system.shutdown':
        this.emit('shutdown', params as ShutdownNotice);
        return;
    }
  }

  /**
   * Routes an event to its subscription. The daemon may send the first events of a
   * subscription before its answer to `events.subscribe` has been handled here (frames are
   * processed before the answer's promise callbacks run), so events for an unknown id are kept
   * while a subscribe is in flight and delivered when the id is registered.
   */
  #onEvent(params: { subscription_id: string; event: EventRecord }): void {
    const subscription = this.#byServerId.get(params.subscription_id);
    if (subscription !== undefined) {
      subscription.deliver(params.event);
      return;
    }
    if (this.#subscribesInFlight === 0) return; // of a subscription already dropped
    const list = this.#early.get(params.subscription_id);
    if (list === undefined) this.#early.set(params.subscription_id, [params.event]);
    else list.push(params.event);
  }

  #onClose(connection: Connection, code: number, reason: string): void {
    if (connection !== this.#connection) return;
    this.#connection = undefined;
    this.#byServerId.clear();
    this.#early.clear();
    for (const subscription of this.#subscriptions) subscription.serverId = undefined;
    this.emit('disconnect', { code, reason });
    if (this.#closed) return;
    if (this.#options.reconnect === false) {
      this.#shutdown(
        unreachable(this.#options.url, new Error(`the connection closed (code ${code})`)),
      );
      return;
    }
    for (const subscription of [...this.#subscriptions]) {
      if (!subscription.reconnect && subscription.established) {
        subscription.fail(
          unreachable(this.#options.url, new Error(`the connection closed (code ${code})`)),
        );
      }
    }
    this.#reconnect(1);
  }

  #reconnect(attempt: number): void {
    const policy = this.#options.reconnect;
    if (policy === false || this.#closed) return;
    if (attempt > policy.maxAttempts) {
      this.#shutdown(
        new WardenError(
          'DAEMON_UNREACHABLE',
          `gave up reconnecting to ${this.#options.url} after ${policy.maxAttempts} attempts`,
          { retryable: false, details: { url: this.#options.url } },
        ),
      );
      return;
    }
    // Equal jitter: half the exponential ceiling, plus a random share of the other half, so
    // many clients dropped at once (a daemon restart) do not come back in step.
    const ceiling = Math.min(
      policy.maxDelayMs,
      policy.initialDelayMs * 2 ** Math.min(attempt - 1, 30),
    );
    const delayMs = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      openConnection(this.#options, {
        onNotification: (method, params) => this.#onNotification(method, params),
        onClose: (c, code, reason) => this.#onClose(c, code, reason),
      }).then(
        ({ connection, hello }) => {
          if (this.#closed) {
            connection.close();
            return;
          }
          if (connection.closed) {
            this.#reconnect(attempt + 1); // dropped right after the handshake
            return;
          }
          this.#connection = connection;
          this.#hello = hello;
          for (const waiter of [...this.#waiters]) waiter.resolve(connection);
          this.emit('reconnect', hello);
          for (const subscription of this.#subscriptions) {
            if (subscription.established) this.#resume(subscription, connection);
          }
        },
        (error: unknown) => {
          if (isWardenError(error) && FATAL.has(error.code)) this.#shutdown(error);
          else this.#reconnect(attempt + 1);
        },
      );
    }, delayMs);
  }

  #shutdown(error: WardenError | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closedWith = error;
    clearTimeout(this.#retryTimer);
    const reason = this.#closedError();
    for (const waiter of [...this.#waiters]) waiter.reject(reason);
    for (const subscription of [...this.#subscriptions]) {
      // Ended here; the daemon drops its side with the socket.
      subscription.serverId = undefined;
      if (error === undefined) void subscription.close();
      else subscription.fail(error);
    }
    this.#subscriptions.clear();
    this.#byServerId.clear();
    const connection = this.#connection;
    if (connection !== undefined && !connection.closed) connection.close();
    this.emit('closed', error);
  }
}

interface ConnectionHandlers {
  readonly onNotification: (method: string, params: unknown) => void;
  readonly onClose: (connection: Connection, code: number, reason: string) => void;
}

/** Opens a socket and says hello; the socket is closed again if the hello fails. */
async function openConnection(
  options: ResolvedWardenClientOptions,
  handlers: ConnectionHandlers,
): Promise<{ connection: Connection; hello: HelloResult }> {
  let connection: Connection | undefined = undefined;
  connection = await Connection.open({
    url: options.url,
    token: options.token,
    origin: options.origin,
    maxFrameBytes: options.maxFrameBytes,
    connectTimeoutMs: options.timeoutMs,
    WebSocket: options.WebSocket,
    onNotification: handlers.onNotification,
    onClose: (code, reason) => {
      if (connection !== undefined) handlers.onClose(connection, code, reason);
    },
  });
  try {
    const hello = (await connection.request(
      'system.hello',
      { protocol: options.protocol, client: options.client },
      options.timeoutMs,
      undefined,
    )) as HelloResult;
    const serverMax = hello.limits?.max_frame_bytes;
    if (typeof serverMax === 'number') {
      connection.maxFrameBytes = Math.min(options.maxFrameBytes, serverMax);
    }
    return { connection, hello };
  } catch (error) {
    connection.close();
    throw error;
  }
}
