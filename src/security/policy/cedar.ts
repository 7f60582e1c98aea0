/**
 * The Cedar engine (`@cedar-policy/cedar-wasm`, Node build) behind the PDP: splitting policy
 * files into single policies with ids, lines and scopes, and evaluating requests against
 * pre-parsed policy sets.
 *
 * Why pre-parsed subsets: `isAuthorized` parses the whole policy set on every call (≈5 ms for
 * 50 policies); `statefulIsAuthorized` against a set pre-parsed once costs ≈13 µs plus ≈1.1 µs
 * per policy in the set, whether or not the policy applies (cedar-wasm 4.13, Node 24, 2-core
 * VM). So the PDP pre-parses, per principal, only the policies whose principal scope can match
 * it (bench/results/policy.md). Pre-parsed sets live in the module's thread-local store under
 * a content-hash id, shared and reference-counted: releasing the last user overwrites the set
 * with an empty one (cedar-wasm has no call to delete it).
 */
import {
  type CedarValueJson,
  type DetailedError,
  type EntityJson,
  type EntityUidJson,
  isAuthorized,
  type PolicyJson,
  policySetTextToParts,
  policyToJson,
  preparsePolicySet,
  statefulIsAuthorized,
} from '@cedar-policy/cedar-wasm/nodejs';

import {
  ACTION_GROUP_NAMES,
  canonicalJson,
  ENTITY_TYPES,
  isPolicyAction,
  METHOD_SCOPES,
  policyInvalid,
  type PolicyIssue,
  sha256Hex,
} from '../../core/index.ts';

/** One policy of a version, as loaded. */
export interface CompiledPolicy {
  /** Its `@id` annotation, or `<file>:<line>` when it has none. */
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  /** `@decision("ask")`: a permit that allows only with a person's approval. */
  readonly ask: boolean;
  readonly file: string;
  /** Line in its file (for YAML, of the key it was compiled from; null for built-ins). */
  readonly line: number | null;
  /** The policy's Cedar text. */
  readonly cedar: string;
  /**
   * Which principals its scope can match: `*`, `is:<Type>`, `eq:<Type>::<id>` or
   * `in:<Type>::<id>` (JSON-quoted id).
   */
  readonly bucket: string;
  /**
   * Which actions its scope can match: `*`, or `eq:Action::<id>` / `in:Action::<id>` keys
   * (an `action in [a, b]` scope has one key per entity).
   */
  readonly actionBuckets: readonly string[];
}

const KNOWN_TYPES = new Set(ENTITY_TYPES);

/** Actions and action groups the PDP creates (a scope naming another is a typo). */
function knownAction(id: string): boolean {
  return (
    isPolicyAction(id) ||
    id === 'acp' ||
    (id.startsWith('acp:') && id.length > 4) ||
    (ACTION_GROUP_NAMES as readonly string[]).includes(id) ||
    (id.startsWith('scope:') && (METHOD_SCOPES as readonly string[]).includes(id.slice(6)))
  );
}

/** The bucket key of an entity reference. */
export function entityKey(kind: 'eq' | 'in', e: EntityUidJson): string {
  const u = '__entity' in e ? e.__entity : e;
  return `${kind}:${u.type}::${JSON.stringify(u.id)}`;
}

/** 1-based line of a UTF-8 byte offset in `text`. */
function lineAt(text: string, byteOffset: number): number {
  const before = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8');
  return before.split('\n').length;
}

function flatten(errors: readonly DetailedError[]): DetailedError[] {
  return errors.flatMap((e) => [e, ...flatten(e.related ?? [])]);
}

function issuesOf(text: string, errors: readonly DetailedError[], path: string): PolicyIssue[] {
  return flatten(errors).map((e) => {
    const at = e.sourceLocations?.[0];
    const label = at?.label ? ` (${at.label})` : '';
    return {
      path,
      line: at === undefined ? undefined : lineAt(text, at.start),
      message: `${e.message}${label}${e.help ? `; ${e.help}` : ''}`,
    };
  });
}

/** Scope entities and actions must exist in the entity model: a typo must not silently deny. */
function scopeIssues(json: PolicyJson): string[] {
  const out: string[] = [];
  const type = (t: string) => {
    if (!KNOWN_TYPES.has(t))
      out.push(`unknown entity type ${t} (known: ${ENTITY_TYPES.join(', ')})`);
  };
  const entity = (e: EntityUidJson) => type('__entity' in e ? e.__entity.type : e.type);
  for (const c of [json.principal, json.resource]) {
    if (c.op === 'is') type(c.entity_type);
    if ((c.op === '==' || c.op === 'in') && 'entity' in c) entity(c.entity);
    if (c.op === 'is' && c.in && 'entity' in c.in) entity(c.in.entity);
  }
  const actions =
    json.action.op === 'All'
      ? []
      : 'entities' in json.action
        ? json.action.entities
        : 'entity' in json.action
          ? [json.action.entity]
          : [];
  for (const a of actions) {
    const id = '__entity' in a ? a.__entity.id : a.id;
    if (!knownAction(id)) out.push(`unknown action Action::${JSON.stringify(id)}`);
  }
  return out;
}

function actionBucketsOf(json: PolicyJson): string[] {
  const a = json.action;
  if (a.op === '==' && 'entity' in a) return [entityKey('eq', a.entity)];
  if (a.op === 'in' && 'entity' in a) return [entityKey('in', a.entity)];
  if (a.op === 'in' && 'entities' in a) return a.entities.map((e) => entityKey('in', e));
  return ['*'];
}

function bucketOf(json: PolicyJson): string {
  const p = json.principal;
  if (p.op === '==' && 'entity' in p) return entityKey('eq', p.entity);
  if (p.op === 'in' && 'entity' in p) return entityKey('in', p.entity);
  if (p.op === 'is')
    return p.in && 'entity' in p.in ? entityKey('in', p.in.entity) : `is:${p.entity_type}`;
  return '*';
}

/**
 * Splits a Cedar file into policies. For generated text (YAML, built-ins), whose own line
 * numbers mean nothing to the operator, `lines` gives each id's line in the source instead
 * (null: none). Throws POLICY_INVALID naming file and line.
 */
export function parseCedarFile(
  file: string,
  text: string,
  lines?: Readonly<Record<string, number>> | null,
): CompiledPolicy[] {
  const parts = policySetTextToParts(text);
  if (parts.type === 'failure')
    throw policyInvalid(file, issuesOf(text, parts.errors, 'cedar'), 'is not valid Cedar');
  if (parts.policy_templates.length > 0)
    throw policyInvalid(
      file,
      [
        {
          path: 'cedar',
          message: 'templates (?principal, ?resource) are not supported: write static policies',
        },
      ],
      'is not a valid policy',
    );
  // Parts come back sorted by generated id; put them back in file order by their offsets.
  const used = new Set<number>();
  const located = parts.policies.map((policy) => {
    let at = text.indexOf(policy);
    while (at >= 0 && used.has(at)) at = text.indexOf(policy, at + 1);
    if (at >= 0) used.add(at);
    return { policy, at: at < 0 ? Number.MAX_SAFE_INTEGER : at };
  });
  located.sort((a, b) => a.at - b.at);
  const issues: PolicyIssue[] = [];
  const out: CompiledPolicy[] = [];
  for (const { policy, at } of located) {
    const line = at === Number.MAX_SAFE_INTEGER ? null : text.slice(0, at).split('\n').length;
    const parsed = policyToJson(policy);
    if (parsed.type === 'failure') {
      issues.push(...issuesOf(policy, parsed.errors, 'cedar'));
      continue;
    }
    const json = parsed.json;
    const annotations = json.annotations ?? {};
    const where = { path: 'cedar', line: line ?? undefined };
    for (const message of scopeIssues(json)) issues.push({ ...where, message });
    const decision = annotations.decision;
    if (decision !== undefined && (decision !== 'ask' || json.effect !== 'permit'))
      issues.push({
        ...where,
        message: '@decision("ask") is the only decision annotation, and only on permit',
      });
    const id = annotations.id ?? `${file}:${line ?? out.length + 1}`;
    out.push({
      id,
      effect: json.effect,
      ask: decision === 'ask',
      file,
      line: lines === undefined ? line : (lines?.[id] ?? null),
      cedar: policy,
      bucket: bucketOf(json),
      actionBuckets: actionBucketsOf(json),
    });
  }
  if (issues.length > 0) throw policyInvalid(file, issues, 'is not a valid policy');
  return out;
}

// ---- pre-parsed policy sets (reference-counted, shared by content) ----

const slots = new Map<string, number>();

/** Pre-parses `policies` (shared with any identical set) and returns its id. */
export function acquireSet(policies: readonly CompiledPolicy[]): string {
  const record: Record<string, string> = {};
  for (const p of policies) record[p.id] = p.cedar;
  const id = `warden:${sha256Hex(canonicalJson(record))}`;
  const users = slots.get(id);
  if (users !== undefined) {
    slots.set(id, users + 1);
    return id;
  }
  const answer = preparsePolicySet(id, { staticPolicies: record });
  if (answer.type === 'failure')
    throw new Error(
      `cedar rejected a validated policy set: ${answer.errors.map((e) => e.message).join('; ')}`,
    );
  slots.set(id, 1);
  return id;
}

/** Drops one user of a pre-parsed set; the last frees its memory. */
export function releaseSet(id: string): void {
  const users = slots.get(id);
  if (users === undefined) return;
  if (users > 1) {
    slots.set(id, users - 1);
    return;
  }
  slots.delete(id);
  preparsePolicySet(id, { staticPolicies: {} });
}

/** Pre-parsed sets alive in this thread (tests check that nothing leaks). */
export function liveSets(): number {
  return slots.size;
}

export interface CedarCall {
  readonly principal: EntityUidJson;
  readonly action: EntityUidJson;
  readonly resource: EntityUidJson;
  readonly context: Record<string, CedarValueJson>;
  readonly entities: EntityJson[];
}

export interface CedarOutcome {
  readonly decision: 'allow' | 'deny';
  /** Ids of the determining policies (satisfied permits on allow, satisfied forbids on deny). */
  readonly reasons: readonly string[];
  readonly errors: readonly { readonly policy: string; readonly message: string }[];
}

function outcome(answer: ReturnType<typeof isAuthorized>): CedarOutcome {
  if (answer.type === 'failure')
    throw new Error(answer.errors.map((e) => e.message).join('; ') || 'cedar failed');
  const { decision, diagnostics } = answer.response;
  return {
    decision,
    reasons: diagnostics.reason,
    errors: diagnostics.errors.map((e) => ({ policy: e.policyId, message: e.error.message })),
  };
}

/** Evaluates against a pre-parsed set. Throws on a request Cedar refuses. */
export function evaluateSet(setId: string, call: CedarCall): CedarOutcome {
  return outcome(statefulIsAuthorized({ ...call, preparsedPolicySetId: setId }));
}

/** Evaluates against policies given in full (explanations; not for the hot path). */
export function evaluatePolicies(
  policies: readonly CompiledPolicy[],
  call: CedarCall,
): CedarOutcome {
  const record: Record<string, string> = {};
  for (const p of policies) record[p.id] = p.cedar;
  return outcome(isAuthorized({ ...call, policies: { staticPolicies: record } }));
}
