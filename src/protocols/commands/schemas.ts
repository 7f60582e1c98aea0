/**
 * The parameters of every command, as zod schemas: the one definition the ACP server validates
 * with, the JSON Schemas in docs/protocol/ are generated from, and later protocols (gRPC, the
 * OpenClaw gateway) translate onto. Wire names are snake_case; unknown keys are errors.
 */
import { z } from 'zod';

import { PRIORITIES, TOKEN_SCOPES, type TokenScope } from '../../core/index.ts';

const id = (what: string) =>
  z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_.:-]+$/, `expected ${what} id`);
const sessionKey = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'expected a session key of 1-128 letters, digits, _ . : -');
const lane = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected a lane name of 1-64 letters, digits, _ . : -');
const limit = (max: number) => z.number().int().min(1).max(max).optional();
const seq = z.number().int().min(0);
const attemptToken = z.string().min(1).max(512);
const json = z.unknown();

export const SCOPES = TOKEN_SCOPES;
export type Scope = TokenScope;

export const PROTOCOL_VERSIONS = { min: 1, max: 1 } as const;

const empty = z.strictObject({});

export const commandParams = {
  'system.hello': z.strictObject({
    protocol: z
      .strictObject({ min: z.number().int().min(1), max: z.number().int().min(1) })
      .refine((p) => p.min <= p.max, 'protocol.min must not exceed protocol.max'),
    client: z
      .strictObject({ name: z.string().min(1).max(128), version: z.string().max(64).optional() })
      .optional(),
  }),
  'system.ping': empty,
  'system.status': empty,

  'session.create': z.strictObject({
    key: sessionKey,
    settings: z.record(z.string(), json).optional(),
  }),
  'session.get': z.union([
    z.strictObject({ session_id: id('a session') }),
    z.strictObject({ key: sessionKey }),
  ]),
  'session.list': z.strictObject({ limit: limit(1_000) }),
  'session.patch': z.strictObject({
    session_id: id('a session'),
    settings: z.record(z.string(), json),
    expect_version: z.number().int().min(0).optional(),
  }),
  'session.delete': z.strictObject({ session_id: id('a session') }),
  'session.history': z.strictObject({
    session_id: id('a session'),
    from_seq: seq.optional(),
    limit: limit(10_000),
  }),

  'events.subscribe': z.strictObject({ session_id: id('a session'), from_seq: seq.optional() }),
  'events.unsubscribe': z.strictObject({ subscription_id: id('a subscription') }),

  'run.start': z.strictObject({
    /** A workflow object (the YAML's structure) or the YAML text itself. */
    workflow: z.union([z.record(z.string(), json), z.string().min(1).max(1_048_576)]),
    input: json.optional(),
    session_key: sessionKey.optional(),
    priority: z.enum(PRIORITIES).optional(),
    metadata: z.record(z.string(), json).optional(),
    user_id: z.string().min(1).max(128).optional(),
  }),
  'run.get': z.strictObject({ pid: id('a process') }),
  'run.list': z.strictObject({
    states: z
      .array(z.enum(['new', 'ready', 'running', 'waiting', 'blocked', 'terminated', 'zombie']))
      .optional(),
    session_id: id('a session').optional(),
    limit: limit(1_000),
  }),
  'run.cancel': z.strictObject({ pid: id('a process'), message: z.string().max(1_000).optional() }),
  'run.wait': z.strictObject({
    pid: id('a process'),
    until: z.enum(['terminated', 'waiting']).optional(),
    timeout_ms: z.number().int().min(0).max(300_000).optional(),
  }),

  'task.submit': z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.:/-]{1,128}$/, 'expected a job name'),
    payload: json.optional(),
    lane: lane.optional(),
    priority: z.union([z.enum(PRIORITIES), z.number().int().min(0).max(4)]).optional(),
    idempotency_key: z.string().min(1).max(256).optional(),
    delay_ms: z
      .number()
      .int()
      .min(0)
      .max(365 * 86_400_000)
      .optional(),
    max_attempts: z.number().int().min(1).max(1_000).optional(),
    timeout_ms: z
      .number()
      .int()
      .min(1)
      .max(7 * 86_400_000)
      .optional(),
    session_key: sessionKey.optional(),
  }),
  'task.get': z.strictObject({ task_id: id('a task') }),
  'task.list': z.strictObject({
    states: z
      .array(z.enum(['queued', 'running', 'succeeded', 'failed', 'dead', 'canceled']))
      .optional(),
    lane: lane.optional(),
    limit: limit(1_000),
  }),
  'task.cancel': z.strictObject({
    task_id: id('a task'),
    reason: z.string().max(1_000).optional(),
  }),
  'task.dlq.list': z.strictObject({ lane: lane.optional(), limit: limit(1_000) }),
  'task.redrive': z.strictObject({ task_id: id('a task') }),
  'task.claim': z.strictObject({
    lanes: z.array(lane).min(1).max(64),
    limit: limit(256),
    lease_ms: z.number().int().min(1_000).max(3_600_000).optional(),
    wait_ms: z.number().int().min(0).max(60_000).optional(),
    worker_name: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected a worker name of 1-64 letters, digits, _ . : -')
      .optional(),
  }),
  'task.heartbeat': z.strictObject({
    task_id: id('a task'),
    attempt_token: attemptToken,
    lease_ms: z.number().int().min(1_000).max(3_600_000).optional(),
  }),
  'task.progress': z.strictObject({
    task_id: id('a task'),
    attempt_token: attemptToken,
    data: json,
  }),
  'task.complete': z.strictObject({
    task_id: id('a task'),
    attempt_token: attemptToken,
    result: json.optional(),
  }),
  'task.fail': z.strictObject({
    task_id: id('a task'),
    attempt_token: attemptToken,
    error: z.strictObject({
      message: z.string().min(1).max(16_384),
      code: z.string().min(1).max(64).optional(),
      retryable: z.boolean().optional(),
      retry_after_ms: z.number().int().min(0).max(86_400_000).optional(),
      details: z.record(z.string(), json).optional(),
    }),
  }),
  'task.release': z.strictObject({ task_id: id('a task'), attempt_token: attemptToken }),

  'interrupt.list': z.strictObject({
    status: z.enum(['pending', 'resolved', 'expired', 'cancelled']).optional(),
    pid: id('a process').optional(),
    limit: limit(1_000),
  }),
  'interrupt.get': z.strictObject({ interrupt_id: id('an interrupt') }),
  'interrupt.resolve': z.strictObject({
    interrupt_id: id('an interrupt'),
    response: z.strictObject({
      approved: z.boolean().optional(),
      text: z.string().max(65_536).optional(),
      decision: z.string().max(256).optional(),
      data: json.optional(),
      grant: z.record(z.string(), z.number().int().min(0)).optional(),
    }),
  }),
  'interrupt.cancel': z.strictObject({
    interrupt_id: id('an interrupt'),
    reason: z.string().max(1_000).optional(),
  }),

  'ledger.verify': z.strictObject({ session_id: id('a session').optional() }),

  'policy.get': z.strictObject({ cedar: z.boolean().optional() }),
  'policy.check': z.strictObject({
    principal: z.string().min(3).max(1_024),
    action: z.string().min(1).max(128),
    resource: z.string().min(3).max(8_192),
    context: z.record(z.string(), json).optional(),
  }),
  'policy.reload': empty,
  'audit.query': z.strictObject({
    after_seq: seq.optional(),
    since: z.number().int().min(0).optional(),
    decision: z.enum(['allow', 'deny', 'ask']).optional(),
    principal: z.string().min(1).max(1_024).optional(),
    action: z.string().min(1).max(128).optional(),
    limit: limit(10_000),
  }),
  'audit.verify': empty,
  'grant.create': z.strictObject({
    principal: z.string().min(3).max(1_024),
    action: z.string().min(1).max(128),
    resource: z.string().min(3).max(1_024),
    ask: z.boolean().optional(),
    budget: z.number().int().min(1).max(1_000_000_000).optional(),
    expires_in_ms: z.number().int().min(1).optional(),
    reason: z.string().max(1_000).optional(),
  }),
  'grant.list': z.strictObject({
    principal: z.string().min(1).max(1_024).optional(),
    all: z.boolean().optional(),
    limit: limit(10_000),
  }),
  'grant.revoke': z.strictObject({
    grant_id: id('a grant'),
    reason: z.string().max(1_000).optional(),
  }),
  'quarantine.list': z.strictObject({
    kind: z.string().min(1).max(64).optional(),
    since: z.number().int().min(0).optional(),
    limit: limit(10_000),
  }),
  'quarantine.get': z.strictObject({ quarantine_id: id('a quarantine record') }),
} as const;

export type CommandName = keyof typeof commandParams;
export type CommandParams<M extends CommandName> = z.output<(typeof commandParams)[M]>;

/** Who may call what. `null`: any authenticated connection. */
export const COMMAND_SCOPES: Readonly<Record<CommandName, Scope | 'attempt' | null>> = {
  'system.hello': null,
  'system.ping': null,
  'system.status': 'read',
  'session.create': 'write',
  'session.get': 'read',
  'session.list': 'read',
  'session.patch': 'write',
  'session.delete': 'admin',
  'session.history': 'read',
  'events.subscribe': 'read',
  'events.unsubscribe': 'read',
  'run.start': 'write',
  'run.get': 'read',
  'run.list': 'read',
  'run.cancel': 'write',
  'run.wait': 'read',
  'task.submit': 'write',
  'task.get': 'read',
  'task.list': 'read',
  'task.cancel': 'write',
  'task.dlq.list': 'read',
  'task.redrive': 'admin',
  'task.claim': 'write',
  // The attempt token in the params is the authority (see docs/protocol/acp.md#taskclaim).
  'task.heartbeat': 'attempt',
  'task.progress': 'attempt',
  'task.complete': 'attempt',
  'task.fail': 'attempt',
  'task.release': 'attempt',
  'interrupt.list': 'read',
  'interrupt.get': 'read',
  'interrupt.resolve': 'approvals',
  'interrupt.cancel': 'approvals',
  'ledger.verify': 'read',
  'policy.get': 'read',
  'policy.check': 'read',
  'policy.reload': 'admin',
  'audit.query': 'admin',
  'audit.verify': 'admin',
  'grant.create': 'admin',
  'grant.list': 'read',
  'grant.revoke': 'admin',
  'quarantine.list': 'read',
  'quarantine.get': 'read',
};

export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(commandParams, name);
}
