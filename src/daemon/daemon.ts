/**
 * `warden serve` as an object: one process that opens the store, recovers, binds its listeners
 * and starts its workers, in that order (DESIGN.md §13), and stops in the reverse order. Each
 * start phase is logged; a failing phase stops the start with a {@link DaemonStartError} naming
 * it, after undoing what had started.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import type { Logger } from 'pino';

import { coerceError, WardenError } from '../core/index.ts';
import { Kernel } from '../kernel/index.ts';
import { AcpServer, authenticateRequest, createAuthenticator } from '../protocols/acp/index.ts';
import {
  ChannelRegistry,
  WebhookChannel,
  webhookOptionsFromConfig,
} from '../protocols/channels/index.ts';
import {
  authorize,
  type Caller,
  COMMAND_SCOPES_TABLE,
  type CommandServices,
} from '../protocols/commands/index.ts';
import {
  createMetrics,
  createSseHandler,
  redactUrl,
  sendHttpError,
  type SseHandler,
} from '../protocols/http/index.ts';
import { anonymousCaller, JeevesGrpcServer, jeevesImpl } from '../protocols/jeeves/index.ts';
import { type OpenClawServer, startOpenClawGateway } from '../protocols/openclaw/index.ts';
import { JobQueue, RemoteWork, RetentionSweeper } from '../queue/index.ts';
import { ModelRegistry, Worker } from '../runtime/index.ts';
import { Security, securityOptionsOf, TokenService } from '../security/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { InterruptExpiry } from './interrupt-expiry.ts';
import { nodeClock } from './node-clock.ts';
import { type SecurityWatchers, startSecurityWatchers } from './security-watchers.ts';
import type { DaemonSettings } from './settings.ts';

export type DaemonPhase = 'config' | 'store' | 'recovery' | 'policy' | 'listeners' | 'workers';

export class DaemonStartError extends Error {
  readonly phase: DaemonPhase;
  readonly error: WardenError;
  constructor(phase: DaemonPhase, error: WardenError) {
    super(`${phase}: ${error.message}`);
    this.phase = phase;
    this.error = error;
  }
}

/** The current services: a reload swaps them and every connection sees the new ones. */
interface ServicesHolder {
  daemon: Daemon | null;
  services: CommandServices;
}

export interface DaemonOptions {
  readonly settings: DaemonSettings;
  readonly logger: Logger;
  readonly version: string;
  /** The admin token (WARDEN_HOME/auth.token). */
  readonly adminToken: () => string;
}

export class Daemon {
  readonly store: Store;
  readonly kernel: Kernel;
  readonly url: string;
  readonly port: number;
  readonly #http: Server;
  readonly #acp: AcpServer;
  readonly #grpc: JeevesGrpcServer | null;
  /** The gRPC listener's port (null: `server.grpc.listen` is not set). */
  readonly grpcPort: number | null;
  readonly #openclaw: OpenClawServer | null;
  /** The OpenClaw gateway's port (null: `server.openclaw.listen` is not set). */
  readonly openclawPort: number | null;
  readonly #worker: Worker;
  readonly #sweeper: RetentionSweeper | null;
  readonly #expiry: InterruptExpiry;
  readonly #sse: SseHandler;
  readonly #logger: Logger;
  readonly #metrics: ReturnType<typeof createMetrics>;
  #settings: DaemonSettings;
  readonly #holder: ServicesHolder;
  /** The policy decision point, audit, grants, secrets and the tool path. */
  readonly security: Security;
  readonly #guards: SecurityWatchers;
  #stopping: Promise<void> | null = null;

  private constructor(parts: {
    store: Store;
    kernel: Kernel;
    http: Server;
    acp: AcpServer;
    grpc: JeevesGrpcServer | null;
    openclaw: OpenClawServer | null;
    worker: Worker;
    sweeper: RetentionSweeper | null;
    expiry: InterruptExpiry;
    sse: SseHandler;
    logger: Logger;
    metrics: ReturnType<typeof createMetrics>;
    settings: DaemonSettings;
    holder: ServicesHolder;
    security: Security;
    guards: SecurityWatchers;
  }) {
    this.store = parts.store;
    this.security = parts.security;
    this.#guards = parts.guards;
    this.kernel = parts.kernel;
    this.#http = parts.http;
    this.#acp = parts.acp;
    this.#grpc = parts.grpc;
    this.grpcPort = parts.grpc?.port ?? null;
    this.#openclaw = parts.openclaw;
    this.openclawPort = parts.openclaw?.port ?? null;
    this.#worker = parts.worker;
    this.#sweeper = parts.sweeper;
    this.#expiry = parts.expiry;
    this.#sse = parts.sse;
    this.#logger = parts.logger;
    this.#metrics = parts.metrics;
    this.#settings = parts.settings;
    this.#holder = parts.holder;
    const address = parts.http.address() as AddressInfo;
    this.port = address.port;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `http://${host}:${address.port}`;
  }

  get services(): CommandServices {
    return this.#holder.services;
  }

  get stopping(): boolean {
    return this.#stopping !== null;
  }

  get settings(): DaemonSettings {
    return this.#settings;
  }

  /** Starts every part in order; a failure undoes what started and names its phase. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const { settings, logger } = options;
    const undo: Array<() => Promise<void> | void> = [];
    const phase = async <T>(name: DaemonPhase, fn: () => Promise<T> | T): Promise<T> => {
      const started = performance.now();
      try {
        const value = await fn();
        logger.info({ phase: name, ms: Math.round(performance.now() - started) }, `${name} ready`);
        return value;
      } catch (error) {
        for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => undefined);
        throw new DaemonStartError(name, coerceError(error));
      }
    };
    logger.info({ phase: 'config', home: settings.home }, 'config loaded');
    const store = await phase('store', async () => {
      const s = await openStore(settings.store, nodeClock());
      undo.push(() => s.close());
      return s;
    });
    const kernel = new Kernel({ store, agentLane: settings.agentLane });
    undo.push(() => kernel.close());
    const queue = newQueue(kernel, settings);
    await phase('recovery', async () => {
      await queue.ready();
      const recovered = await kernel.recover();
      logger.info({ phase: 'recovery', ...recovered }, 'recovery scan completed');
    });
    // Policy before listeners: no method is answered and no tool runs without the PDP.
    const security = await phase('policy', async () => {
      const opened = await Security.open({
        ...securityOptionsOf(settings, { kernel, home: settings.home, queue }),
        methodScopes: COMMAND_SCOPES_TABLE,
      });
      undo.push(() => opened.close());
      logger.info(
        { phase: 'policy', version: opened.policy.version, files: opened.policy.files },
        opened.policy.files.length ? 'policy active' : 'no policy files: every tool call is denied',
      );
      return opened;
    });
    const guards = startSecurityWatchers({ kernel, security, settings, logger });
    undo.push(() => guards.stop());
    await guards.ready;
    const services: CommandServices = {
      kernel,
      queue,
      remote: new RemoteWork({ queue }),
      security,
    };
    const holder: ServicesHolder = { daemon: null, services };
    const metrics = createMetrics({ kernel, store, queue });
    undo.push(() => metrics.close());
    const tokens = new TokenService({ store, clock: kernel.clock, sessions: kernel.sessions });
    const authenticate = createAuthenticator({
      store,
      adminToken: options.adminToken,
      tokens,
      onError: (error) =>
        logger.warn({ err: coerceError(error).message }, 'could not record a token use'),
    });
    const acp = new AcpServer({
      services: new Proxy(services, {
        // Reloads swap the services (new lanes); connections always see the current ones.
        get: (_t, key) => holder.services[key as keyof CommandServices],
      }),
      authenticate,
      allowedOrigins: () =>
        holder.daemon?.settings.server.allowed_origins ?? settings.server.allowed_origins,
      limits: connectionLimits(settings),
      maxConnections: settings.server.max_connections,
      hooks: {
        serverVersion: options.version,
        onBackpressure: () => metrics.recordBackpressureClose(),
        onSubscriptions: (delta) => metrics.recordSubscriptions(delta),
        onConnections: (count) => metrics.acp.connections.set(count),
        onDelivered: (event) => metrics.observeFanoutLag((Date.now() - event.ts) / 1000),
        log: (level, msg, fields) => logger[level](fields, msg),
      },
    });
    const sse = createSseHandler({
      store,
      pageSize: settings.server.replay_page_size,
      highWaterBytes: settings.server.outbound_high_water_bytes,
      observeLag: (seconds) => metrics.observeFanoutLag(seconds),
    });
    const channels = await phase('listeners', () => openChannels(settings, security));
    let ready = false;
    const http = createServer((req, res) => {
      void route(req, res).catch((error: unknown) => {
        logger.error({ err: coerceError(error).message, path: safePath(req) }, 'request failed');
        if (!res.headersSent)
          sendHttpError(res, new WardenError('INTERNAL', 'internal error; nothing was changed'));
        else res.destroy();
      });
    });
    const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      // Channel webhooks authenticate by their own HMAC signature, not a bearer token.
      const webhook = /^\/channels\/webhook\/([A-Za-z0-9_-]{1,64})$/.exec(url.pathname);
      if (webhook) {
        const driver = channels?.find('webhook', webhook[1]!);
        if (driver?.handle) return driver.handle(req, res);
        return sendHttpError(
          res,
          new WardenError('NOT_FOUND', `no webhook channel ${webhook[1]!}; see docs/channels.md`),
        );
      }
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return sendJson(res, 405, {
          error: { code: 'INVALID_PARAMS', message: 'only GET is served here' },
        });
      switch (url.pathname) {
        case '/healthz':
          return sendJson(res, 200, { status: 'ok' });
        case '/readyz': {
          const health = await store
            .health()
            .catch(() => ({ ok: false, detail: 'store unreachable' }));
          const ok = ready && health.ok && !holder.daemon?.stopping;
          return sendJson(res, ok ? 200 : 503, {
            status: ok ? 'ready' : 'not_ready',
            checks: {
              store: health.ok ? 'ok' : health.detail,
              policy: security.policy.version.slice(0, 16),
              listeners: 'ok',
              workers: ready ? 'ok' : 'starting',
            },
          });
        }
        case '/metrics':
          return metrics.handler(req, res);
        case '/events': {
          let caller: Caller;
          try {
            caller = await authenticateRequest(req, url, authenticate, 'http');
          } catch (error) {
            return sendHttpError(res, error);
          }
          try {
            await authorize('events.subscribe', caller, security);
          } catch (error) {
            return sendHttpError(res, error);
          }
          return sse(req, res, url);
        }
        default:
          return sendHttpError(
            res,
            new WardenError('NOT_FOUND', `no endpoint ${url.pathname}; see docs/protocol/http.md`),
          );
      }
    };
    http.on('upgrade', (req, socket, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== '/acp') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      logger.debug({ path: redactUrl(req.url ?? '/') }, 'acp upgrade');
      acp.handleUpgrade(req, socket, head, url);
    });
    http.on('clientError', (_error, socket) => socket.destroy());
    await phase('listeners', async () => {
      const { host, port } = splitListen(settings.server.listen);
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen({ host, port }, () => {
          http.off('error', reject);
          resolve();
        });
      });
      undo.push(() => new Promise<void>((resolve) => http.close(() => resolve())));
      logger.info({ phase: 'listeners', listen: settings.server.listen }, 'listening');
    });
    const grpcSettings = settings.server.grpc;
    const grpc = grpcSettings.listen
      ? await phase('listeners', async () => {
          const server = new JeevesGrpcServer({
            services: () => holder.services,
            authenticate,
            anonymous: grpcSettings.anonymous ? anonymousCaller(grpcSettings.anonymous) : null,
            impl: jeevesImpl(),
            maxMessageBytes: grpcSettings.max_message_bytes,
            log: (level, msg, fields) => logger[level](fields, msg),
          });
          await server.listen(grpcSettings.listen!);
          undo.push(() => server.close(0));
          logger.info(
            { phase: 'listeners', grpc: grpcSettings.listen, port: server.port },
            'gRPC listening',
          );
          return server;
        })
      : null;
    const openclawSettings = settings.server.openclaw;
    const openclaw = openclawSettings.listen
      ? await phase('listeners', async () => {
          const server = await startOpenClawGateway({
            settings: { ...openclawSettings, listen: openclawSettings.listen! },
            services: () => holder.services,
            authenticate,
            version: options.version,
            configPath: join(settings.home, 'config.yaml'),
            home: settings.home,
            allowedOrigins: () =>
              holder.daemon?.settings.server.allowed_origins ?? settings.server.allowed_origins,
            models: () => [settings.model],
            channels,
            log: (level, msg, fields) => logger[level](fields, msg),
          });
          undo.push(() => server.close('gateway stopping'));
          logger.info(
            { phase: 'listeners', openclaw: openclawSettings.listen, port: server.port },
            'OpenClaw gateway listening',
          );
          return server;
        })
      : null;
    const worker = new Worker({
      kernel,
      models: new ModelRegistry(settings.model),
      concurrency: settings.worker.concurrency,
      leaseMs: settings.worker.lease,
      ...(settings.worker.heartbeat ? { heartbeatMs: settings.worker.heartbeat } : {}),
      tools: security.tools,
      onError: (error, context) =>
        logger.warn({ ...context, code: error.code, err: error.message }, 'worker error'),
    });
    const expiry = new InterruptExpiry(kernel, (error) =>
      logger.warn({ code: error.code, err: error.message }, 'interrupt expiry failed'),
    );
    const sweeper = settings.retention
      ? new RetentionSweeper({
          store,
          clock: kernel.clock,
          ...settings.retention,
          onError: (error) =>
            logger.warn({ code: error.code, err: error.message }, 'retention sweep failed'),
        })
      : null;
    await phase('workers', async () => {
      await worker.start();
      undo.push(() => worker.stop());
      expiry.start();
      sweeper?.start();
    });
    const daemon = new Daemon({
      store,
      kernel,
      http,
      acp,
      grpc,
      openclaw,
      worker,
      sweeper,
      expiry,
      sse,
      logger,
      metrics,
      settings,
      holder,
      security,
      guards,
    });
    holder.daemon = daemon;
    ready = true;
    logger.info({ url: daemon.url, pid: process.pid }, 'ready');
    return daemon;
  }

  /**
   * Applies a new configuration where it can change live (origins, log level, lane limits,
   * retention is kept); keys that need a restart (listen, database, durability) are reported.
   */
  async reload(next: DaemonSettings): Promise<{ applied: string[]; needsRestart: string[] }> {
    const before = this.#settings;
    const needsRestart = (['databasePath', 'store', 'durability', 'agentLane', 'model'] as const)
      .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(next[k]))
      .map(String);
    if (before.server.listen !== next.server.listen) needsRestart.push('server.listen');
    if (JSON.stringify(before.server.grpc) !== JSON.stringify(next.server.grpc))
      needsRestart.push('server.grpc');
    if (JSON.stringify(before.server.openclaw) !== JSON.stringify(next.server.openclaw))
      needsRestart.push('server.openclaw');
    if (JSON.stringify(before.channels) !== JSON.stringify(next.channels))
      needsRestart.push('channels');
    const applied: string[] = [];
    if (
      JSON.stringify(before.server.allowed_origins) !== JSON.stringify(next.server.allowed_origins)
    )
      applied.push('server.allowed_origins');
    if (before.server.log_level !== next.server.log_level) {
      this.#logger.level = next.server.log_level;
      applied.push('server.log_level');
    }
    if (JSON.stringify(before.lanes) !== JSON.stringify(next.lanes)) {
      const queue = newQueue(this.kernel, next);
      await queue.ready();
      this.#holder.services = {
        ...this.#holder.services,
        queue,
        remote: new RemoteWork({ queue }),
      };
      applied.push('lanes');
    }
    this.#settings = {
      ...next,
      databasePath: before.databasePath,
      store: before.store,
      durability: before.durability,
    };
    return { applied, needsRestart };
  }

  /**
   * Graceful stop: no new connections or calls, `system.shutdown` to clients, running steps get
   * `graceMs` to finish; what is left keeps its lease and is resumed by the next start.
   */
  stop(reason = 'shutdown'): Promise<void> {
    this.#stopping ??= this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: string): Promise<void> {
    const grace = this.#settings.server.shutdown_grace;
    const started = Date.now();
    this.#logger.info({ reason, grace_ms: grace }, 'stopping');
    this.#http.close();
    this.#sse.closeAll(reason);
    await Promise.all([
      this.#acp.shutdown(reason, Math.min(grace, 5_000)),
      this.#grpc?.close(Math.min(grace, 5_000)),
      this.#openclaw?.close(reason === 'shutdown' ? 'gateway stopping' : reason),
    ]);
    const left = Math.max(0, grace - (Date.now() - started));
    const stopped = await Promise.race([
      this.#worker.stop().then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), left).unref()),
    ]);
    if (!stopped)
      this.#logger.warn(
        { active: this.#worker.activeCount },
        'steps still running after the grace period; they resume on the next start',
      );
    this.#expiry.stop();
    this.#guards.stop();
    await this.#sweeper?.stop();
    await this.security.close();
    this.#metrics.close();
    this.kernel.close();
    this.#http.closeAllConnections();
    if (stopped) await this.store.close();
    this.#logger.info({ reason }, 'stopped');
  }
}

function newQueue(kernel: Kernel, settings: DaemonSettings): JobQueue {
  return new JobQueue({
    store: kernel.store,
    sessions: kernel.sessions,
    lanes: {
      [settings.agentLane]: {},
      ...Object.fromEntries(
        Object.entries(settings.lanes).map(([name, lane]) => [
          name,
          {
            ...(lane.concurrency === undefined ? {} : { concurrency: lane.concurrency }),
            ...(lane.max_depth === undefined ? {} : { maxDepth: lane.max_depth }),
          },
        ]),
      ),
    },
  });
}

function connectionLimits(settings: DaemonSettings) {
  const s = settings.server;
  return {
    maxFrameBytes: s.max_frame_bytes,
    replayPageSize: s.replay_page_size,
    highWaterBytes: s.outbound_high_water_bytes,
    stallMs: s.stall_timeout,
    maxSubscriptions: s.max_subscriptions,
    maxInFlight: s.max_in_flight,
  };
}

export function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

function safePath(req: IncomingMessage): string {
  return redactUrl(req.url ?? '/');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** The configured chat channels (their secrets resolved now: a missing one fails the start). */
function openChannels(settings: DaemonSettings, security: Security): ChannelRegistry | null {
  if (settings.channels.webhook.length === 0) return null;
  const registry = new ChannelRegistry();
  for (const config of settings.channels.webhook)
    registry.register(
      new WebhookChannel(webhookOptionsFromConfig(config, security.secrets.get(config.secret_ref))),
    );
  return registry;
}
