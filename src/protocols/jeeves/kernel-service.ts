/**
 * KernelService onto the kernel's process table (src/kernel/process-table.ts): bare process
 * control blocks, their quotas and usage, and per-user rate-limit checks.
 *
 * Identity (§4.1): CreateProcess reads `user_id`/`session_id` from its body, the RPCs that name
 * a pid from the call's metadata; empty ⇒ UNAUTHENTICATED, checked after `pid` and before the
 * process is looked up. Warden checks it on every pid-naming RPC (Go skipped CheckQuota and
 * RecordUsage), and every RPC sees only the authenticated caller's processes (defect 15).
 */
import { WardenError } from '../../core/errors.ts';
import {
  isWireValue,
  jeevesUsageOf,
  pcbElapsedSeconds,
  priorityFromWire,
  priorityToWire,
  processStateFromWire,
  processStateToWire,
  requireProcessState,
  resolveResourceQuota,
  type ResourceQuotaInput,
  resourceQuotaOf,
  resourceUsageWire,
  WIRE_PROCESS_STATE,
  WIRE_SCHEDULING_PRIORITY,
} from '../../core/jeeves/index.ts';
import type { RateLimits } from '../../core/rate-limit.ts';
import { type PcbActor, pcbMetaOf } from '../../kernel/index.ts';
import type { ProcessRecord } from '../../store/index.ts';
import type { RpcContext, ServiceImpl } from './server.ts';
import { required } from './sessions.ts';

/** jeeves' rate-limit defaults (§4.5): per user and endpoint; its burst size was unused. */
export const JEEVES_RATE_LIMITS: RateLimits = Object.freeze({
  per_minute: 60,
  per_hour: 1_000,
  per_day: 10_000,
  burst: 0,
});

export function kernelServiceImpl(): ServiceImpl {
  return {
    CreateProcess: {
      acp: 'run.start',
      unary: async (req, ctx) => {
        const pid = required(req.pid, 'pid');
        const userId = bodyIdentity(req.user_id, 'user_id');
        const sessionId = bodyIdentity(req.session_id, 'session_id');
        if (!isWireValue(WIRE_SCHEDULING_PRIORITY, req.priority))
          throw new WardenError(
            'INVALID_PARAMS',
            `priority ${String(req.priority)} is not a SchedulingPriority value`,
          );
        const { process } = await ctx.services.kernel.processTable.create({
          owner: ownerOf(ctx),
          pid,
          userId,
          sessionId,
          requestId: typeof req.request_id === 'string' ? req.request_id : '',
          priority: priorityFromWire(req.priority),
          quota: resolveResourceQuota(req.quota as ResourceQuotaInput | null, 'quota'),
        });
        return pcbWire(ctx, process);
      },
    },
    GetProcess: {
      acp: 'run.get',
      unary: async (req, ctx) => {
        const pid = required(req.pid, 'pid');
        return pcbWire(ctx, await ctx.services.kernel.processTable.get(actorOf(ctx), pid));
      },
    },
    ScheduleProcess: {
      acp: 'run.start',
      unary: async (req, ctx) => {
        const pid = required(req.pid, 'pid');
        return pcbWire(ctx, await ctx.services.kernel.processTable.schedule(actorOf(ctx), pid));
      },
    },
    GetNextRunnable: {
      acp: 'task.claim',
      unary: async (_req, ctx) =>
        pcbWire(ctx, await ctx.services.kernel.processTable.nextRunnable(scopeOf(ctx))),
    },
    TransitionState: {
      acp: 'task.claim',
      unary: async (req, ctx) => {
        const pid = required(req.pid, 'pid');
        const to = requireProcessState(req.new_state, 'new_state');
        const actor = actorOf(ctx);
        const reason = typeof req.reason === 'string' ? req.reason : '';
        return pcbWire(
          ctx,
          await ctx.services.kernel.processTable.transition(actor, pid, to, reason),
        );
      },
    },
    TerminateProcess: {
      acp: 'run.cancel',
      unary: async (req, ctx) => {
        const pid = required(req.pid, 'pid');
        const actor = actorOf(ctx);
        const p = await ctx.services.kernel.processTable.terminate(actor, pid, {
          reason: typeof req.reason === 'string' ? req.reason : '',
          force: req.force === true,
        });
        return pcbWire(ctx, p);
      },
    },
    CheckQuota: {
      acp: 'run.get',
      unary: async (req, ctx) => {
        const pid = required(req.pid, 'pid');
        const check = await ctx.services.kernel.processTable.checkQuota(actorOf(ctx), pid);
        // An unknown pid is within bounds with nothing to show, as in the original.
        if (!check) return { within_bounds: true, exceeded_reason: '' };
        const { quota, usage } = quotaAndUsage(ctx, check.process);
        return {
          within_bounds: check.exceeded === null,
          exceeded_reason: check.exceeded ?? '',
          usage,
          quota,
        };
      },
    },
    RecordUsage: {
      acp: 'task.claim',
      unary: async (req, ctx) => {
        const pid = required(req.pid, 'pid');
        const p = await ctx.services.kernel.processTable.recordUsage(actorOf(ctx), pid, {
          llm_calls: req.llm_calls as number,
          tool_calls: req.tool_calls as number,
          agent_hops: req.agent_hops as number,
          tokens_in: req.tokens_in as number,
          tokens_out: req.tokens_out as number,
          inference_requests: req.inference_requests as number,
          inference_input_chars: req.inference_input_chars as number,
        });
        return quotaAndUsage(ctx, p).usage;
      },
    },
    CheckRateLimit: {
      acp: 'task.submit',
      unary: async (req, ctx) => Promise.resolve(checkRateLimit(req, ctx)),
    },
    ListProcesses: {
      acp: 'run.list',
      unary: async (req, ctx) => {
        if (!isWireValue(WIRE_PROCESS_STATE, req.state))
          throw new WardenError(
            'INVALID_PARAMS',
            `state ${String(req.state)} is not a ProcessState value (0 lists every state)`,
          );
        const state = processStateFromWire(req.state);
        const userId = typeof req.user_id === 'string' && req.user_id !== '' ? req.user_id : null;
        const rows = await ctx.services.kernel.processTable.list(scopeOf(ctx), {
          ...(state ? { state } : {}),
          ...(userId ? { userId } : {}),
        });
        return { processes: rows.map((p) => pcbWire(ctx, p)) };
      },
    },
    GetProcessCounts: {
      acp: 'run.list',
      unary: async (_req, ctx) => {
        const counts = await ctx.services.kernel.processTable.counts(scopeOf(ctx));
        return { counts_by_state: counts.byState, total: counts.total, queue_depth: counts.ready };
      },
    },
  };
}

/** The tenant whose processes a call sees: the authenticated caller. */
function ownerOf(ctx: RpcContext): string {
  return `${ctx.caller.kind}:${ctx.caller.id}`;
}

/** The actor of an RPC that names a pid: `user_id` and `session_id` metadata are required. */
function actorOf(ctx: RpcContext): PcbActor {
  const missing = [
    ...(ctx.identity.userId ? [] : ['user_id']),
    ...(ctx.identity.sessionId ? [] : ['session_id']),
  ];
  if (missing.length > 0)
    throw new WardenError(
      'UNAUTHORIZED',
      `missing request metadata: send ${missing.join(' and ')} metadata with the call`,
    );
  return { owner: ownerOf(ctx), userId: ctx.identity.userId };
}

/** The actor of a call naming no pid: the caller, narrowed to the metadata's user if any. */
function scopeOf(ctx: RpcContext): PcbActor {
  return { owner: ownerOf(ctx), userId: ctx.identity.userId };
}

function bodyIdentity(value: unknown, field: string): string {
  if (typeof value === 'string' && value !== '') return value;
  throw new WardenError('UNAUTHORIZED', `${field} is required in the CreateProcess request`);
}

function quotaAndUsage(ctx: RpcContext, p: ProcessRecord) {
  const meta = pcbMetaOf(p)!;
  const now = ctx.services.kernel.clock.now();
  return {
    quota: resourceQuotaOf(p.quota, meta.quota),
    usage: resourceUsageWire(
      jeevesUsageOf(p.usage, meta),
      pcbElapsedSeconds(p.created_at, p.completed_at, now),
    ),
  };
}

/** A ProcessControlBlock message with every field Warden has (defect 14). */
function pcbWire(ctx: RpcContext, p: ProcessRecord): unknown {
  const meta = pcbMetaOf(p)!;
  const { quota, usage } = quotaAndUsage(ctx, p);
  return {
    pid: meta.pid,
    request_id: meta.request_id,
    user_id: p.user_id,
    session_id: meta.session_id,
    state: processStateToWire(p.state),
    priority: priorityToWire(p.priority),
    quota,
    usage,
    created_at_ms: p.created_at,
    started_at_ms: p.started_at ?? 0,
    completed_at_ms: p.completed_at ?? 0,
    last_scheduled_at_ms: meta.last_scheduled_at ?? 0,
    current_stage: '',
    current_service: '',
    pending_interrupt: 0,
    parent_pid: '',
    child_pids: [],
  };
}

/**
 * §4.5: minute → hour → day windows of the user and endpoint; recorded in every window only when
 * all pass and `record` is set. The windows are this node's (they reset on restart), as the
 * original's were.
 */
function checkRateLimit(req: Record<string, unknown>, ctx: RpcContext): unknown {
  const endpoint = required(req.endpoint, 'endpoint');
  const userId =
    typeof req.user_id === 'string' && req.user_id !== ''
      ? req.user_id
      : (ctx.identity.userId ?? ctx.caller.name);
  const limiter = ctx.services.kernel.rateLimiter;
  const key = `jeeves:${ownerOf(ctx)}\u0000${userId}\u0000${endpoint}`;
  limiter.setLimits(key, JEEVES_RATE_LIMITS);
  const decision = limiter.check(key, req.record === true);
  if (decision.allowed)
    return { allowed: true, exceeded: false, reason: '', remaining: decision.remaining };
  return {
    allowed: false,
    exceeded: true,
    reason: `rate limit exceeded (${decision.limit_type ?? 'minute'})`,
    limit_type: decision.limit_type ?? '',
    current_count: decision.current_count ?? 0,
    limit: decision.limit ?? 0,
    retry_after_seconds: decision.retry_after_ms / 1000,
    remaining: 0,
  };
}
