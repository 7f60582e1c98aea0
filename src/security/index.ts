/** Authentication: API tokens and the admin token (DESIGN.md §8). */
export {
  ADMIN_SCOPES,
  type AdminToken,
  ensureAdminToken,
  newAdminSecret,
  sameSecret,
  verifyAdmin,
} from './admin-token.ts';
export { AuditLog } from './audit-log.ts';
export { type GrantInput, GrantService, grantStatus } from './grants.ts';
export { HostIntegrity, type IntegrityChange } from './integrity.ts';
export {
  actionEntity,
  applyTrust,
  BASE_POLICIES,
  BUILTIN_FILE,
  type CompiledPolicy,
  type DecideOptions,
  DEFAULT_METHOD_SCOPES,
  GRANT_ASK_POLICY,
  GRANT_POLICY,
  grantCovers,
  type GrantIndex,
  InMemoryGrantIndex,
  isGrantActive,
  isPreparedPolicy,
  isReadRequest,
  type LoadPolicyOptions,
  type MatchedPolicy,
  MAX_CONTEXT_DEPTH,
  MAX_POLICY_FILE_BYTES,
  PolicyDecisionPoint,
  type PolicyDecisionPointOptions,
  type PolicyExplanation,
  type PreparedPolicy,
  preparePolicy,
  principalEntity,
  readPolicyFiles,
  resourceEntity,
  toCedarContext,
  trustLevelOf,
  type TrustOutcome,
} from './policy/index.ts';
export { PolicyService, type ReloadOutcome } from './policy-service.ts';
export { Redactor } from './redact.ts';
export {
  Security,
  type SecurityConfig,
  type SecurityOptions,
  securityOptionsOf,
} from './runtime.ts';
export { SecretStore } from './secrets.ts';
export {
  type CreatedToken,
  type CreateTokenInput,
  type Principal,
  type TokenInfo,
  TokenService,
  type TokenServiceOptions,
} from './tokens.ts';
export { agentPrincipal, createToolPath, type ToolPathDeps } from './tool-path.ts';
