/**
 * The one entry point protocols call: checks the caller may use the command (scopes; an attempt
 * token only acts on its own attempt), validates the params against the command's schema
 * (INVALID_PARAMS naming each problem), then runs it. A refused call changes nothing.
 */
import type { z } from 'zod';

import {
  checkParams,
  type DecisionResult,
  type MethodScope,
  type MethodScopeTable,
  WardenError,
} from '../../core/index.ts';
import { PolicyDecisionPoint, type Security } from '../../security/index.ts';
import type { Caller, CommandServices } from './context.ts';
import { handlers, type SharedCommand } from './handlers.ts';
import { COMMAND_SCOPES, type CommandName, type CommandParams, commandParams } from './schemas.ts';

/** The scope each method needs, as the PDP's method table (`attempt` methods are `worker`). */
export const COMMAND_SCOPES_TABLE: MethodScopeTable = Object.freeze(
  Object.fromEntries(
    Object.entries(COMMAND_SCOPES)
      .filter(([, needs]) => needs !== null)
      .map(([method, needs]) => [method, needs === 'attempt' ? 'worker' : needs]),
  ) as Record<string, MethodScope>,
);

/** Decides with only the built-in policies (token scopes), for servers without a policy service. */
const BUILTIN_ONLY = PolicyDecisionPoint.empty({ methodScopes: COMMAND_SCOPES_TABLE });

/**
 * Which ACP decisions go to the audit log: every deny and ask, and every allow of a method
 * that changes something — except the worker protocol's own traffic (claims, heartbeats,
 * progress, completions), which the task's events already record one by one and which would
 * otherwise put an audit write in front of every heartbeat. Allowed reads are not audited.
 */
function auditable(method: CommandName, decision: string): boolean {
  if (decision !== 'allow') return true;
  const needs = COMMAND_SCOPES[method];
  return needs === 'write' || needs === 'admin' || needs === 'approvals'
    ? method !== 'task.claim'
    : false;
}

/** The PDP principal of a caller: `token:<id>` (`token:admin`) or `attempt:<task id>`. */
export function callerPrincipal(caller: Caller): string {
  if (caller.kind === 'attempt') return `attempt:${caller.attempt?.taskId ?? caller.id}`;
  return caller.kind === 'admin' ? 'token:admin' : `token:${caller.id}`;
}

/**
 * FORBIDDEN unless the policy decision point allows `caller` to call `method` (DESIGN.md §8:
 * there is no other authorization code). The built-in policies give each token the methods of
 * its scopes and an attempt token the worker methods of its own task; operators may `forbid`
 * more. Every decision is audited (with a policy service); the call waits for the record.
 * Audit mode does not apply here: a call is allowed only if the policy decided allow.
 */
export async function authorize(
  method: CommandName,
  caller: Caller,
  security?: Security,
  params?: unknown,
): Promise<void> {
  if (COMMAND_SCOPES[method] === null) return; // any authenticated connection (hello, ping)
  const taskId =
    params !== null &&
    typeof params === 'object' &&
    typeof (params as { task_id?: unknown }).task_id === 'string'
      ? (params as { task_id: string }).task_id
      : undefined;
  const request = {
    principal: callerPrincipal(caller),
    action: `acp:${method}`,
    resource: `method:${method}`,
    ...(caller.kind === 'token' ? { scopes: [...caller.scopes] } : {}),
    ...(caller.kind === 'attempt' && taskId !== undefined ? { context: { task_id: taskId } } : {}),
  };
  const result = enforced(
    security ? security.policy.decide(request) : BUILTIN_ONLY.decide(request),
  );
  if (security && auditable(method, result.decision))
    await security.audit.record([
      {
        request,
        result,
        trace_id: 'acp',
        context: { caller: caller.name, connection: caller.connectionId },
      },
    ]);
  if (result.decision === 'allow') return;
  const needs = COMMAND_SCOPES[method];
  throw new WardenError(
    'FORBIDDEN',
    caller.kind === 'attempt'
      ? `${method}: an attempt token may only heartbeat, report progress, complete, fail or release its own attempt`
      : `${method} needs the '${needs === 'attempt' ? 'write' : needs}' scope or a policy that allows it; this token has ${[...caller.scopes].join(', ') || 'none'} (${result.reasons.join('; ')})`,
    {
      details: {
        method,
        needs,
        scopes: [...caller.scopes],
        reasons: result.reasons,
        policy_version: result.policy_version,
      },
    },
  );
}

/**
 * Audit mode (`mode: audit`) is for trying agent policies on real traffic: it must never give
 * a token methods beyond its scopes, so ACP enforces what the policy decided (and audits that).
 */
function enforced(result: DecisionResult): DecisionResult {
  if (result.decision === result.decided) return result;
  return {
    ...result,
    decision: result.decided,
    reasons: [
      ...result.reasons.filter((r) => !r.startsWith('audit mode:')),
      `audit mode does not apply to ACP methods: the policy decided ${result.decided}`,
    ],
  };
}

export function parseParams<M extends CommandName>(method: M, params: unknown): CommandParams<M> {
  const schema = commandParams[method] as z.ZodType<unknown>;
  return checkParams(method, schema, params ?? {}) as CommandParams<M>;
}

export async function dispatch(
  method: SharedCommand,
  params: unknown,
  services: CommandServices,
  caller: Caller,
  signal: AbortSignal,
): Promise<unknown> {
  await authorize(method, caller, services.security, params);
  const parsed = parseParams(method, params);
  const handler = handlers[method] as (
    p: unknown,
    s: CommandServices,
    c: Caller,
    signal: AbortSignal,
  ) => Promise<unknown>;
  return handler(parsed, services, caller, signal);
}
