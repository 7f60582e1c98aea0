/**
 * The gateway's own methods (reference §4.1, §4.2, §4.19): `health`, `status`,
 * `system-presence`, `last-heartbeat`, `config.get`, `models.list`, `agents.list`. They read
 * the kernel; nothing here changes state.
 */
import type { MethodCall, MethodHandler } from '../connection.ts';
import { invalidRequest } from '../frames.ts';

export interface SystemMethodsOptions {
  readonly version: string;
  /** The gateway's configuration as `config.get` shows it (no secrets: names only). */
  readonly config: () => Record<string, unknown>;
  readonly configPath: string;
  /** Model names the daemon can call (`scripted`, `openai:<model>`…). */
  readonly models: () => readonly string[];
  /** The server's cached health snapshot. */
  readonly health: () => Promise<Record<string, unknown>>;
}

/** Unknown param keys are tolerated (newer clients add fields); known ones are checked. */
function checkHealthParams(call: MethodCall): void {
  if (call.params.probe !== undefined && typeof call.params.probe !== 'boolean')
    throw invalidRequest('invalid health params: probe must be a boolean');
}

/** The daemon's default model as OpenClaw names it (`openai:gpt-4o` → `gpt-4o`), or null. */
function defaultModel(models: readonly string[]): string | null {
  const first = models[0];
  if (first === undefined) return null;
  return first.includes(':') ? first.slice(first.indexOf(':') + 1) : first;
}

/** The §4.1 HealthSnapshot from the kernel's status and sessions. */
export async function healthSnapshot(call: {
  services: MethodCall['services'];
}): Promise<Record<string, unknown>> {
  const { kernel } = call.services;
  const [status, sessions] = await Promise.all([kernel.status(), kernel.store.listSessions()]);
  const now = Date.now();
  const recent = sessions
    .filter((s) => s.key !== 'system')
    .sort((a, b) => b.updated_at - a.updated_at)
    .slice(0, 10)
    .map((s) => ({ key: s.key, updatedAt: s.updated_at, age: now - s.updated_at }));
  const summary = { path: 'warden:sessions', count: sessions.length - 1, recent };
  return {
    ok: status.store.ok,
    ts: now,
    durationMs: 0,
    channels: {},
    channelOrder: [],
    channelLabels: {},
    heartbeatSeconds: 0,
    defaultAgentId: 'main',
    agents: [
      {
        agentId: 'main',
        name: 'main',
        isDefault: true,
        heartbeat: {
          enabled: false,
          every: 'off',
          everyMs: null,
          prompt: '',
          target: 'none',
          ackMaxChars: 0,
        },
        sessions: summary,
      },
    ],
    sessions: summary,
    readiness: { ok: status.store.ok, store: status.store.kind },
  };
}

export function systemMethods(options: SystemMethodsOptions): Record<string, MethodHandler> {
  return {
    health: (call) => {
      checkHealthParams(call);
      return options.health();
    },
    status: async (call) => {
      const { kernel } = call.services;
      const [status, sessions] = await Promise.all([kernel.status(), kernel.store.listSessions()]);
      const admin = call.connection.scopes.includes('operator.admin');
      const recent = sessions
        .filter((s) => s.key !== 'system')
        .sort((a, b) => b.updated_at - a.updated_at)
        .slice(0, 10)
        .map((s) => ({ key: s.key, updatedAt: s.updated_at }));
      return {
        runtimeVersion: options.version,
        heartbeat: {
          defaultAgentId: 'main',
          agents: [{ agentId: 'main', enabled: false, every: 'off', everyMs: null }],
        },
        channelSummary: [],
        queuedSystemEvents: [],
        sessions: {
          paths: ['warden:sessions'],
          count: sessions.length - 1,
          // The same default model `sessions.list` reports (without its provider prefix).
          defaults: { model: defaultModel(options.models()), contextTokens: null },
          recent,
          byAgent: [
            { agentId: 'main', path: 'warden:sessions', count: sessions.length - 1, recent },
          ],
        },
        // Sensitive details only for admin clients (§4.2).
        ...(admin
          ? {
              warden: {
                processes: status.processes,
                tasks: status.tasks,
                pendingInterrupts: status.pending_interrupts,
                store: status.store,
              },
            }
          : {}),
      };
    },
    // CLI clients do not appear in presence (§2.5); Warden has no presence-reporting apps.
    'system-presence': () => Promise.resolve([]),
    // Warden runs no agent heartbeats: there is never a last one.
    'last-heartbeat': () => Promise.resolve(null),
    'config.get': () =>
      Promise.resolve({
        path: options.configPath,
        exists: true,
        valid: true,
        config: options.config(),
      }),
    'models.list': () =>
      Promise.resolve({
        models: options.models().map((id) => ({ id, name: id, provider: id.split(':')[0] })),
      }),
    'agents.list': () =>
      Promise.resolve({
        defaultId: 'main',
        mainKey: 'main',
        scope: 'per-sender',
        agents: [{ id: 'main', name: 'main' }],
      }),
  };
}
