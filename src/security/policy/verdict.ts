/**
 * From Cedar's answer to the PDP's decision (pdp.ts, steps 2–5): forbid wins, restrictions
 * that fail to evaluate deny, ask wins over allow, a grant decides only when nothing else
 * allowed, then trust narrows and audit mode allows. Pure.
 */
import type {
  Decision,
  DecisionRequest,
  DecisionResult,
  GrantRecord,
  PolicyMode,
  TrustLevel,
} from '../../core/index.ts';
import { GRANT_ASK_POLICY, GRANT_POLICY } from './base-policies.ts';
import type { CedarOutcome, CompiledPolicy } from './cedar.ts';
import { applyTrust } from './trust.ts';

/** What the policy decided, before trust and audit mode. */
export interface PolicyVerdict {
  readonly decided: Decision;
  readonly reasons: readonly string[];
  /** The grant that alone allowed the request. */
  readonly grantId: string | null;
}

/** Longest resource or principal quoted in a reason. */
const MAX_QUOTED = 200;
const quote = (s: string) => (s.length > MAX_QUOTED ? `${s.slice(0, MAX_QUOTED)}…` : s);

export function deny(reason: string): PolicyVerdict {
  return { decided: 'deny', reasons: [reason], grantId: null };
}

/** Cedar's outcome → the policy's verdict. */
export function verdictOf(
  outcome: CedarOutcome,
  byId: ReadonlyMap<string, CompiledPolicy>,
  request: DecisionRequest,
  grant: GrantRecord | null,
): PolicyVerdict {
  const restrictive = outcome.errors.filter((e) => {
    const p = byId.get(e.policy);
    return p === undefined || p.effect === 'forbid' || p.ask;
  });
  if (restrictive.length > 0)
    return {
      decided: 'deny',
      reasons: restrictive.map(
        (e) =>
          `${e.policy} failed to evaluate (a forbid or ask policy that fails denies): ${e.message}`,
      ),
      grantId: null,
    };
  const failed = outcome.errors.map((e) => `${e.policy} failed to evaluate: ${e.message}`);
  if (outcome.decision === 'deny') {
    const why =
      outcome.reasons.length > 0
        ? outcome.reasons
        : [
            `default deny: no policy allows ${request.action} on ${quote(request.resource)} for ${quote(request.principal)}`,
          ];
    return { decided: 'deny', reasons: [...why, ...failed], grantId: null };
  }
  const own = outcome.reasons.filter((id) => id !== GRANT_POLICY && id !== GRANT_ASK_POLICY);
  if (own.length > 0) {
    const asks = own.filter((id) => byId.get(id)?.ask === true);
    return asks.length > 0
      ? { decided: 'ask', reasons: asks, grantId: null }
      : { decided: 'allow', reasons: own, grantId: null };
  }
  // Only the grant policies allowed it: they need context.grant, which only the PDP sets.
  const ask = outcome.reasons.includes(GRANT_ASK_POLICY);
  const id = grant?.id ?? '?';
  return {
    decided: ask ? 'ask' : 'allow',
    reasons: [`grant ${id}${ask ? ' (needs approval: the grant has a review gate)' : ''}`],
    grantId: grant?.id ?? null,
  };
}

export interface ResultContext {
  readonly trust: TrustLevel;
  /** Whether the request only reads (what `observe` may do). */
  readonly read: boolean;
  readonly mode: PolicyMode;
  readonly version: string;
}

/** The verdict after trust and audit mode, as the frozen result the caller gets. */
export function resultOf(
  verdict: PolicyVerdict,
  request: DecisionRequest,
  ctx: ResultContext,
): DecisionResult {
  const reasons = [...verdict.reasons];
  let decided = verdict.decided;
  if (decided !== 'deny') {
    const capped = applyTrust(decided, ctx.trust, request.principal, request.action, ctx.read);
    if (capped.reason !== null) reasons.push(capped.reason);
    decided = capped.decision;
  }
  let decision = decided;
  if (ctx.mode === 'audit' && decided !== 'allow') {
    reasons.push(`audit mode: the policy decided ${decided}; allowed and audited`);
    decision = 'allow';
  }
  return Object.freeze({
    decision,
    decided,
    reasons: Object.freeze(reasons),
    policy_version: ctx.version,
    mode: ctx.mode,
    ...(verdict.grantId !== null && decided !== 'deny' ? { grant_id: verdict.grantId } : {}),
    cached: false,
  });
}
