/** The policy decision point (DESIGN.md §8, docs/policy.md). */
export { BASE_POLICIES, BUILTIN_FILE, GRANT_ASK_POLICY, GRANT_POLICY } from './base-policies.ts';
export { type CompiledPolicy } from './cedar.ts';
export {
  actionEntity,
  DEFAULT_METHOD_SCOPES,
  MAX_CONTEXT_DEPTH,
  principalEntity,
  resourceEntity,
  toCedarContext,
} from './entities.ts';
export { grantCovers, type GrantIndex, InMemoryGrantIndex, isGrantActive } from './grants.ts';
export { readPolicyFiles } from './loader.ts';
export {
  type DecideOptions,
  type MatchedPolicy,
  PolicyDecisionPoint,
  type PolicyDecisionPointOptions,
  type PolicyExplanation,
} from './pdp.ts';
export {
  isPreparedPolicy,
  type LoadPolicyOptions,
  MAX_POLICY_FILE_BYTES,
  type PreparedPolicy,
  preparePolicy,
} from './prepare.ts';
export { applyTrust, isReadRequest, trustLevelOf, type TrustOutcome } from './trust.ts';
