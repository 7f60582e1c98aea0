/**
 * The OpenClaw Gateway v4 listener (`server.openclaw.listen`, reference §1.1): its own HTTP
 * server whose WebSocket upgrades each become an {@link OpenClawConnection}. It owns what
 * connections share: the method table, `tick` broadcasts, the health snapshot and its
 * `stateVersion`, and the shutdown notice (§2.9: `shutdown`, then close 1012).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

import { WebSocketServer } from 'ws';

import type { CommandServices } from '../commands/index.ts';
import type { OpenClawAuthenticator } from './auth.ts';
import {
  type GatewayHost,
  type MethodHandler,
  OpenClawConnection,
  type SendOptions,
} from './connection.ts';
import { LIMITS } from './frames.ts';
import type { OperatorScope } from './scopes.ts';

export interface OpenClawServerOptions {
  readonly services: () => CommandServices;
  readonly auth: OpenClawAuthenticator;
  readonly methods: ReadonlyMap<string, MethodHandler>;
  /** Event names advertised in `hello-ok.features.events`. */
  readonly events: readonly string[];
  readonly version: string;
  readonly tickIntervalMs: number;
  readonly handshakeTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxInFlight: number;
  /** Browser origins allowed to connect (exact `scheme://host[:port]`). */
  readonly allowedOrigins: () => readonly string[];
  /** The health snapshot (§4.1); cached by the server. */
  readonly health: () => Promise<Record<string, unknown>>;
  readonly log: (
    level: 'debug' | 'info' | 'warn',
    message: string,
    fields: Record<string, unknown>,
  ) => void;
}

/** §4.1: health is served from a snapshot at most this old, refreshed on demand. */
const HEALTH_MAX_AGE_MS = 5_000;

export interface BroadcastOptions extends SendOptions {
  /** Only connections holding this scope see the event (§5.1 gating). */
  readonly scope?: OperatorScope;
  /** Only connections for which this returns true. */
  readonly filter?: (connection: OpenClawConnection) => boolean;
}

export class OpenClawServer {
  readonly #options: OpenClawServerOptions;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #connections = new Set<OpenClawConnection>();
  readonly #host: GatewayHost;
  readonly #startedAt = Date.now();
  #tick: NodeJS.Timeout | null = null;
  #accepting = true;
  #health: { at: number; value: Record<string, unknown> } | null = null;
  #healthRefresh: Promise<Record<string, unknown>> | null = null;
  #stateVersion = { presence: 0, health: 0 };
  readonly #onClose: Array<() => void> = [];
  readonly #onDisconnect: Array<(connection: OpenClawConnection) => void> = [];

  constructor(options: OpenClawServerOptions) {
    this.#options = options;
    // The 25 MiB post-connect limit; the 64 KiB pre-connect limit is the connection's check.
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: LIMITS.maxPayloadBytes,
      perMessageDeflate: false,
    });
    this.#http = createServer((req, res) => {
      res.writeHead(426, { 'content-type': 'application/json', connection: 'close' });
      res.end(
        JSON.stringify({
          error: {
            code: 'INVALID_REQUEST',
            message: 'this is the OpenClaw Gateway protocol v4 endpoint: connect with a WebSocket',
          },
        }),
      );
    });
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
    this.#http.on('clientError', (_error, socket) => socket.destroy());
    this.#host = {
      services: options.services,
      auth: options.auth,
      methods: options.methods,
      events: options.events,
      version: options.version,
      bootId: randomUUID(),
      startedAt: this.#startedAt,
      tickIntervalMs: options.tickIntervalMs,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      maxInFlight: options.maxInFlight,
      health: () => this.health(),
      stateVersion: () => ({ ...this.#stateVersion }),
      connected: (c) => this.#connections.add(c),
      closed: (c) => {
        this.#connections.delete(c);
        for (const hook of this.#onDisconnect) hook(c);
      },
      log: options.log,
    };
  }

  get port(): number {
    return (this.#http.address() as AddressInfo).port;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Open connections that hold `scope`. */
  connectionsWith(scope: OperatorScope): number {
    let n = 0;
    for (const connection of this.#connections) if (connection.allows(scope)) n++;
    return n;
  }

  get connections(): ReadonlySet<OpenClawConnection> {
    return this.#connections;
  }

  /** Runs when the server closes. */
  onClose(hook: () => void): void {
    this.#onClose.push(hook);
  }

  /** Runs when a connected client goes away. */
  onDisconnect(hook: (connection: OpenClawConnection) => void): void {
    this.#onDisconnect.push(hook);
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen({ host, port }, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    this.#tick = setInterval(
      () => this.broadcast('tick', { ts: Date.now() }),
      this.#options.tickIntervalMs,
    );
    this.#tick.unref();
  }

  /** The health snapshot, refreshed when older than a few seconds; `health` is broadcast then. */
  async health(): Promise<Record<string, unknown>> {
    const cached = this.#health;
    if (cached && Date.now() - cached.at < HEALTH_MAX_AGE_MS) return cached.value;
    this.#healthRefresh ??= (async () => {
      const started = Date.now();
      try {
        const value = { ...(await this.#options.health()), durationMs: Date.now() - started };
        this.#health = { at: Date.now(), value };
        this.#stateVersion = { ...this.#stateVersion, health: this.#stateVersion.health + 1 };
        this.broadcast('health', value, { dropIfSlow: true });
        return value;
      } finally {
        this.#healthRefresh = null;
      }
    })();
    return this.#healthRefresh;
  }

  /** Sends an event to every connected client allowed to see it, each with its own `seq`. */
  broadcast(event: string, payload: unknown, options: BroadcastOptions = {}): void {
    for (const connection of this.#connections) {
      if (options.scope && !connection.allows(options.scope)) continue;
      if (options.filter && !options.filter(connection)) continue;
      connection.event(event, payload, options);
    }
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const refuse = (status: number, text: string, message: string) => {
      const body = JSON.stringify({ error: { code: 'INVALID_REQUEST', message } });
      socket.end(
        `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    };
    if (!this.#accepting) return refuse(503, 'Service Unavailable', 'the gateway is stopping');
    const origin = req.headers.origin;
    if (origin !== undefined && !this.#options.allowedOrigins().includes(origin))
      return refuse(
        403,
        'Forbidden',
        `origin ${origin.slice(0, 200)} is not allowed; add it to server.allowed_origins`,
      );
    if (this.#wss.clients.size >= this.#options.maxConnections)
      return refuse(503, 'Service Unavailable', 'too many connections; try again later');
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      new OpenClawConnection(ws, this.#host, req.socket.remoteAddress ?? 'unknown');
    });
  }

  /**
   * §2.9: stop accepting, send `shutdown` to every client (omitting `restartExpectedMs` when
   * no restart is expected), then close every socket 1012 "service restart".
   */
  async close(reason = 'gateway stopping', restartExpectedMs?: number): Promise<void> {
    if (!this.#accepting) return;
    this.#accepting = false;
    if (this.#tick) clearInterval(this.#tick);
    for (const hook of this.#onClose) hook();
    this.broadcast('shutdown', {
      reason: reason === '' ? 'gateway stopping' : reason,
      ...(restartExpectedMs === undefined ? {} : { restartExpectedMs }),
    });
    for (const ws of this.#wss.clients) {
      try {
        ws.close(1012, 'service restart');
      } catch {
        ws.terminate();
      }
    }
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#wss.close();
    const deadline = Date.now() + 1_000;
    while (this.#wss.clients.size > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    for (const ws of this.#wss.clients) ws.terminate();
  }
}
