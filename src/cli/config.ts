/**
 * Configuration: `WARDEN_HOME/config.yaml`, validated with a strict schema (unknown keys are
 * errors). Precedence (DESIGN.md §13): CLI flags > environment (`WARDEN_*`) > config file >
 * defaults. Errors name the file, the key and what was expected.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';

import { formatPath, parseDurationMs, WardenError } from '../core/index.ts';
import { webhookChannelConfigSchema } from '../protocols/channels/index.ts';
import { retentionOptionsSchema } from '../queue/index.ts';
import { isPostgresUrl } from '../store/index.ts';
import { setCommandTarget } from './invocation.ts';

/** A `host:port` listener address (`example` shows the form in the error). */
function listenAddress(example: string) {
  return z
    .string()
    .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, `expected host:port such as ${example}`)
    .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65_535, 'port must be ≤ 65535');
}

const duration = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  const ms = parseDurationMs(v);
  if (!Number.isFinite(ms) || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration such as 500ms, 15s or 2m' });
    return z.NEVER;
  }
  return ms;
});

export const configSchema = z
  .strictObject({
    /** `fast` survives process crashes; `strict` survives power loss (fsync per commit). */
    durability: z.enum(['fast', 'strict']).default('fast'),
    /** Default model spec for llm stages that name none: `scripted`, `openai:<model>`. */
    model: z.string().min(1).default('scripted'),
    /** Database file; relative paths are relative to WARDEN_HOME. */
    database: z.string().min(1).default('warden.db'),
    /**
     * A PostgreSQL store instead of the SQLite file: `postgres://user@host:5432/db[?schema=name]`
     * (docs/scale-out.md). Every `warden serve` node given the same URL shares the same state.
     */
    store: z
      .string()
      .refine(isPostgresUrl, 'expected a postgres:// or postgresql:// URL')
      .optional(),
    /** PostgreSQL connection settings (used only with `store: postgres://…`). */
    postgres: z
      .strictObject({
        pool_size: z.number().int().min(1).max(1_000).default(10),
        statement_timeout: duration.default(30_000),
        connect_timeout: duration.default(5_000),
        retry: duration.default(30_000),
      })
      .default({
        pool_size: 10,
        statement_timeout: 30_000,
        connect_timeout: 5_000,
        retry: 30_000,
      }),
    agent_lane: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/)
      .default('agents'),
    worker: z
      .strictObject({
        concurrency: z.number().int().min(1).max(256).default(4),
        lease: duration.default(15_000),
        heartbeat: duration.optional(),
      })
      .default({ concurrency: 4, lease: 15_000 }),
    /** The daemon (`warden serve`): listeners, limits, logs (docs/configuration.md#server). */
    server: z
      .strictObject({
        /** host:port of the HTTP listener (ACP at /acp, /healthz, /readyz, /metrics, /events). */
        listen: z
          .string()
          .regex(
            /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/,
            'expected host:port such as 127.0.0.1:7421',
          )
          .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65_535, 'port must be ≤ 65535')
          .default('127.0.0.1:7421'),
        /** Origins browsers may connect from, exactly as the Origin header names them. */
        allowed_origins: z
          .array(
            z
              .string()
              .regex(/^https?:\/\/[^/\s]+$/, 'expected an origin such as https://ops.example.com'),
          )
          .default([]),
        max_connections: z.number().int().min(1).max(100_000).default(1_000),
        max_frame_bytes: z
          .number()
          .int()
          .min(1_024)
          .max(64 * 1_048_576)
          .default(1_048_576),
        max_subscriptions: z.number().int().min(1).max(10_000).default(64),
        max_in_flight: z.number().int().min(1).max(10_000).default(256),
        replay_page_size: z.number().int().min(1).max(10_000).default(1_000),
        outbound_high_water_bytes: z
          .number()
          .int()
          .min(65_536)
          .max(1_073_741_824)
          .default(8_388_608),
        /** How long a replay waits for a client that does not read before cutting it off. */
        stall_timeout: duration.default(30_000),
        /** How long running handlers and calls get to finish on SIGINT/SIGTERM. */
        shutdown_grace: duration.default(10_000),
        log_level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info'),
        /** The jeeves.engine.v1 gRPC listener (docs/protocol/jeeves.md); off unless `listen` is set. */
        grpc: z
          .strictObject({
            /** host:port, e.g. 127.0.0.1:50051 (the jeeves clients' default port). */
            listen: listenAddress('127.0.0.1:50051').nullable().default(null),
            /**
             * The user calls without a token act as (the original Python client sends no
             * metadata); null refuses them. Only with a loopback `listen`.
             */
            anonymous: z
              .string()
              .regex(
                /^[A-Za-z0-9_.:@-]{1,64}$/,
                'expected a user name of 1-64 letters, digits, _ . : @ -',
              )
              .nullable()
              .default(null),
            max_message_bytes: z
              .number()
              .int()
              .min(1_024)
              .max(64 * 1_048_576)
              .default(4 * 1_048_576),
          })
          .prefault({})
          .refine(
            (g) => g.anonymous === null || (g.listen !== null && isLoopbackListen(g.listen)),
            {
              message:
                'anonymous gRPC callers are allowed only on a loopback listener (127.0.0.1, ::1 or localhost)',
              path: ['anonymous'],
            },
          ),
        /** The OpenClaw Gateway v4 listener (docs/protocol/openclaw.md); off unless `listen` is set. */
        openclaw: z
          .strictObject({
            /** host:port; OpenClaw clients default to 127.0.0.1:18789. */
            listen: listenAddress('127.0.0.1:18789').nullable().default(null),
            auth: z
              .strictObject({
                /** token: a Warden API token as `auth.token`; password: a Warden secret; none: loopback only. */
                mode: z.enum(['token', 'password', 'none']).default('token'),
                /** Password mode: the name of the Warden secret holding the password. */
                password_secret: z
                  .string()
                  .regex(
                    /^[A-Za-z_][A-Za-z0-9_]{0,127}$/,
                    'expected a secret name such as OPENCLAW_PASSWORD',
                  )
                  .nullable()
                  .default(null),
                /** What a password or `none` connection may be granted (Warden scopes). */
                scopes: z
                  .array(z.enum(['read', 'write', 'admin', 'approvals']))
                  .min(1)
                  .default(['read', 'write']),
              })
              .prefault({}),
            /** How often `tick` is broadcast (clients close after 2× this of silence). */
            tick_interval: duration.default(30_000),
            /** How long a socket may take to send `connect`. */
            handshake_timeout: duration.default(15_000),
            max_connections: z.number().int().min(1).max(100_000).default(1_000),
            max_in_flight: z.number().int().min(1).max(10_000).default(256),
            /**
             * The workflow each chat turn runs (a file, relative to WARDEN_HOME); null: one `llm`
             * stage answering the message with the daemon's model.
             */
            workflow: z.string().min(1).nullable().default(null),
            /** What a message does while its session has a run: followup|steer|collect|interrupt. */
            queue_mode: z.enum(['followup', 'steer', 'collect', 'interrupt']).default('followup'),
            exec_approvals: z
              .strictObject({
                /**
                 * A chat turn's tool call that needs a person's approval while no OpenClaw
                 * client with `operator.approvals` is connected: `wait` (a durable approval,
                 * answered later from any face) or `deny` at once (OpenClaw's
                 * `auto-expire:no-approver-clients`).
                 */
                no_approver_clients: z.enum(['wait', 'deny']).default('wait'),
              })
              .prefault({}),
          })
          .prefault({})
          .refine(
            (o) => o.auth.mode !== 'none' || (o.listen !== null && isLoopbackListen(o.listen)),
            {
              message:
                'auth.mode none is allowed only on a loopback listener (127.0.0.1, ::1 or localhost)',
              path: ['auth', 'mode'],
            },
          )
          .refine((o) => o.auth.mode !== 'password' || o.auth.password_secret !== null, {
            message: 'auth.mode password needs auth.password_secret (the Warden secret holding it)',
            path: ['auth', 'password_secret'],
          }),
      })
      .prefault({}),
    /** Agents' tools (docs/security.md#tools): where they work and their limits. */
    tools: z
      .strictObject({
        /** Where relative paths and `shell.exec` commands run; relative to WARDEN_HOME. */
        workspace: z.string().min(1).default('workspace'),
        /** Where `run.spawn` finds workflows by name (`<dir>/<name>.yaml`); relative to WARDEN_HOME. */
        workflows: z.string().min(1).default('workflows'),
        /** A call's default timeout. */
        timeout: duration.default(30_000),
        /** How long a person has to approve an `ask` call (then it is denied). */
        approval_ttl: duration.default(3_600_000),
        http: z
          .strictObject({
            /** Addresses the SSRF guard lets through although private (CIDRs), e.g. an internal API. */
            allow: z.array(z.string().min(1)).default([]),
            max_bytes: z.number().int().min(1_024).max(1_073_741_824).default(1_048_576),
          })
          .prefault({}),
      })
      .prefault({}),
    /** Guards beyond the policy (docs/security.md#guards). */
    security: z
      .strictObject({
        injection: z
          .strictObject({
            /** `enforce` withholds answers scored `block`; `off` skips scoring. */
            mode: z.enum(['enforce', 'off']).default('enforce'),
            review_at: z.number().min(0).max(1).default(0.4),
            block_at: z.number().min(0).max(1).default(0.7),
          })
          .prefault({}),
        integrity: z
          .strictObject({
            /** Files whose content must not change (absolute, or relative to WARDEN_HOME). */
            files: z.array(z.string().min(1)).default([]),
            interval: duration.default(300_000),
          })
          .prefault({}),
        /** Re-read policy files when they change (the daemon). */
        watch_policy: z.boolean().default(true),
      })
      .prefault({}),
    /** Job lanes and their limits across every process (queue.md#lanes). */
    lanes: z
      .record(
        z
          .string()
          .regex(
            /^[A-Za-z0-9_.:-]{1,64}$/,
            'expected a lane name of 1-64 letters, digits, _ . : -',
          ),
        z
          .strictObject({
            concurrency: z.number().int().min(1).max(100_000).optional(),
            max_depth: z.number().int().min(1).max(1_000_000_000).optional(),
          })
          .nullable()
          .transform((v) => v ?? {}),
      )
      .default({}),
    /**
     * History pruning (queue.md#retention). Omitted keys take the RetentionSweeper defaults;
     * the ranges and the dead ≥ finished rule are the sweeper's own, reported with these keys.
     */
    retention: z
      .strictObject({
        enabled: z.boolean().default(true),
        finished: duration.optional(),
        dead: duration.optional(),
        events: duration.optional(),
        interval: duration.optional(),
        batch_size: z.number().int().optional(),
      })
      .superRefine((r, ctx) => {
        const checked = retentionOptionsSchema.safeParse(retentionOptionsOf(r));
        if (checked.success) return;
        for (const issue of checked.error.issues)
          ctx.addIssue({
            code: 'custom',
            path: issue.path.map((p) => RETENTION_KEYS[p as keyof typeof RETENTION_KEYS] ?? p),
            message: issue.message.replace(/finishedMs/g, 'finished'),
          });
      })
      .default({ enabled: true }),
    /** Chat channels feeding the OpenClaw gateway's sessions (docs/channels.md). */
    channels: z
      .strictObject({
        webhook: z
          .array(webhookChannelConfigSchema)
          .max(64)
          .default([])
          .refine((list) => new Set(list.map((c) => c.name)).size === list.length, {
            message: 'webhook channel names must be unique',
          }),
      })
      .prefault({}),
  })
  .refine((c) => c.channels.webhook.length === 0 || c.server.openclaw.listen !== null, {
    message:
      'channels need the OpenClaw gateway: set server.openclaw.listen (e.g. 127.0.0.1:18789)',
    path: ['channels'],
  });

const RETENTION_KEYS = {
  finishedMs: 'finished',
  deadMs: 'dead',
  eventsMs: 'events',
  intervalMs: 'interval',
  batchSize: 'batch_size',
} as const;

/** The `retention:` section as RetentionSweeper options (omitted keys stay omitted). */
export function retentionOptionsOf(r: {
  readonly finished?: number | undefined;
  readonly dead?: number | undefined;
  readonly events?: number | undefined;
  readonly interval?: number | undefined;
  readonly batch_size?: number | undefined;
}): {
  finishedMs?: number;
  deadMs?: number;
  eventsMs?: number;
  intervalMs?: number;
  batchSize?: number;
} {
  return {
    ...(r.finished === undefined ? {} : { finishedMs: r.finished }),
    ...(r.dead === undefined ? {} : { deadMs: r.dead }),
    ...(r.events === undefined ? {} : { eventsMs: r.events }),
    ...(r.interval === undefined ? {} : { intervalMs: r.interval }),
    ...(r.batch_size === undefined ? {} : { batchSize: r.batch_size }),
  };
}

export type WardenConfig = z.output<typeof configSchema>;

export interface ResolvedConfig extends WardenConfig {
  readonly home: string;
  readonly databasePath: string;
  /** The PostgreSQL store URL when the data lives there (`store:`, or a URL in --db/WARDEN_DB). */
  readonly storeUrl: string | null;
  readonly configFile: string;
  readonly tokenFile: string;
}

export interface ConfigOverrides {
  readonly home?: string;
  readonly db?: string;
  readonly durability?: string;
}

export const DEFAULT_CONFIG_YAML = `# Warden configuration. Every key is optional; unknown keys are errors.
# Precedence: command-line flags > environment (WARDEN_*) > this file > defaults.

# fast: WAL + synchronous=NORMAL, survives process crashes.
# strict: WAL + synchronous=FULL, survives power loss.
durability: fast

# Default model for llm stages that name none: scripted, or openai:<model>
# (with OPENAI_BASE_URL / OPENAI_API_KEY in the environment).
model: scripted

# Database file, relative to this directory.
database: warden.db

agent_lane: agents

worker:
  concurrency: 4
  lease: 15s

# History pruning: finished work, dead tasks and events older than these go.
retention:
  enabled: true
  finished: 7d
  dead: 30d
  events: 30d
  interval: 10m
`;

export function resolveHome(flag?: string): string {
  return resolve(flag ?? process.env.WARDEN_HOME ?? join(homedir(), '.warden'));
}

export function loadConfig(overrides: ConfigOverrides = {}): ResolvedConfig {
  const home = resolveHome(overrides.home);
  const configFile = join(home, 'config.yaml');
  let raw: Record<string, unknown> = {};
  if (existsSync(configFile)) {
    const lineCounter = new LineCounter();
    const doc = parseDocument(readFileSync(configFile, 'utf8'), { uniqueKeys: true, lineCounter });
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const pos = lineCounter.linePos(e.pos[0]);
      throw new WardenError(
        'CONFIG_INVALID',
        `${configFile}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${e.message.split('\n')[0]}`,
        {
          details: { file: configFile },
        },
      );
    }
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) {
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw new WardenError('CONFIG_INVALID', `${configFile}: expected a mapping of keys`, {
          details: { file: configFile },
        });
      }
      raw = value as Record<string, unknown>;
    }
  }
  const env: Record<string, unknown> = {};
  if (process.env.WARDEN_DURABILITY) env.durability = process.env.WARDEN_DURABILITY;
  if (process.env.WARDEN_MODEL) env.model = process.env.WARDEN_MODEL;
  // One rule for paths given in the shell (flag or environment): relative to the current
  // directory, as a user typing them expects; `database:` in config.yaml is relative to the home.
  // A postgres:// URL in --db or WARDEN_DB names the store itself (and wins over `database:`).
  if (process.env.WARDEN_STORE) env.store = process.env.WARDEN_STORE;
  if (process.env.WARDEN_DB) {
    if (isPostgresUrl(process.env.WARDEN_DB)) env.store = process.env.WARDEN_DB;
    else env.database = resolve(process.env.WARDEN_DB);
  }
  const flags: Record<string, unknown> = {};
  if (overrides.durability) flags.durability = overrides.durability;
  if (overrides.db) {
    if (isPostgresUrl(overrides.db)) flags.store = overrides.db;
    else {
      flags.database = resolve(overrides.db);
      // A file named on the command line wins over a store URL from the file or environment.
      flags.store = undefined;
    }
  }
  const merged = { ...raw, ...env, ...flags };
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = formatPath(issue.path);
    const source =
      key in flags || issue.path[0]! in flags
        ? 'command-line flag'
        : issue.path[0]! in env
          ? 'environment'
          : configFile;
    throw new WardenError('CONFIG_INVALID', `${source}: ${key}: ${issue.message}`, {
      details: {
        file: configFile,
        key,
        issues: parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
      },
    });
  }
  const config = parsed.data;
  const databasePath = resolve(home, config.database);
  const storeUrl = config.store ?? null;
  setCommandTarget(home, databasePath); // the commands this process prints reach the same place
  return {
    ...config,
    home,
    configFile,
    tokenFile: join(home, 'auth.token'),
    databasePath,
    storeUrl,
  };
}

/** Whether `host:port` listens on a loopback address only. */
export function isLoopbackListen(listen: string): boolean {
  const host = listen.slice(0, listen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}
