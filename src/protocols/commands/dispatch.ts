/**
 * The one entry point protocols call: checks the caller may use the command (scopes; an attempt
 * token only acts on its own attempt), validates the params against the command's schema
 * (INVALID_PARAMS naming each problem), then runs it. A refused call changes nothing.
 */
import type { z } from 'zod';

import { checkParams, WardenError } from '../../core/index.ts';
import { type Caller, type CommandServices, hasScope } from './context.ts';
import { handlers, type SharedCommand } from './handlers.ts';
import { COMMAND_SCOPES, type CommandName, type CommandParams, commandParams } from './schemas.ts';

/** FORBIDDEN unless `caller` may call `method` (its params are not looked at). */
export function authorize(method: CommandName, caller: Caller): void {
  const needs = COMMAND_SCOPES[method];
  if (caller.kind === 'attempt') {
    if (needs === 'attempt' || needs === null) return;
    throw new WardenError(
      'FORBIDDEN',
      `${method}: an attempt token may only heartbeat, report progress, complete, fail or release its own attempt`,
      { details: { method, needs, scopes: [] } },
    );
  }
  if (needs === null || needs === 'attempt' || hasScope(caller, needs)) return;
  throw new WardenError(
    'FORBIDDEN',
    `${method} needs the '${needs}' scope; this token has ${[...caller.scopes].join(', ') || 'none'} (create one with: warden token create --scopes ${needs})`,
    { details: { method, needs, scopes: [...caller.scopes] } },
  );
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
  authorize(method, caller);
  const parsed = parseParams(method, params);
  const handler = handlers[method] as (
    p: unknown,
    s: CommandServices,
    c: Caller,
    signal: AbortSignal,
  ) => Promise<unknown>;
  return handler(parsed, services, caller, signal);
}
