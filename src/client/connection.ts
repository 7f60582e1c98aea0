/**
 * One WebSocket connection to the daemon, speaking JSON-RPC 2.0: requests with ids and a map
 * of pending calls, each with its own timeout; notifications handed to the owner; every
 * pending call rejected with DAEMON_UNREACHABLE when the socket closes. It knows nothing of
 * the handshake, reconnects or subscriptions (client.ts does).
 *
 * The token goes in the `Authorization` header of the upgrade, never in the URL.
 */
import WebSocket from 'ws';

import { utf8Bytes, WardenError } from '../core/index.ts';
import {
  connectionLost,
  fromWireError,
  unreachable,
  upgradeRefused,
  type WireError,
} from './wire-errors.ts';

export interface ConnectionOptions {
  readonly url: string;
  readonly token: string;
  readonly origin: string | undefined;
  /** Largest frame this side sends; a bigger request fails with PAYLOAD_TOO_LARGE. */
  readonly maxFrameBytes: number;
  /** How long opening the socket may take. */
  readonly connectTimeoutMs: number;
  readonly WebSocket: typeof WebSocket;
  readonly onNotification: (method: string, params: unknown) => void;
  readonly onClose: (code: number, reason: string) => void;
}

interface Pending {
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: WardenError) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

export class Connection {
  readonly #ws: WebSocket;
  readonly #options: ConnectionOptions;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  #markDone!: () => void;
  /** Resolves when the socket has closed. */
  readonly done = new Promise<void>((resolve) => {
    this.#markDone = resolve;
  });
  /** Lowered by the server's `limits.max_frame_bytes` after the handshake. */
  maxFrameBytes: number;

  private constructor(ws: WebSocket, options: ConnectionOptions) {
    this.#ws = ws;
    this.#options = options;
    this.maxFrameBytes = options.maxFrameBytes;
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString('utf8')));
    // After open, errors are always followed by 'close', which does the work.
    ws.on('error', () => {});
  }

  /**
   * Opens the socket. Rejects with UNAUTHORIZED (401), FORBIDDEN (403) or DAEMON_UNREACHABLE
   * (refused, timed out, another HTTP status).
   */
  static open(options: ConnectionOptions): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const ws = new options.WebSocket(options.url, {
        headers: { authorization: `Bearer ${options.token}` },
        ...(options.origin === undefined ? {} : { origin: options.origin }),
        handshakeTimeout: options.connectTimeoutMs,
      });
      let failure: WardenError | undefined;
      const fail = (error: WardenError) => {
        failure ??= error;
      };
      ws.on('unexpected-response', (_req, res) => {
        fail(upgradeRefused(options.url, res.statusCode ?? 0));
        res.resume();
        ws.terminate();
      });
      ws.on('error', (error) => fail(unreachable(options.url, error)));
      const onEarlyClose = () => reject(failure ?? unreachable(options.url));
      ws.once('close', onEarlyClose);
      ws.once('open', () => {
        ws.off('close', onEarlyClose);
        ws.removeAllListeners('error');
        ws.removeAllListeners('unexpected-response');
        resolve(new Connection(ws, options));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends one request and resolves with its result. Rejects with the server's error rebuilt
   * as a WardenError, TIMEOUT after `timeoutMs`, CANCELED when `signal` aborts (the daemon
   * may still carry the call out), DAEMON_UNREACHABLE when the socket closes first.
   */
  request(
    method: string,
    params: unknown,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    if (this.#closed) return Promise.reject(connectionLost(this.#options.url, method, 1006));
    if (signal?.aborted) return Promise.reject(canceled(method, signal));
    const id = this.#nextId++;
    const frame = JSON.stringify({ jsonrpc: '2.0', id, method, params });
    const bytes = utf8Bytes(frame);
    if (bytes > this.maxFrameBytes) {
      return Promise.reject(
        new WardenError(
          'PAYLOAD_TOO_LARGE',
          `${method}: the request is ${bytes} bytes, more than the ${this.maxFrameBytes}-byte frame limit; send less per call`,
          { details: { method, bytes, limit: this.maxFrameBytes } },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#settle(id)?.reject(
          new WardenError(
            'TIMEOUT',
            `${method} got no answer from the daemon within ${timeoutMs} ms; it may still take effect`,
            { details: { method, timeout_ms: timeoutMs } },
          ),
        );
      }, timeoutMs);
      const onAbort =
        signal === undefined ? undefined : () => this.#settle(id)?.reject(canceled(method, signal));
      signal?.addEventListener('abort', onAbort!, { once: true });
      this.#pending.set(id, { method, resolve, reject, timer, signal, onAbort });
      this.#ws.send(frame, (error) => {
        if (error) this.#settle(id)?.reject(unreachable(this.#options.url, error));
      });
    });
  }

  /** Closes the socket (code 1000); pending calls reject with DAEMON_UNREACHABLE. */
  close(): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.close(1000, 'client closed');
    else this.#ws.terminate();
  }

  /** Drops the socket without a closing handshake (tests, and a server that stopped answering). */
  terminate(): void {
    this.#ws.terminate();
  }

  #settle(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    if (pending === undefined) return undefined;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if (pending.onAbort) pending.signal?.removeEventListener('abort', pending.onAbort);
    return pending;
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary) return;
    let message: {
      id?: unknown;
      method?: unknown;
      params?: unknown;
      result?: unknown;
      error?: WireError;
    };
    try {
      message = JSON.parse(rawText(data)) as typeof message;
    } catch {
      return; // not JSON: nothing to answer to, and nothing we could route
    }
    if (typeof message !== 'object' || message === null) return;
    if (typeof message.method === 'string' && message.id === undefined) {
      this.#options.onNotification(message.method, message.params);
      return;
    }
    if (typeof message.id !== 'number') return;
    const pending = this.#settle(message.id);
    if (pending === undefined) return; // timed out or canceled before the answer came
    if (message.error !== undefined) pending.reject(fromWireError(message.error, pending.method));
    else pending.resolve(message.result);
  }

  #onClose(code: number, reason: string): void {
    this.#closed = true;
    for (const id of [...this.#pending.keys()]) {
      const pending = this.#settle(id)!;
      pending.reject(connectionLost(this.#options.url, pending.method, code));
    }
    this.#markDone();
    this.#options.onClose(code, reason);
  }
}

function canceled(method: string, signal: AbortSignal): WardenError {
  return new WardenError(
    'CANCELED',
    `${method} was canceled by its signal; the daemon may still carry it out`,
    { details: { method }, cause: signal.reason },
  );
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
