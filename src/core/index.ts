export {
  backoffCeilingMs,
  backoffDelayMs,
  type BackoffPolicy,
  DEFAULT_BACKOFF,
} from './backoff.ts';
export { type Clock, ManualClock, systemClock } from './clock.ts';
export { deepFreeze } from './deep-freeze.ts';
export {
  coerceError,
  ERROR_CATALOGUE,
  type ErrorCode,
  errors,
  type ErrorSpec,
  isWardenError,
  WardenError,
} from './errors.ts';
export { EVENT_TYPES, type EventType, SYSTEM_SESSION_KEY } from './events.ts';
export {
  decideFailure,
  errorFingerprint,
  type FailureDecision,
  type FailureInput,
  type FailureOutcome,
} from './failure-policy.ts';
export {
  type ChainBreak,
  type ChainedAuditBody,
  type ChainedEventBody,
  findAuditBreak,
  findChainBreak,
  GENESIS_HASH,
  hashAuditRecord,
  hashEvent,
  hashEventWithData,
  sha256Hex,
} from './hash-chain.ts';
export { IdGenerator, type IdPrefix, randomToken } from './ids.ts';
export {
  INTERRUPT_EXPIRY,
  INTERRUPT_KINDS,
  INTERRUPT_STATUSES,
  INTERRUPT_TTL_MS,
  interruptExpiresAt,
  type InterruptKind,
  type InterruptResponse,
  type InterruptStatus,
} from './interrupt.ts';
export { canonicalJson, isJsonObject, type JsonObject, type JsonValue, readPath } from './json.ts';
export {
  assertWithin,
  boundedMessage,
  DEFAULT_LIMITS,
  jsonBytes,
  type Limits,
  MIN_LIMIT_BYTES,
  resolveLimit,
  truncateText,
  utf8Bytes,
} from './limits.ts';
export {
  checkParams,
  clockParam,
  describeValue,
  invalidParams,
  param,
  type ParamIssue,
} from './params.ts';
export {
  cedarEntity,
  cedarLike,
  cedarString,
  hasLoneSurrogate,
  type LikePart,
  WILDCARD,
} from './policy/cedar-text.ts';
export {
  ACTION_GROUP_NAMES,
  ACTION_GROUPS,
  COMMAND_RISKS,
  type CommandRisk,
  COMPOUND_COMMAND_CHARS,
  ENTITY_TYPES,
  isPolicyAction,
  METHOD_SCOPES,
  type MethodScope,
  type MethodScopeTable,
  POLICY_ACTIONS,
  type PolicyAction,
  PRINCIPAL_TYPES,
  type PrincipalKind,
  RESOURCE_TYPES,
  type ResourceKind,
} from './policy/model.ts';
export {
  type AuditRecord,
  type Decision,
  type DecisionRequest,
  type DecisionResult,
  DECISIONS,
  type GrantRecord,
  POLICY_MODES,
  type PolicyMode,
  type PolicyVersionRecord,
  type QuarantineRecord,
  TRUST_LEVELS,
  type TrustLevel,
} from './policy/types.ts';
export * from './policy/types.ts';
export {
  type CompiledYamlPolicy,
  type CompileYamlOptions,
  compileYamlPolicy,
  policyInvalid,
  type PolicyIssue,
} from './policy/yaml.ts';
export {
  BUDGET_CAPS,
  type BudgetCap,
  type PolicyFile,
  policyFileSchema,
  type PolicyRule,
  policyRuleSchema,
} from './policy/yaml-schema.ts';
export {
  assertTransition,
  canTransition,
  isTerminalProcessState,
  PRIORITIES,
  type Priority,
  priorityRank,
  PROCESS_STATES,
  type ProcessState,
} from './process-state.ts';
export {
  addUsage,
  DEFAULT_QUOTA,
  emptyUsage,
  estimateTokens,
  grantQuota,
  limitForReason,
  mergeQuota,
  modelCallExceeded,
  type Quota,
  stepBoundExceeded,
  TERMINAL_REASONS,
  type TerminalReason,
  toolCallExceeded,
  type Usage,
  type UsageDelta,
  usageOverLimit,
} from './quota.ts';
export {
  checkRate,
  DEFAULT_RATE_LIMITS,
  minuteCount,
  newRateState,
  RATE_BUCKETS,
  RATE_WINDOWS,
  type RateDecision,
  rateLimitedError,
  type RateLimits,
  type RateState,
} from './rate-limit.ts';
export { hasScope, isTokenScope, parseScopes, TOKEN_SCOPES, type TokenScope } from './scopes.ts';
export { shellQuote } from './shell-quote.ts';
export { DEFAULT_AGING_MS, sortKey } from './sort-key.ts';
export {
  canTaskTransition,
  isTerminalTaskState,
  TASK_KINDS,
  TASK_STATES,
  type TaskKind,
  type TaskState,
} from './task-state.ts';
export {
  MCP_DEFAULT_TIMEOUT_MS,
  type McpConfigValue,
  type McpHttpServerConfig,
  type McpSecretRef,
  type McpServerConfig,
  mcpServerListSchema,
  mcpServerSchema,
  type McpStdioServerConfig,
} from './tools/mcp-config.ts';
export {
  evaluateCondition,
  jsonEqual,
  readField,
  type RoutingContext,
} from './workflow/condition.ts';
export { formatDurationMs, parseDurationMs } from './workflow/duration.ts';
export {
  type Branch,
  BRANCH_STATUSES,
  type BranchStatus,
  type Envelope,
  type HistoryEntry,
  MAX_HISTORY,
  newEnvelope,
  type PendingStep,
} from './workflow/envelope.ts';
export {
  buildWorkflow,
  formatPath,
  type LoadedWorkflow,
  parseWorkflowText,
  resolveWorkflow,
} from './workflow/load.ts';
export {
  advance,
  type CancelledBranch,
  cancelRun,
  completeStep,
  type Effect,
  failStep,
  type ForkedStep,
  type InterruptOutcome,
  type MachineOptions,
  nextInstruction,
  outputKey,
  type OutstandingStep,
  outstandingStep,
  outstandingSteps,
  type RaisedInterrupt,
  resumeAfterInterrupt,
  route,
  routingContext,
  type RoutingFunction,
  type RunSnapshot,
  stageByName,
  startStage,
  type StepFailure,
  type StepSuccess,
  transition,
  type Transitioned,
} from './workflow/machine.ts';
export { afterOf, isParallel, joinOf, requiresOf } from './workflow/parallel-graph.ts';
export {
  type AgentSpec,
  type Condition,
  type ExternalAgentSpec,
  type InterruptSpec,
  JOIN_STRATEGIES,
  type JoinStrategy,
  type LlmAgentSpec,
  type RoutingRule,
  RUN_MODES,
  type RunMode,
  type ScriptedResponse,
  type ShellAgentSpec,
  type StageSpec,
  type ToolAgentSpec,
  type Workflow,
  type WorkflowInput,
  workflowSchema,
} from './workflow/schema.ts';
export {
  type ParsedTemplate,
  parseTemplate,
  renderTemplate,
  TEMPLATE_ROOTS,
  type TemplatePart,
  type TemplateProblem,
  templateProblems,
  type TemplateRoot,
} from './workflow/template.ts';
export {
  END,
  ISSUE_SEVERITIES,
  type IssueSeverity,
  stageTargets,
  unreachableStages,
  type ValidateOptions,
  validateWorkflow,
  type WorkflowIssue,
} from './workflow/validate.ts';
