/**
 * Builds the OpenClaw gateway of a daemon: the authenticator, the method table and the
 * listener. Every method is a translation onto the same kernel calls ACP makes.
 */
import type { TokenScope } from '../../core/index.ts';
import type { Authenticate } from '../acp/auth.ts';
import type { CommandServices } from '../commands/index.ts';
import { OpenClawAuthenticator, type OpenClawAuthMode } from './auth.ts';
import type { MethodHandler } from './connection.ts';
import { healthSnapshot, systemMethods } from './methods/system.ts';
import { METHOD_ACCESS } from './scopes.ts';
import { OpenClawServer } from './server.ts';

export interface OpenClawGatewaySettings {
  readonly listen: string;
  readonly auth: {
    readonly mode: OpenClawAuthMode;
    readonly password_secret: string | null;
    readonly scopes: readonly TokenScope[];
  };
  readonly tick_interval: number;
  readonly handshake_timeout: number;
  readonly max_connections: number;
  readonly max_in_flight: number;
}

export interface OpenClawGatewayOptions {
  readonly settings: OpenClawGatewaySettings;
  readonly services: () => CommandServices;
  readonly authenticate: Authenticate;
  readonly version: string;
  readonly configPath: string;
  readonly allowedOrigins: () => readonly string[];
  readonly models: () => readonly string[];
  readonly log: (
    level: 'debug' | 'info' | 'warn',
    message: string,
    fields: Record<string, unknown>,
  ) => void;
}

/** Events Warden sends (advertised in `hello-ok.features.events`). */
export const GATEWAY_EVENTS = ['tick', 'shutdown', 'health'] as const;

export function splitListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':');
  return { host: listen.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(listen.slice(at + 1)) };
}

export async function startOpenClawGateway(
  options: OpenClawGatewayOptions,
): Promise<OpenClawServer> {
  const { settings } = options;
  const auth = new OpenClawAuthenticator(
    () => ({
      mode: settings.auth.mode,
      scopes: settings.auth.scopes,
      password: () => {
        const name = settings.auth.password_secret;
        const secrets = options.services().security?.secrets;
        return name !== null && secrets?.has(name) ? secrets.get(name) : null;
      },
    }),
    options.authenticate,
  );
  const methods = new Map<string, MethodHandler>();
  let server: OpenClawServer | null = null;
  const table: Record<string, MethodHandler> = {
    ...systemMethods({
      version: options.version,
      configPath: options.configPath,
      models: options.models,
      health: () => server!.health(),
      config: () => ({
        gateway: {
          listen: settings.listen,
          auth: { mode: settings.auth.mode, scopes: [...settings.auth.scopes] },
          tickIntervalMs: settings.tick_interval,
        },
      }),
    }),
  };
  for (const [name, handler] of Object.entries(table)) {
    // A handler without a scope entry would be unreachable (unclassified → admin); fail loudly.
    if (!METHOD_ACCESS[name]) throw new Error(`openclaw method ${name} has no scope entry`);
    methods.set(name, handler);
  }
  server = new OpenClawServer({
    services: options.services,
    auth,
    methods,
    events: GATEWAY_EVENTS,
    version: options.version,
    tickIntervalMs: settings.tick_interval,
    handshakeTimeoutMs: settings.handshake_timeout,
    maxConnections: settings.max_connections,
    maxInFlight: settings.max_in_flight,
    allowedOrigins: options.allowedOrigins,
    health: () => healthSnapshot({ services: options.services() }),
    log: options.log,
  });
  const { host, port } = splitListen(settings.listen);
  await server.listen(host, port);
  return server;
}
