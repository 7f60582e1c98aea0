/**
 * The policy decision point's contract (DESIGN.md §8): every enforcement point asks
 * `decide({principal, action, resource, context})` and gets `{decision, reasons, policy_version}`.
 * Pure types, shared by the PDP (security/policy), the store (grants, audit, quarantine, policy
 * versions) and the enforcement points (tools, ACP methods).
 *
 * Names are `type:id` strings, turned into Cedar entities by the PDP:
 * - principals: `agent:<workflow>/<stage>`, `token:<token id>` (`token:admin` for the admin token),
 *   `attempt:<task id>`, `skill:<name>`, `user:<name>`;
 * - actions: `tool.call`, `http.request`, `fs.read`, `fs.write`, `fs.list`, `shell.exec`, `kv.get`,
 *   `kv.set`, `task.submit`, `run.spawn`, `secret.use`, `acp:<method>` (e.g. `acp:session.list`);
 * - resources: `tool:<name>`, `url:<absolute url>`, `path:<absolute real path>`, `command:<text>`,
 *   `kv:<namespace>/<key>`, `lane:<name>`, `workflow:<name>`, `method:<acp method>`,
 *   `secret:<NAME>` (a secret used by reference).
 * The Cedar entity model behind these names is in docs/policy.md (model.ts here).
 */

export const DECISIONS = ['allow', 'deny', 'ask'] as const;
export type Decision = (typeof DECISIONS)[number];

/**
 * How far a principal may act on its own (kgents trust levels), applied after the policy:
 * - `observe`: read actions only (`fs.read`, `fs.list`, `kv.get`, a GET `http.request`, read ACP methods);
 * - `suggest`: reads, plus `task.submit` (proposing work); everything else is denied;
 * - `act-with-approval`: whatever the policy allows, but every non-read action becomes `ask`;
 * - `act`: whatever the policy decides (the default).
 */
export const TRUST_LEVELS = ['observe', 'suggest', 'act-with-approval', 'act'] as const;
export type TrustLevel = (typeof TRUST_LEVELS)[number];

/** Enforce decisions, or only record them (`audit`: a deny or ask is audited, then allowed). */
export const POLICY_MODES = ['enforce', 'audit'] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];

export interface DecisionRequest {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  /** Facts the decision may use: guard findings (`risk`, `injection`), usage, request details. */
  readonly context?: Readonly<Record<string, unknown>>;
  /**
   * For `token:` principals: the scopes authentication verified for the token (Cedar sees them
   * as `principal.scopes`). `token:admin` always has every scope; ignored for other principals.
   */
  readonly scopes?: readonly string[];
}

export interface DecisionResult {
  /** What the enforcement point must do (in `audit` mode always `allow`). */
  readonly decision: Decision;
  /** What the policy decided, before the audit-only mode turned it into `allow`. */
  readonly decided: Decision;
  /** Why, for people: the determining policies and trust/grant rules, never empty. */
  readonly reasons: readonly string[];
  /** Content hash of the policy the decision was made under. */
  readonly policy_version: string;
  readonly mode: PolicyMode;
  /** The grant that allowed it (its budget must be consumed by the enforcement point). */
  readonly grant_id?: string;
  /** True when the answer came from the decision cache. */
  readonly cached: boolean;
}

/** A capability grant (kgents covenant): a principal may do `action` on `resource`. */
export interface GrantRecord {
  readonly id: string;
  readonly principal: string;
  readonly action: string;
  /** An exact resource, or a prefix ending in `*` (`url:https://api.example.com/*`). */
  readonly resource: string;
  /** A person must approve each use (a review gate). */
  readonly ask: boolean;
  /** Uses allowed; null means unlimited. */
  readonly budget: number | null;
  readonly used: number;
  readonly expires_at: number | null;
  readonly revoked_at: number | null;
  readonly revoked_by: string | null;
  readonly revoke_reason: string | null;
  readonly created_at: number;
  readonly created_by: string;
  readonly reason: string | null;
}

/** One audited decision: append-only, hash-chained, separate from the event log. */
export interface AuditRecord {
  readonly seq: number;
  readonly ts: number;
  readonly trace_id: string;
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  /** The decision enforced. */
  readonly decision: Decision;
  /** The decision the policy made (differs from `decision` only in audit-only mode). */
  readonly decided: Decision;
  readonly reasons: readonly string[];
  readonly policy_version: string;
  /** Run, step, tool call, resolver… whatever applies; secrets redacted. */
  readonly context: Readonly<Record<string, unknown>>;
  readonly prev_hash: string;
  readonly hash: string;
}

/** A blocked action kept with its full context for review. */
export interface QuarantineRecord {
  readonly id: string;
  readonly ts: number;
  readonly trace_id: string;
  /** Which guard or rule blocked it: `ssrf`, `command`, `injection`, `path`, `policy`, `integrity`. */
  readonly kind: string;
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly reasons: readonly string[];
  readonly context: Readonly<Record<string, unknown>>;
  readonly process_id: string | null;
  readonly session_id: string | null;
}

/** A policy as loaded: persisted before it becomes active. */
export interface PolicyVersionRecord {
  /** sha256 of the canonical source. */
  readonly id: string;
  /** The policy files as loaded: name → text. */
  readonly source: Readonly<Record<string, string>>;
  readonly loaded_at: number;
  /** When it last became the active version (null: stored, never activated). */
  readonly activated_at: number | null;
}
