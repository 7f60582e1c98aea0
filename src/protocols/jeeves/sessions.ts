/**
 * Where a jeeves orchestration session lives in Warden: the run started by InitializeSession,
 * in a Warden session whose key is derived from the caller, the jeeves user and the client's
 * `process_id`. Another caller (or user) names a different key, so it cannot reach the run
 * (jeeves defect #15: sessions are bound to who created them) — it is simply NOT_FOUND.
 */
import { createHash } from 'node:crypto';

import { WardenError } from '../../core/errors.ts';
import type { Kernel } from '../../kernel/index.ts';
import type { ProcessRecord } from '../../store/index.ts';
import type { RpcContext } from './server.ts';

/** The tenant a call acts for: the authenticated caller, narrowed by the `user_id` metadata. */
export function tenantOf(ctx: RpcContext): { key: string; userId: string } {
  const userId = ctx.identity.userId ?? ctx.caller.name;
  return { key: `${ctx.caller.kind}:${ctx.caller.id}\u0000${userId}`, userId };
}

/** The Warden session key of a jeeves `process_id` for this tenant. */
export function sessionKeyFor(ctx: RpcContext, processId: string): string {
  const digest = createHash('sha256')
    .update(tenantOf(ctx).key)
    .update('\u0000')
    .update(processId)
    .digest('base64url');
  return `jeeves:${digest}`;
}

/**
 * The owner of a step a jeeves client takes (a remote owner: only its lease decides). Clients
 * of one session share it, so asking again gets the same step, unless they send `worker_id`
 * metadata: then each worker holds its own step (a parallel session's branches run at once).
 */
export function stepOwner(ctx: RpcContext, processId: string): string {
  const session = sessionKeyFor(ctx, processId).slice('jeeves:'.length, 'jeeves:'.length + 32);
  const worker = ctx.identity.workerId;
  if (worker === null) return `remote/jeeves/${session}`;
  const digest = createHash('sha256').update(worker).digest('base64url').slice(0, 16);
  return `remote/jeeves/${session}/${digest}`;
}

/** The newest run of the process's session, or undefined. */
export async function findRun(
  kernel: Kernel,
  ctx: RpcContext,
  processId: string,
): Promise<ProcessRecord | undefined> {
  const session = await kernel.store.getSessionByKey(sessionKeyFor(ctx, processId));
  if (!session) return undefined;
  const runs = await kernel.store.listProcesses({ sessionId: session.id, limit: 1_000 });
  return runs.reduce<ProcessRecord | undefined>(
    (latest, run) =>
      !latest ||
      run.created_at > latest.created_at ||
      (run.created_at === latest.created_at && run.pid > latest.pid)
        ? run
        : latest,
    undefined,
  );
}

export async function mustFindRun(
  kernel: Kernel,
  ctx: RpcContext,
  processId: string,
): Promise<ProcessRecord> {
  const run = await findRun(kernel, ctx, processId);
  if (!run)
    throw new WardenError(
      'NOT_FOUND',
      `no orchestration session '${processId}' for this caller; call InitializeSession first`,
    );
  return run;
}

/** INVALID_PARAMS unless `value` is a non-empty string (jeeves: required fields). */
export function required(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '')
    throw new WardenError('INVALID_PARAMS', `${field} is required`);
  return value;
}
