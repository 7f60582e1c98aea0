/**
 * Exec approvals (reference §7, §4.19) as Warden confirmation interrupts: a tool call the
 * policy answers `ask` waits on a `confirmation` interrupt, announced as
 * `exec.approval.requested`; it can be answered from an OpenClaw client
 * (`exec.approval.resolve`), from `warden approve|deny` or over ACP — whichever comes first
 * wins (the kernel's compare-and-set) and every client sees `exec.approval.resolved`.
 * `allow-always` is not offered: a standing permission is a policy rule or a grant in Warden,
 * made deliberately, not a click on a prompt.
 */
import { z } from 'zod';

import { isWardenError } from '../../../core/index.ts';
import { type InterruptRecord, waitForChange } from '../../../store/index.ts';
import type { MethodHandler } from '../connection.ts';
import { gatewayError, GatewayFailure, invalidRequest } from '../frames.ts';

const resolveParams = z.looseObject({
  id: z.string().min(1).max(256),
  decision: z.string(),
});

const waitParams = z.looseObject({
  id: z.string().min(1).max(256),
  timeoutMs: z.number().int().min(0).max(3_600_000).optional(),
});

function notFound(id: string): GatewayFailure {
  return new GatewayFailure(gatewayError('APPROVAL_NOT_FOUND', 'unknown approval id', { id }));
}

/** The OpenClaw decision of a settled confirmation, or null while it is pending. */
export function decisionOf(interrupt: InterruptRecord): string | null {
  if (interrupt.status === 'pending') return null;
  const response = interrupt.response ?? {};
  if (interrupt.status === 'resolved' && response.approved !== false)
    return typeof response.decision === 'string' && response.decision.startsWith('allow')
      ? response.decision
      : 'allow-once';
  return 'deny';
}

export function approvalMethods(): Record<string, MethodHandler> {
  return {
    'exec.approval.resolve': async (call) => {
      const parsed = resolveParams.safeParse(call.params);
      if (!parsed.success)
        throw invalidRequest('invalid exec.approval.resolve params: id and decision required');
      const { id, decision } = parsed.data;
      if (decision === 'allow-always')
        throw invalidRequest(
          'invalid decision: allow-always is not available (Warden keeps standing permissions in policy rules and grants); use allow-once',
          { unavailableDecisions: ['allow-always'] },
        );
      if (decision !== 'allow-once' && decision !== 'deny')
        throw invalidRequest('invalid decision');
      const kernel = call.services.kernel;
      const interrupt = await kernel.store.getInterrupt(id);
      if (interrupt?.kind !== 'confirmation' || interrupt.status !== 'pending') throw notFound(id);
      try {
        await kernel.resolveInterrupt(
          id,
          { approved: decision === 'allow-once', decision },
          `openclaw:${call.connection.caller.name}`,
        );
      } catch (error) {
        // Answered or expired meanwhile (another client, the CLI): it is no longer pending.
        if (isWardenError(error) && (error.code === 'INVALID_STATE' || error.code === 'NOT_FOUND'))
          throw notFound(id);
        throw error;
      }
      return { ok: true };
    },

    'exec.approval.waitDecision': async (call) => {
      const parsed = waitParams.safeParse(call.params);
      if (!parsed.success)
        throw invalidRequest('invalid exec.approval.waitDecision params: id required');
      const { id, timeoutMs } = parsed.data;
      const store = call.services.kernel.store;
      const first = await store.getInterrupt(id);
      if (first?.kind !== 'confirmation') throw notFound(id);
      const settled = await waitForChange(
        store,
        async () => {
          const current = await store.getInterrupt(id);
          const decision = current ? decisionOf(current) : 'deny';
          return decision === null
            ? undefined
            : { id, decision, resolvedBy: current?.resolver ?? null };
        },
        { deadline: Date.now() + (timeoutMs ?? 30_000), now: Date.now, signal: call.signal },
      );
      return settled ?? null;
    },
  };
}
