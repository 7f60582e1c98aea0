/**
 * Builds the OpenClaw gateway of a daemon: the authenticator, the method table and the
 * listener. Every method is a translation onto the same kernel calls ACP makes.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

import type { TokenScope } from '../../core/index.ts';
import { buildWorkflow, type LoadedWorkflow, parseWorkflowText } from '../../core/workflow/load.ts';
import type { Authenticate } from '../acp/auth.ts';
import type { ChannelRegistry } from '../channels/index.ts';
import type { CommandServices } from '../commands/index.ts';
import { OpenClawAuthenticator, type OpenClawAuthMode } from './auth.ts';
import type { MethodHandler } from './connection.ts';
import { Dedupe } from './dedupe.ts';
import { EventBridge, runMeta } from './event-bridge.ts';
import { deliverReply, inboundSink } from './inbound.ts';
import { approvalMethods } from './methods/approvals.ts';
import { chatMethods } from './methods/chat.ts';
import { sessionMethods } from './methods/sessions.ts';
import { healthSnapshot, systemMethods } from './methods/system.ts';
import { METHOD_ACCESS } from './scopes.ts';
import { OpenClawServer } from './server.ts';
import { Turns } from './turns.ts';

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
  readonly workflow: string | null;
  readonly queue_mode: 'followup' | 'steer' | 'collect' | 'interrupt';
  /** See `server.openclaw.exec_approvals` in docs/configuration.md. */
  readonly exec_approvals: { readonly no_approver_clients: 'wait' | 'deny' };
}

export interface OpenClawGatewayOptions {
  readonly settings: OpenClawGatewaySettings;
  readonly services: () => CommandServices;
  readonly authenticate: Authenticate;
  readonly version: string;
  readonly configPath: string;
  /** WARDEN_HOME: a relative `workflow` path is read from here. */
  readonly home: string;
  readonly allowedOrigins: () => readonly string[];
  readonly models: () => readonly string[];
  /** Chat channels whose messages become turns (their replies go back through them). */
  readonly channels?: ChannelRegistry | null;
  readonly log: (
    level: 'debug' | 'info' | 'warn',
    message: string,
    fields: Record<string, unknown>,
  ) => void;
}

/** Events Warden sends (advertised in `hello-ok.features.events`). */
export const GATEWAY_EVENTS = [
  'tick',
  'shutdown',
  'health',
  'chat',
  'agent',
  'sessions.changed',
  'exec.approval.requested',
  'exec.approval.resolved',
] as const;

/** The built-in chat workflow: one `llm` stage answering the message (per model, cached). */
function chatWorkflows(
  settings: OpenClawGatewaySettings,
  home: string,
): (model?: string) => LoadedWorkflow {
  if (settings.workflow !== null) {
    const file = isAbsolute(settings.workflow) ? settings.workflow : join(home, settings.workflow);
    const loaded = parseWorkflowText(readFileSync(file, 'utf8'), file);
    return () => loaded;
  }
  const cache = new Map<string, LoadedWorkflow>();
  return (model) => {
    const name = model ?? '';
    let loaded = cache.get(name);
    if (!loaded) {
      loaded = buildWorkflow(
        {
          name: 'openclaw-chat',
          ...(model ? { model } : {}),
          stages: [
            {
              name: 'reply',
              agent: { kind: 'llm', prompt: '{{input.prompt}}' },
              default_next: 'end',
            },
          ],
        },
        '<openclaw-chat>',
      );
      if (cache.size > 64) cache.clear();
      cache.set(name, loaded);
    }
    return loaded;
  };
}

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
  const kernel = () => options.services().kernel;
  const dedupe = new Dedupe(() => kernel().store);
  const subscribers = new Set<string>();
  const workflows = chatWorkflows(settings, options.home);
  const channels = options.channels ?? null;
  const warn = (message: string) => (error: unknown) =>
    options.log('warn', message, { err: error instanceof Error ? error.message : String(error) });
  const turns = new Turns({
    kernel,
    workflow: workflows,
    onStarted: (_ref, run) => bridge.remember(run.pid, runMeta(run)),
    onDropped: (ref) => {
      bridge.dropped(ref);
      void markChatDone(dedupe, ref.runId).catch(() => undefined);
    },
    onError: warn('openclaw queued turn failed to start'),
  });
  const bridge: EventBridge = new EventBridge({
    kernel,
    server: () => server,
    sessionSubscribers: () => subscribers,
    denyWithoutApprovers: () => settings.exec_approvals.no_approver_clients === 'deny',
    onError: warn('openclaw event bridge failed'),
    onRunEnded: (meta, run) => {
      void turns.ended(meta.sessionKey, meta.runId).catch(warn('openclaw next turn failed'));
      void markChatDone(dedupe, meta.runId).catch(() => undefined);
      if (meta.kind === 'channel')
        void deliverReply(channels, run).catch(warn('openclaw channel reply failed'));
    },
  });
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
          queueMode: settings.queue_mode,
          workflow: settings.workflow,
        },
      }),
    }),
    ...chatMethods({ turns, dedupe, queueMode: () => settings.queue_mode }),
    ...approvalMethods(),
    ...sessionMethods({ turns, model: () => options.models()[0] ?? 'scripted' }),
    'sessions.subscribe': (call) => {
      subscribers.add(call.connection.connId);
      return Promise.resolve({ ok: true, subscribed: true });
    },
    'sessions.unsubscribe': (call) => {
      subscribers.delete(call.connection.connId);
      return Promise.resolve({ ok: true, subscribed: false });
    },
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
  bridge.start();
  turns.start();
  for (const driver of channels?.list() ?? [])
    await driver.start(
      inboundSink({ kernel, turns, dedupe, queueMode: () => settings.queue_mode }, driver.id),
    );
  server.onClose(() => {
    bridge.stop();
    turns.stop();
    void channels?.stopAll().catch(() => undefined);
  });
  server.onDisconnect((connection) => subscribers.delete(connection.connId));
  return server;
}

/** A `chat.send` run ended: duplicates now replay its ack instead of `in_flight` (§6.4). */
async function markChatDone(dedupe: Dedupe, runId: string): Promise<void> {
  const key = `chat:${runId}`;
  const entry = await dedupe.get(key);
  if (entry && entry.state === 'pending') await dedupe.update(key, { ...entry, state: 'done' });
}
