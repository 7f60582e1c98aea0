/**
 * The `jeeves.engine.v1` gRPC server (`warden serve`, `server.grpc`): a thin translation of each
 * RPC onto the kernel calls ACP uses, with the same bearer tokens and policy decision point.
 *
 * - Authentication: `authorization: Bearer <token>` metadata (never logged). The original Python
 *   client sends no metadata at all, so `anonymous` (allowed only on a loopback listener) names
 *   the caller such calls act as; without it they are UNAUTHENTICATED.
 * - Authorization: each RPC is decided by the PDP as the ACP method it does the work of
 *   (`run.start`, `task.claim`, …), so one policy governs both faces.
 * - Errors: WardenError codes map to their catalogued gRPC status (src/core/errors.ts); anything
 *   else is INTERNAL with a generic message, so a handler fault never crashes the daemon.
 */
import * as grpc from '@grpc/grpc-js';

import { coerceError, ERROR_CATALOGUE, isWardenError, WardenError } from '../../core/errors.ts';
import type { Authenticate } from '../acp/auth.ts';
import {
  authorize,
  type Caller,
  type CommandName,
  type CommandServices,
} from '../commands/index.ts';
import { healthService, jeevesServices, type ServiceName } from './proto.ts';

/** Who asked, as the RPC's metadata says (jeeves §4.1: `user_id`, `session_id`, `request_id`). */
export interface CallIdentity {
  readonly userId: string | null;
  readonly sessionId: string | null;
  readonly requestId: string | null;
  /** `worker_id` (or `x-worker-id`): tells apart clients that run one session's branches. */
  readonly workerId: string | null;
}

export interface RpcContext {
  readonly caller: Caller;
  readonly identity: CallIdentity;
  readonly services: CommandServices;
  readonly signal: AbortSignal;
  /** The call's deadline in ms since the epoch (Infinity: none). */
  readonly deadline: number;
}

export type UnaryHandler = (request: Record<string, unknown>, ctx: RpcContext) => Promise<unknown>;
export type StreamHandler = (
  request: Record<string, unknown>,
  ctx: RpcContext,
  write: (message: unknown) => boolean,
) => Promise<void>;

export interface RpcSpec {
  /** The ACP method whose authorization this RPC takes. */
  readonly acp: CommandName;
  readonly unary?: UnaryHandler;
  readonly stream?: StreamHandler;
  /** Why the RPC is not served (UNIMPLEMENTED with this message). */
  readonly unimplemented?: string;
}

export type ServiceImpl = Readonly<Record<string, RpcSpec>>;

export interface JeevesServerOptions {
  /** The current services (reloads swap them). */
  readonly services: () => CommandServices;
  readonly authenticate: Authenticate;
  /** The caller a call without a token acts as (loopback only); null: such calls are refused. */
  readonly anonymous?: Caller | null;
  readonly impl: Partial<Record<ServiceName, ServiceImpl>>;
  readonly maxMessageBytes?: number;
  readonly log?: (level: 'info' | 'warn' | 'error', msg: string, fields: object) => void;
}

let connections = 0;

export class JeevesGrpcServer {
  readonly #server: grpc.Server;
  readonly #options: JeevesServerOptions;
  #port = 0;

  constructor(options: JeevesServerOptions) {
    this.#options = options;
    const max = options.maxMessageBytes ?? 4 * 1024 * 1024;
    this.#server = new grpc.Server({
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
    });
    const definitions = jeevesServices();
    for (const [name, impl] of Object.entries(options.impl) as Array<[ServiceName, ServiceImpl]>) {
      const service = definitions[name].service;
      const handlers: grpc.UntypedServiceImplementation = {};
      for (const method of Object.keys(service)) {
        const spec = impl[method];
        const definition = service[method]!;
        handlers[method] = definition.responseStream
          ? this.#streamHandler(name, method, spec)
          : this.#unaryHandler(name, method, spec);
      }
      this.#server.addService(service, handlers);
    }
    this.#server.addService(healthService(), this.#health());
  }

  /**
   * grpc.health.v1 (no token needed: it reveals only whether the node serves): SERVING for the
   * whole server and each jeeves service it implements, SERVICE_UNKNOWN otherwise.
   */
  #health(): grpc.UntypedServiceImplementation {
    const served = new Set([
      '',
      ...Object.keys(this.#options.impl).map((n) => `jeeves.engine.v1.${n}`),
    ]);
    const status = (service: unknown) => ({
      status: served.has(typeof service === 'string' ? service : '') ? 1 : 3,
    });
    return {
      Check: (
        call: grpc.ServerUnaryCall<{ service?: string }, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => callback(null, status(call.request.service)),
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, unknown>) => {
        call.write(status(call.request.service));
      },
    };
  }

  get port(): number {
    return this.#port;
  }

  /** Binds `host:port` (port 0: any free one) and starts serving; resolves to the port. */
  listen(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
        if (error) {
          reject(
            new WardenError(
              'CONFIG_INVALID',
              `cannot listen for gRPC on ${address}: ${error.message}`,
            ),
          );
          return;
        }
        this.#port = port;
        resolve(port);
      });
    });
  }

  /** Stops accepting calls; in-flight ones get `graceMs`, then are cancelled. */
  close(graceMs = 2_000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #unaryHandler(
    service: string,
    method: string,
    spec: RpcSpec | undefined,
  ): grpc.handleUnaryCall<Record<string, unknown>, unknown> {
    return (call, callback) => {
      void (async () => {
        if (!spec) return callback(unimplemented(service, method));
        try {
          // The gate first, even for an RPC Warden does not serve: a bad token hears so.
          const ctx = await this.#context(call, spec);
          if (!spec.unary) return callback(unimplemented(service, method, spec.unimplemented));
          callback(null, await spec.unary(call.request, ctx));
        } catch (error) {
          callback(this.#status(error, service, method));
        }
      })();
    };
  }

  #streamHandler(
    service: string,
    method: string,
    spec: RpcSpec | undefined,
  ): grpc.handleServerStreamingCall<Record<string, unknown>, unknown> {
    return (call) => {
      void (async () => {
        if (!spec) return void call.emit('error', unimplemented(service, method));
        try {
          const ctx = await this.#context(call, spec);
          if (!spec.stream)
            return void call.emit('error', unimplemented(service, method, spec.unimplemented));
          await spec.stream(call.request, ctx, (message) => call.write(message));
          call.end();
        } catch (error) {
          if (!call.cancelled) call.emit('error', this.#status(error, service, method));
        }
      })();
    };
  }

  async #context(
    call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
    spec: RpcSpec,
  ): Promise<RpcContext> {
    const controller = new AbortController();
    call.on('cancelled', () =>
      controller.abort(new WardenError('CANCELED', 'the client cancelled the call')),
    );
    const deadline = deadlineOf(call.getDeadline());
    if (deadline <= Date.now())
      throw new WardenError('TIMEOUT', 'the call arrived after its deadline');
    const services = this.#options.services();
    const caller = await this.#caller(call.metadata);
    await authorize(spec.acp, caller, services.security);
    return {
      caller,
      identity: identityOf(call.metadata),
      services,
      signal: controller.signal,
      deadline,
    };
  }

  async #caller(metadata: grpc.Metadata): Promise<Caller> {
    const header = first(metadata, 'authorization');
    if (header === null) {
      if (this.#options.anonymous) return this.#options.anonymous;
      throw new WardenError(
        'UNAUTHORIZED',
        'no token: send `authorization: Bearer <token>` metadata (warden token create), or enable server.grpc.anonymous on a loopback listener',
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match)
      throw new WardenError('UNAUTHORIZED', 'the authorization metadata must be `Bearer <token>`');
    connections += 1;
    return this.#options.authenticate(match[1]!, `grpc-${connections}`);
  }

  #status(error: unknown, service: string, method: string): Partial<grpc.StatusObject> {
    if (!isWardenError(error)) {
      this.#options.log?.('error', 'gRPC handler failed', {
        rpc: `${service}/${method}`,
        err: coerceError(error).message,
      });
      return { code: grpc.status.INTERNAL, details: 'internal error; nothing was changed' };
    }
    const name = ERROR_CATALOGUE[error.code].grpc as keyof typeof grpc.status;
    const code = grpc.status[name] ?? grpc.status.UNKNOWN;
    const metadata = new grpc.Metadata();
    metadata.set('warden-error-code', error.code);
    return { code, details: error.message, metadata };
  }
}

function unimplemented(service: string, method: string, why?: string): Partial<grpc.StatusObject> {
  return {
    code: grpc.status.UNIMPLEMENTED,
    details: why ?? `${service}/${method} is not served by Warden (docs/protocol/jeeves.md)`,
  };
}

function first(metadata: grpc.Metadata, key: string): string | null {
  const value = metadata.get(key)[0];
  if (value === undefined) return null;
  return typeof value === 'string' ? value : value.toString('utf8');
}

/** `user_id` etc. (the reference), or `x-user-id` etc.; empty strings count as absent. */
function identityOf(metadata: grpc.Metadata): CallIdentity {
  const pick = (name: string) => {
    const value = first(metadata, name) ?? first(metadata, `x-${name.replace('_', '-')}`);
    return value === null || value === '' ? null : value;
  };
  return {
    userId: pick('user_id'),
    sessionId: pick('session_id'),
    requestId: pick('request_id'),
    workerId: pick('worker_id'),
  };
}

function deadlineOf(deadline: grpc.Deadline): number {
  if (deadline instanceof Date) return deadline.getTime();
  return Number.isFinite(deadline) ? deadline : Infinity;
}
