/**
 * One OpenClaw socket (reference §1–§2, §5.3): `connect.challenge` at once, then exactly one
 * `connect` (closed on any failure with the documented code), then `req`/`cancel` frames until
 * it closes. Each request is checked for its scope (FORBIDDEN/MISSING_SCOPE), then decided by
 * the policy decision point as the ACP command doing the same work, then run. Broadcast events
 * carry this connection's own `seq`; a socket whose send buffer passes the limit skips
 * drop-if-slow events (its `seq` still advances, so the client sees the gap) and is closed
 * 1008 "slow consumer" for any other event — nothing is dropped silently.
 */
import { randomUUID } from 'node:crypto';

import type WebSocket from 'ws';

import type { Caller, CommandServices } from '../commands/index.ts';
import { authorize } from '../commands/index.ts';
import type { OpenClawAuthenticator } from './auth.ts';
import {
  closeReason,
  errorFrame,
  eventFrame,
  gatewayError,
  GatewayFailure,
  type Incoming,
  invalidRequest,
  LIMITS,
  paramsObject,
  parseFrame,
  resFrame,
  toErrorShape,
} from './frames.ts';
import { type ConnectParams, helloOk, negotiateProtocol, parseConnectParams } from './handshake.ts';
import {
  grantScopes,
  METHOD_ACCESS,
  missingScope,
  type OperatorScope,
  requiredScope,
  scopeSatisfied,
} from './scopes.ts';

/** Who is on the other end, once `connect` succeeded. */
export interface ConnectionInfo {
  readonly connId: string;
  readonly caller: Caller;
  readonly scopes: readonly OperatorScope[];
  readonly caps: ReadonlySet<string>;
  readonly client: ConnectParams['client'];
  readonly address: string;
  readonly connectedAt: number;
}

export interface MethodCall {
  readonly method: string;
  readonly params: Record<string, unknown>;
  readonly connection: ConnectionInfo;
  readonly services: CommandServices;
  /** Aborted when the client cancels the request or the socket closes. */
  readonly signal: AbortSignal;
  /** Two-phase methods (§4.18): sends the `accepted` ack now; the handler's result is the final. */
  ack(payload: unknown): void;
}

export type MethodHandler = (call: MethodCall) => Promise<unknown>;

/** What every connection shares: the server's state and method table. */
export interface GatewayHost {
  readonly services: () => CommandServices;
  readonly auth: OpenClawAuthenticator;
  readonly methods: ReadonlyMap<string, MethodHandler>;
  readonly events: readonly string[];
  readonly version: string;
  readonly bootId: string;
  readonly startedAt: number;
  readonly tickIntervalMs: number;
  readonly handshakeTimeoutMs: number;
  readonly maxInFlight: number;
  health(): Promise<unknown>;
  stateVersion(): { presence: number; health: number };
  connected(connection: OpenClawConnection): void;
  closed(connection: OpenClawConnection): void;
  log(level: 'debug' | 'info' | 'warn', message: string, fields: Record<string, unknown>): void;
}

export interface SendOptions {
  /** Skipped (not queued) when the socket is slow; the client sees a `seq` gap (§5.3). */
  readonly dropIfSlow?: boolean;
}

export class OpenClawConnection {
  readonly connId = randomUUID();
  readonly #ws: WebSocket;
  readonly #host: GatewayHost;
  readonly #address: string;
  readonly #nonce = randomUUID();
  #info: ConnectionInfo | null = null;
  #handshaking = false;
  #seq = 0;
  #closed = false;
  readonly #pending = new Map<string, AbortController>();
  readonly #handshakeTimer: NodeJS.Timeout;

  constructor(ws: WebSocket, host: GatewayHost, address: string) {
    this.#ws = ws;
    this.#host = host;
    this.#address = address;
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on('close', () => this.#onClose());
    ws.on('error', () => undefined);
    // §2.1: the challenge goes out at once, without `seq`.
    this.#raw(eventFrame('connect.challenge', { nonce: this.#nonce, ts: Date.now() }));
    this.#handshakeTimer = setTimeout(() => this.close(1000, ''), host.handshakeTimeoutMs);
    this.#handshakeTimer.unref();
  }

  get info(): ConnectionInfo | null {
    return this.#info;
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  /** Whether this connection may see events that need `scope`. */
  allows(scope: OperatorScope): boolean {
    return this.#info !== null && scopeSatisfied(this.#info.scopes, scope);
  }

  /**
   * Sends a broadcast event with this connection's next `seq`. Returns false when it was
   * skipped or the socket is gone.
   */
  event(name: string, payload: unknown, options: SendOptions = {}): boolean {
    if (this.#info === null || this.#closed) return false;
    const seq = ++this.#seq;
    // §5.1: state events (health, presence) carry the state versions they reflect.
    const state = name === 'health' || name === 'presence' ? this.#host.stateVersion() : undefined;
    return this.#send(eventFrame(name, payload, seq, state), options);
  }

  /** Sends a targeted event (to this connection only): no `seq` (§5.3). */
  targeted(name: string, payload: unknown, options: SendOptions = {}): boolean {
    if (this.#info === null || this.#closed) return false;
    return this.#send(eventFrame(name, payload), options);
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#handshakeTimer);
    try {
      this.#ws.close(code, code === 1000 && reason === '' ? undefined : closeReason(reason));
    } catch {
      this.#ws.terminate();
    }
  }

  #send(text: string, options: SendOptions): boolean {
    if (this.#ws.bufferedAmount > LIMITS.maxBufferedBytes) {
      if (options.dropIfSlow) return false;
      this.#host.log('warn', 'openclaw slow consumer closed', {
        conn: this.connId,
        buffered: this.#ws.bufferedAmount,
      });
      this.close(1008, 'slow consumer');
      return false;
    }
    return this.#raw(text);
  }

  #raw(text: string): boolean {
    if (this.#closed || this.#ws.readyState !== this.#ws.OPEN) return false;
    this.#ws.send(text);
    return true;
  }

  #onClose(): void {
    this.#closed = true;
    clearTimeout(this.#handshakeTimer);
    for (const controller of this.#pending.values()) controller.abort();
    this.#pending.clear();
    if (this.#info) this.#host.closed(this);
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    if (this.#info === null) {
      if (this.#handshaking) return; // frames before hello-ok are ignored, not queued
      if (data.length > LIMITS.preauthPayloadBytes)
        return this.close(1009, 'frame too large before connect');
      const frame = isBinary
        ? ({ kind: 'invalid', id: 'invalid', message: 'binary frame' } as const)
        : parseFrame(data.toString('utf8'));
      void this.#handshake(frame);
      return;
    }
    if (isBinary) {
      this.#raw(
        errorFrame(
          'invalid',
          toErrorShape(
            invalidRequest('invalid request frame: binary frames are not accepted; send JSON text'),
          ),
        ),
      );
      return;
    }
    const frame = parseFrame(data.toString('utf8'));
    switch (frame.kind) {
      case 'invalid':
        this.#raw(errorFrame(frame.id, gatewayError('INVALID_REQUEST', frame.message)));
        return;
      case 'cancel':
        // §1.3: abort the handler; never answer the cancel itself.
        this.#pending.get(frame.id)?.abort();
        return;
      case 'req':
        void this.#request(frame.id, frame.method, frame.params);
    }
  }

  async #handshake(frame: Incoming): Promise<void> {
    if (frame.kind !== 'req') return this.close(1008, 'invalid request frame');
    const fail = (failure: GatewayFailure, code: number, reason: string) => {
      this.#raw(errorFrame(frame.id, failure.shape));
      this.close(code, reason);
    };
    if (frame.method !== 'connect')
      return fail(
        invalidRequest('invalid handshake: first request must be connect'),
        1008,
        'invalid handshake',
      );
    this.#handshaking = true;
    try {
      const params = parseConnectParams(frame.params);
      try {
        negotiateProtocol(params);
      } catch (error) {
        return fail(error as GatewayFailure, 1002, 'protocol mismatch');
      }
      const role = params.role ?? 'operator';
      if (role !== 'operator')
        return fail(
          invalidRequest(
            role === 'node'
              ? 'invalid role: Warden serves operator clients only (node hosts are not supported)'
              : 'invalid role',
          ),
          1008,
          'invalid role',
        );
      let caller: Caller;
      try {
        caller = await this.#host.auth.authenticate(params.auth, this.#address, Date.now());
      } catch (error) {
        const failure = error instanceof GatewayFailure ? error : invalidRequest('unauthorized');
        return fail(failure, 1008, failure.shape.message);
      }
      const scopes = grantScopes(params.scopes, caller.scopes);
      // The credential must be allowed to hold a connection at all (operators may forbid it).
      try {
        await authorize('system.status', caller, this.#host.services().security);
      } catch (error) {
        const shape = toErrorShape(error);
        return fail(new GatewayFailure(shape), 1008, 'unauthorized');
      }
      if (this.#closed) return;
      clearTimeout(this.#handshakeTimer);
      const info: ConnectionInfo = {
        connId: this.connId,
        caller,
        scopes,
        caps: new Set(params.caps ?? []),
        client: params.client,
        address: this.#address,
        connectedAt: Date.now(),
      };
      const health = await this.#host.health();
      if (this.#closed) return;
      this.#raw(
        resFrame(
          frame.id,
          helloOk({
            version: this.#host.version,
            connId: this.connId,
            bootId: this.#host.bootId,
            methods: [...this.#host.methods.keys()],
            events: this.#host.events,
            scopes,
            health,
            stateVersion: this.#host.stateVersion(),
            uptimeMs: Date.now() - this.#host.startedAt,
            tickIntervalMs: this.#host.tickIntervalMs,
            authMode: this.#host.auth.mode,
          }),
        ),
      );
      this.#info = info;
      this.#host.connected(this);
      this.#host.log('info', 'openclaw client connected', {
        conn: this.connId,
        client: params.client.id,
        mode: params.client.mode,
        caller: caller.name,
        scopes,
      });
    } catch (error) {
      const failure =
        error instanceof GatewayFailure ? error : new GatewayFailure(toErrorShape(error));
      fail(failure, 1008, failure.shape.message);
    } finally {
      this.#handshaking = false;
    }
  }

  async #request(id: string, method: string, rawParams: unknown): Promise<void> {
    const info = this.#info!;
    if (method === 'connect') {
      this.#raw(
        errorFrame(
          id,
          gatewayError('INVALID_REQUEST', 'connect is only valid as the first request'),
        ),
      );
      return;
    }
    if (this.#pending.has(id)) {
      this.#raw(
        errorFrame(
          id,
          gatewayError('INVALID_REQUEST', `request id ${id.slice(0, 64)} is already in flight`),
        ),
      );
      return;
    }
    if (this.#pending.size >= this.#host.maxInFlight) {
      this.#raw(
        errorFrame(
          id,
          gatewayError('UNAVAILABLE', 'too many requests in flight on this connection', undefined, {
            retryable: true,
            retryAfterMs: 100,
          }),
        ),
      );
      return;
    }
    const controller = new AbortController();
    this.#pending.set(id, controller);
    let acked = false;
    try {
      const params = paramsObject(rawParams);
      const needed = requiredScope(method, params ?? {});
      if (!scopeSatisfied(info.scopes, needed)) throw missingScope(needed);
      const handler = this.#host.methods.get(method);
      const access = Object.hasOwn(METHOD_ACCESS, method) ? METHOD_ACCESS[method] : undefined;
      if (!handler || !access) throw invalidRequest(`unknown method: ${method}`);
      if (params === null) throw invalidRequest(`invalid ${method} params: expected an object`);
      const services = this.#host.services();
      await authorize(access.command, info.caller, services.security, params);
      const result = await handler({
        method,
        params,
        connection: info,
        services,
        signal: controller.signal,
        ack: (payload) => {
          if (acked) return;
          acked = true;
          this.#raw(resFrame(id, payload));
        },
      });
      if (!this.#closed) this.#raw(resFrame(id, result));
    } catch (error) {
      if (!isExpected(error))
        this.#host.log('warn', 'openclaw method failed', {
          conn: this.connId,
          method,
          err: error instanceof Error ? error.message : String(error),
        });
      const payload = error instanceof GatewayFailure ? error.payload : undefined;
      if (!this.#closed) this.#raw(errorFrame(id, toErrorShape(error), payload));
    } finally {
      this.#pending.delete(id);
    }
  }
}

function isExpected(error: unknown): boolean {
  if (error instanceof GatewayFailure) return true;
  const shape = toErrorShape(error);
  return shape.code !== 'UNAVAILABLE';
}
