/**
 * The ACP endpoint: authenticates WebSocket upgrades on `/acp` (bearer token from the
 * `Authorization` header only, Origin allowlist) and runs one {@link AcpConnection} per socket.
 * A refused upgrade is answered with a plain HTTP status and a JSON error body, and never opens
 * a socket.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

import { WebSocketServer } from 'ws';

import { coerceError, ERROR_CATALOGUE, randomToken, WardenError } from '../../core/index.ts';
import type { Caller, CommandServices } from '../commands/index.ts';
import { type Authenticate, authenticateRequest } from './auth.ts';
import { AcpConnection, type ConnectionHooks, type ConnectionLimits } from './connection.ts';

export interface AcpServerOptions {
  readonly services: CommandServices;
  readonly authenticate: Authenticate;
  /** Origins browsers may connect from (exact `scheme://host[:port]`); read at each upgrade. */
  readonly allowedOrigins: () => readonly string[];
  readonly limits: ConnectionLimits;
  readonly maxConnections: number;
  readonly hooks: ConnectionHooks & {
    readonly onConnections?: (count: number) => void;
  };
}

/** Writes an HTTP error on a raw upgrade socket and closes it. */
export function refuseUpgrade(socket: Duplex, error: WardenError): void {
  const status = ERROR_CATALOGUE[error.code].http;
  const body = JSON.stringify({ error: error.toJSON() });
  const reason = status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export class AcpServer {
  readonly #options: AcpServerOptions;
  readonly #wss: WebSocketServer;
  readonly #connections = new Set<AcpConnection>();
  #accepting = true;

  constructor(options: AcpServerOptions) {
    this.#options = options;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.limits.maxFrameBytes,
      perMessageDeflate: false,
    });
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Handles an HTTP upgrade for `/acp` (the daemon routes by path). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    socket.on('error', () => socket.destroy());
    void this.#upgrade(req, socket, head, url).catch(() => socket.destroy());
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    if (!this.#accepting)
      return refuseUpgrade(
        socket,
        new WardenError('DAEMON_UNREACHABLE', 'the daemon is shutting down; reconnect later'),
      );
    const origin = req.headers.origin;
    if (origin !== undefined && !this.#options.allowedOrigins().includes(origin))
      return refuseUpgrade(
        socket,
        new WardenError(
          'FORBIDDEN',
          `origin ${origin.slice(0, 200)} is not allowed; add it to server.allowed_origins in config.yaml`,
        ),
      );
    let caller: Caller;
    try {
      caller = await authenticateRequest(
        req,
        url,
        this.#options.authenticate,
        `conn_${randomToken(8)}`,
      );
    } catch (error) {
      return refuseUpgrade(socket, coerceError(error));
    }
    if (this.#connections.size >= this.#options.maxConnections)
      return refuseUpgrade(
        socket,
        new WardenError('RATE_LIMITED', 'too many connections; try again later', {
          retryAfterMs: 1_000,
        }),
      );
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new AcpConnection(
        ws,
        caller,
        this.#options.services,
        this.#options.limits,
        this.#options.hooks,
      );
      this.#connections.add(connection);
      this.#options.hooks.onConnections?.(this.#connections.size);
      ws.on('close', () => {
        this.#connections.delete(connection);
        this.#options.hooks.onConnections?.(this.#connections.size);
      });
    });
  }

  /**
   * Stops accepting, sends `system.shutdown` to every client, waits up to `graceMs` for calls in
   * flight, then closes every connection with 1001.
   */
  async shutdown(reason: string, graceMs: number): Promise<void> {
    this.#accepting = false;
    for (const c of this.#connections) c.announceShutdown(reason, graceMs);
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.#connections].some((c) => c.inFlight > 0))
      await new Promise((resolve) => setTimeout(resolve, 20));
    for (const c of this.#connections) c.close(1001, 'server shutting down');
    this.#wss.close();
  }
}
