/**
 * The security entities' rules shared by the adapters (DESIGN.md §4, §8): policy versions,
 * grants, the audit log, quarantine and the agents' key-value store. The checks of their ops
 * (values that reach these tables come from agents and operators, so the store checks them
 * itself), how rows read back, how audit records are chained and verified, and the errors of
 * their compare-and-set writes — so SQLite and PostgreSQL refuse with the same code, message
 * and details.
 */
import { z } from 'zod';

import {
  assertWithin,
  canonicalJson,
  checkParams,
  errors,
  findAuditBreak,
  GENESIS_HASH,
  hashAuditRecord,
  isJsonObject,
  param,
  WardenError,
} from '../core/index.ts';
import {
  type AuditRecord,
  DECISIONS,
  type GrantRecord,
  type PolicyVersionRecord,
  type QuarantineRecord,
} from '../core/policy/types.ts';
import type { Row } from './rows.ts';
import type { AuditVerification, KvEntry, KvValue, NewAuditRecord, StoreOp } from './types.ts';

/** Most audit records one `audit.append` op takes. */
export const AUDIT_APPEND_MAX = 1_000;
/** Largest audit or quarantine record (its reasons and context), in bytes of JSON. */
export const SECURITY_RECORD_MAX_BYTES = 262_144;
/** Largest `kv.set` value, in bytes of JSON. */
export const KV_VALUE_MAX_BYTES = 65_536;

export type SecurityOp = Extract<
  StoreOp,
  {
    op:
      | 'policy.version'
      | 'grant.create'
      | 'grant.revoke'
      | 'grant.use'
      | 'audit.append'
      | 'quarantine.add'
      | 'kv.set'
      | 'kv.delete';
  }
>;
export type PolicyVersionOp = Extract<SecurityOp, { op: 'policy.version' }>;
export type GrantCreateOp = Extract<SecurityOp, { op: 'grant.create' }>;
export type GrantRevokeOp = Extract<SecurityOp, { op: 'grant.revoke' }>;
export type GrantUseOp = Extract<SecurityOp, { op: 'grant.use' }>;
export type AuditAppendOp = Extract<SecurityOp, { op: 'audit.append' }>;
export type QuarantineAddOp = Extract<SecurityOp, { op: 'quarantine.add' }>;
export type KvSetOp = Extract<SecurityOp, { op: 'kv.set' }>;
export type KvDeleteOp = Extract<SecurityOp, { op: 'kv.delete' }>;

// ------------------------------------------------------------------ op checks

const text = (what: string, max: number) => param.nonEmpty(`${what} (1-${max} characters)`, max);
const id = text('an id string', 512);
const time = param.int(0, Number.MAX_SAFE_INTEGER, 'a time in ms since the epoch (an integer ≥ 0)');
const nullable = <T>(what: string, test: (v: unknown) => boolean) =>
  param.is<T | null>(`null or ${what}`, (v) => v === null || test(v));
const nullableTime = nullable<number>(
  'a time in ms since the epoch',
  (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0,
);
const nullableText = (max: number) =>
  nullable<string>(
    `a string of up to ${max} characters`,
    (v) => typeof v === 'string' && v.length <= max,
  );
const principal = text('a principal such as agent:<workflow>/<stage>', 512);
const action = text('an action such as tool.call', 256);
const resource = text('a resource such as tool:<name>', 8_192);
const reasons = param.is<readonly string[]>(
  'an array of strings',
  (v) => Array.isArray(v) && v.length <= 1_000 && v.every((r) => typeof r === 'string'),
);
const context = param.is<Readonly<Record<string, unknown>>>('a JSON object', isJsonObject);
const decision = param.oneOf(DECISIONS);
const opName = <const N extends string>(name: N) => param.oneOf([name] as const);

const policyVersionOp = param.options(
  {
    op: opName('policy.version'),
    id: text('a policy version id (the source hash)', 512),
    source: param.is<Readonly<Record<string, string>>>(
      'an object of file name → policy text',
      (v) => isJsonObject(v) && Object.values(v).every((t) => typeof t === 'string'),
    ),
    loaded_at: time,
    activate: param.boolean(),
    now: time,
  },
  'a policy.version op { id, source, loaded_at, activate, now }',
);

const grantCreateOp = param.options(
  {
    op: opName('grant.create'),
    grant: param.options(
      {
        id,
        principal,
        action,
        resource,
        ask: param.boolean(),
        budget: nullable<number>(
          'a number of uses (an integer ≥ 0)',
          (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0,
        ),
        expires_at: nullableTime,
        created_at: time,
        created_by: text('who created it', 512),
        reason: nullableText(4_096),
      },
      'a grant { id, principal, action, resource, ask, budget, expires_at, created_at, created_by, reason }',
    ),
  },
  'a grant.create op { grant }',
);

const grantRevokeOp = param.options(
  {
    op: opName('grant.revoke'),
    id,
    by: text('who revokes it', 512),
    reason: nullableText(4_096),
    now: time,
  },
  'a grant.revoke op { id, by, reason, now }',
);

const grantUseOp = param.options(
  { op: opName('grant.use'), id, now: time },
  'a grant.use op { id, now }',
);

const auditRecord = param.options(
  {
    ts: time,
    trace_id: text('a trace id', 512),
    principal,
    action,
    resource,
    decision,
    decided: decision,
    reasons,
    policy_version: text('a policy version id', 512),
    context,
  },
  'an audit record { ts, trace_id, principal, action, resource, decision, decided, reasons, policy_version, context }',
);

const auditAppendOp = param.options(
  {
    op: opName('audit.append'),
    records: z
      .array(auditRecord, { error: 'expected an array of audit records' })
      .max(AUDIT_APPEND_MAX, {
        error: `expected at most ${AUDIT_APPEND_MAX} audit records per op (append more in further ops)`,
      }),
  },
  'an audit.append op { records }',
);

const quarantineAddOp = param.options(
  {
    op: opName('quarantine.add'),
    record: param.options(
      {
        id,
        ts: time,
        trace_id: text('a trace id', 512),
        kind: text('a guard or rule name such as ssrf', 64),
        principal,
        action,
        resource,
        reasons,
        context,
        process_id: nullableText(512),
        session_id: nullableText(512),
      },
      'a quarantine record { id, ts, trace_id, kind, principal, action, resource, reasons, context, process_id, session_id }',
    ),
  },
  'a quarantine.add op { record }',
);

const kvNamespace = text('a namespace', 256);
const kvKey = text('a key', 1_024);

const kvSetOp = param.options(
  {
    op: opName('kv.set'),
    namespace: kvNamespace,
    key: kvKey,
    value: param.is<unknown>('a JSON value', (v) => v !== undefined),
    expected_version: nullable<number>(
      'a version (a positive integer)',
      (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1,
    ).optional(),
    now: time,
  },
  'a kv.set op { namespace, key, value, expected_version?, now }',
);

const kvDeleteOp = param.options(
  {
    op: opName('kv.delete'),
    namespace: kvNamespace,
    key: kvKey,
    // No null: "must not exist" has nothing to delete.
    expected_version: param
      .int(1, Number.MAX_SAFE_INTEGER, 'a version (a positive integer)')
      .optional(),
  },
  'a kv.delete op { namespace, key, expected_version? }',
);

const where = (op: SecurityOp) => `Store.commit ${op.op}`;

/** A policy.version op checked, with its source as stored (canonical JSON). */
export interface PreparedPolicyVersion {
  readonly id: string;
  readonly source: string;
  readonly loaded_at: number;
  /** `now` when the op activates it, else null (the stored value is kept). */
  readonly activated_at: number | null;
}

export function preparePolicyVersion(op: PolicyVersionOp): PreparedPolicyVersion {
  checkParams(where(op), policyVersionOp, op);
  return {
    id: op.id,
    source: canonicalJson(op.source),
    loaded_at: op.loaded_at,
    activated_at: op.activate ? op.now : null,
  };
}

/** A grant.create op checked, as row parameters (`ask` stored as 0/1). */
export function prepareGrant(op: GrantCreateOp): Row {
  checkParams(where(op), grantCreateOp, op);
  const g = op.grant;
  return {
    id: g.id,
    principal: g.principal,
    action: g.action,
    resource: g.resource,
    ask: g.ask ? 1 : 0,
    budget: g.budget,
    expires_at: g.expires_at,
    created_at: g.created_at,
    created_by: g.created_by,
    reason: g.reason,
  };
}

export function checkGrantRevoke(op: GrantRevokeOp): void {
  checkParams(where(op), grantRevokeOp, op);
}

export function checkGrantUse(op: GrantUseOp): void {
  checkParams(where(op), grantUseOp, op);
}

/** An audit record checked: only its own fields (anything else would be hashed but not kept). */
export interface PreparedAudit {
  readonly record: NewAuditRecord;
}

export function prepareAudit(op: AuditAppendOp): PreparedAudit[] {
  checkParams(where(op), auditAppendOp, op);
  return op.records.map((r, i) => {
    assertWithin(
      `audit record [${i}] (reasons and context)`,
      [r.reasons, r.context],
      SECURITY_RECORD_MAX_BYTES,
    );
    return {
      record: {
        ts: r.ts,
        trace_id: r.trace_id,
        principal: r.principal,
        action: r.action,
        resource: r.resource,
        decision: r.decision,
        decided: r.decided,
        reasons: r.reasons,
        policy_version: r.policy_version,
        context: r.context,
      },
    };
  });
}

/** A chained audit record and its JSON columns as stored (the canonical text the hash covers). */
export interface StoredAudit {
  readonly record: AuditRecord;
  readonly reasons: string;
  readonly context: string;
}

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

export const AUDIT_GENESIS: AuditHead = { seq: 0, hash: GENESIS_HASH };

/**
 * Chains `records` after `head`: contiguous seqs, `hash = sha256(prev_hash ‖
 * canonical_json(record without hash))`. The caller holds the head's lock (SQLite: the write
 * lock; PostgreSQL: the audit head row).
 */
export function chainAudit(
  head: AuditHead,
  records: readonly PreparedAudit[],
): { rows: StoredAudit[]; head: AuditHead } {
  let { seq, hash } = head;
  const rows = records.map(({ record }) => {
    seq += 1;
    const body = { ...record, seq, prev_hash: hash };
    hash = hashAuditRecord(body);
    return {
      record: { ...body, hash },
      reasons: canonicalJson(record.reasons),
      context: canonicalJson(record.context),
    };
  });
  return { rows, head: { seq, hash } };
}

/** A quarantine.add op checked, as row parameters (reasons and context as JSON text). */
export function prepareQuarantine(op: QuarantineAddOp): Row {
  checkParams(where(op), quarantineAddOp, op);
  const r = op.record;
  assertWithin(
    'quarantine record (reasons and context)',
    [r.reasons, r.context],
    SECURITY_RECORD_MAX_BYTES,
  );
  return {
    id: r.id,
    ts: r.ts,
    trace_id: r.trace_id,
    kind: r.kind,
    principal: r.principal,
    action: r.action,
    resource: r.resource,
    reasons: canonicalJson(r.reasons),
    context: canonicalJson(r.context),
    process_id: r.process_id,
    session_id: r.session_id,
  };
}

/** A kv.set op checked, its value as stored (canonical JSON, at most KV_VALUE_MAX_BYTES). */
export interface PreparedKvSet {
  readonly namespace: string;
  readonly key: string;
  readonly value: string;
  /** undefined: set unconditionally; null: the key must not exist; n: the version must be n. */
  readonly expected: number | null | undefined;
  readonly now: number;
}

export function prepareKvSet(op: KvSetOp): PreparedKvSet {
  checkParams(where(op), kvSetOp, op);
  // Measured (and cycles refused) before the canonical form is built.
  assertWithin(
    `the value of ${op.namespace}/${op.key}`,
    op.value,
    KV_VALUE_MAX_BYTES,
    'keep large data elsewhere (a file) and store a reference',
  );
  return {
    namespace: op.namespace,
    key: op.key,
    value: canonicalJson(op.value),
    expected: op.expected_version,
    now: op.now,
  };
}

/** A kv.delete op checked. */
export interface PreparedKvDelete {
  readonly namespace: string;
  readonly key: string;
  /** undefined: delete unconditionally (a missing key is a no-op); n: the version must be n. */
  readonly expected: number | undefined;
}

export function prepareKvDelete(op: KvDeleteOp): PreparedKvDelete {
  checkParams(where(op), kvDeleteOp, op);
  return { namespace: op.namespace, key: op.key, expected: op.expected_version };
}

// ------------------------------------------------------------------ rows

const nullableNumber = (v: unknown): number | null =>
  v === null || v === undefined ? null : Number(v);
const nullableString = (v: unknown): string | null => (v as string | null | undefined) ?? null;

export function policyVersionFromRow(r: Row): PolicyVersionRecord {
  return {
    id: r.id as string,
    source: JSON.parse(r.source as string) as Record<string, string>,
    loaded_at: Number(r.loaded_at),
    activated_at: nullableNumber(r.activated_at),
  };
}

export function grantFromRow(r: Row): GrantRecord {
  return {
    id: r.id as string,
    principal: r.principal as string,
    action: r.action as string,
    resource: r.resource as string,
    ask: Number(r.ask) === 1,
    budget: nullableNumber(r.budget),
    used: Number(r.used),
    expires_at: nullableNumber(r.expires_at),
    revoked_at: nullableNumber(r.revoked_at),
    revoked_by: nullableString(r.revoked_by),
    revoke_reason: nullableString(r.revoke_reason),
    created_at: Number(r.created_at),
    created_by: r.created_by as string,
    reason: nullableString(r.reason),
  };
}

export function auditFromRow(r: Row): AuditRecord {
  return {
    seq: Number(r.seq),
    ts: Number(r.ts),
    trace_id: r.trace_id as string,
    principal: r.principal as string,
    action: r.action as string,
    resource: r.resource as string,
    decision: r.decision as AuditRecord['decision'],
    decided: r.decided as AuditRecord['decided'],
    reasons: JSON.parse(r.reasons as string) as string[],
    policy_version: r.policy_version as string,
    context: JSON.parse(r.context as string) as Record<string, unknown>,
    prev_hash: r.prev_hash as string,
    hash: r.hash as string,
  };
}

export function quarantineFromRow(r: Row): QuarantineRecord {
  return {
    id: r.id as string,
    ts: Number(r.ts),
    trace_id: r.trace_id as string,
    kind: r.kind as string,
    principal: r.principal as string,
    action: r.action as string,
    resource: r.resource as string,
    reasons: JSON.parse(r.reasons as string) as string[],
    context: JSON.parse(r.context as string) as Record<string, unknown>,
    process_id: nullableString(r.process_id),
    session_id: nullableString(r.session_id),
  };
}

export function kvFromRow(r: Row): KvValue {
  return {
    value: JSON.parse(r.value as string) as unknown,
    version: Number(r.version),
    updated_at: Number(r.updated_at),
  };
}

export function kvEntryFromRow(r: Row): KvEntry {
  return { key: r.key as string, ...kvFromRow(r) };
}

// ------------------------------------------------------------------ errors

/** policy.version found its id stored with another source. */
export function policySourceMismatchError(id: string): WardenError {
  return new WardenError(
    'STORE_CORRUPT',
    `policy version ${id} is stored with a different source; a version id is the hash of its source, so either the stored policy was altered or the id was computed wrongly. Nothing was changed`,
    { details: { policy_version: id } },
  );
}

export function grantExistsError(id: string): WardenError {
  return errors.conflict(`a grant with id '${id}' exists already`, { grant_id: id });
}

/** grant.revoke changed no row: NOT_FOUND, or INVALID_STATE when it is revoked already. */
export function grantRevokeMissedError(id: string, current: GrantRecord | undefined): WardenError {
  if (!current) return errors.notFound('grant', id);
  return errors.invalidState(`grant ${id} is already revoked; nothing was changed`, {
    grant_id: id,
    revoked_at: current.revoked_at,
  });
}

export type GrantDenial = 'revoked' | 'expired' | 'exhausted';

/** Why a grant cannot be used at `now` (null: it can). */
export function grantDenial(grant: GrantRecord, now: number): GrantDenial | null {
  if (grant.revoked_at !== null) return 'revoked';
  if (grant.expires_at !== null && grant.expires_at <= now) return 'expired';
  if (grant.budget !== null && grant.used >= grant.budget) return 'exhausted';
  return null;
}

/** grant.use changed no row: NOT_FOUND, or POLICY_DENIED saying why. */
export function grantUseDeniedError(
  id: string,
  current: GrantRecord | undefined,
  now: number,
): WardenError {
  if (!current) return errors.notFound('grant', id);
  // Uses only grow and revocation is final, so a row the update refused stays refused.
  const why = grantDenial(current, now) ?? 'exhausted';
  const said = {
    revoked: `it was revoked at ${String(current.revoked_at)}`,
    expired: `it expired at ${String(current.expires_at)}`,
    exhausted: `its budget of ${String(current.budget)} uses is spent`,
  }[why];
  return new WardenError(
    'POLICY_DENIED',
    `grant ${id} cannot be used: ${said}; nothing was changed`,
    {
      details: { grant_id: id, why },
    },
  );
}

export function quarantineExistsError(id: string): WardenError {
  return errors.conflict(`a quarantine record with id '${id}' exists already`, {
    quarantine_id: id,
  });
}

/**
 * A kv.set's or kv.delete's compare-and-set missed: the key's version is `current` (null: no
 * such key). Both ops fail with the same details, so a caller handles them alike.
 */
export function kvConflictError(
  set: Pick<PreparedKvSet, 'namespace' | 'key' | 'expected'>,
  current: number | null,
): WardenError {
  const now = current === null ? 'does not exist' : `is at version ${current}`;
  const wanted = set.expected === null ? 'not to exist' : `version ${String(set.expected)}`;
  return errors.conflict(
    `${set.namespace}/${set.key} ${now}, expected ${wanted}; read it again and retry. Nothing was changed`,
    { namespace: set.namespace, key: set.key, version: current, expected: set.expected ?? null },
  );
}

// ------------------------------------------------------------------ reads

const limit = param.int(1).optional();

export const policyVersionFilterArgs = z.object({
  filter: param.options({ limit }, 'a filter { limit? }'),
});

export const grantFilterArgs = z.object({
  filter: param.options(
    { principal: principal.optional(), activeAt: time.optional(), limit },
    'a filter { principal?, activeAt?, limit? }',
  ),
});

export const auditQueryArgs = z.object({
  query: param.options(
    {
      afterSeq: param.int(0).optional(),
      since: time.optional(),
      decision: decision.optional(),
      principal: principal.optional(),
      action: action.optional(),
      limit,
    },
    'an audit query { afterSeq?, since?, decision?, principal?, action?, limit? }',
  ),
});

export const quarantineFilterArgs = z.object({
  filter: param.options(
    { since: time.optional(), kind: text('a kind', 64).optional(), limit },
    'a filter { since?, kind?, limit? }',
  ),
});

export const kvGetArgs = z.object({ namespace: kvNamespace, key: kvKey });

export const kvListArgs = z.object({
  namespace: kvNamespace,
  options: param.options(
    {
      prefix: param
        .is<string>('a string', (v) => typeof v === 'string' && v.length <= 1_024)
        .optional(),
      limit,
    },
    'options { prefix?, limit? }',
  ),
});

/** Rows a read returns at most: the default, and the cap of a larger `limit`. */
export const READ_LIMITS = {
  policyVersions: { fallback: 100, max: 1_000 },
  grants: { fallback: 1_000, max: 10_000 },
  audit: { fallback: 1_000, max: 10_000 },
  quarantine: { fallback: 1_000, max: 10_000 },
  kv: { fallback: 1_000, max: 10_000 },
} as const;

/** The audit log as {@link verifyAuditChain} reads it. */
export interface AuditReader {
  /** The stored head (undefined: nothing was ever appended). */
  head(): Promise<AuditHead | undefined>;
  /** Up to `limit` records with seq > afterSeq, in seq order. */
  page(afterSeq: number, limit: number): Promise<AuditRecord[]>;
}

const VERIFY_PAGE = 5_000;

/**
 * Recomputes the chain page by page and checks it ends at the stored head. The head is read
 * first: every record up to it had committed by then (a head moves in the transaction that
 * appends), so fewer records, or another hash at its seq, is a cut or changed log. Records
 * appended while the pages are read are verified too, and must be covered by the head read
 * after the last page.
 */
export async function verifyAuditChain(reader: AuditReader): Promise<AuditVerification> {
  const start = (await reader.head()) ?? AUDIT_GENESIS;
  let last = AUDIT_GENESIS;
  let hashAtStart = start.seq === 0 ? GENESIS_HASH : null;
  for (;;) {
    const page = await reader.page(last.seq, VERIFY_PAGE);
    if (page.length === 0) break;
    const broken = findAuditBreak(page, last);
    if (broken) return { ok: false, count: broken.seq - 1, first_broken: broken };
    const atStart = page.find((r) => r.seq === start.seq);
    if (atStart) hashAtStart = atStart.hash;
    const end = page.at(-1)!;
    last = { seq: end.seq, hash: end.hash };
  }
  const headBreak = (seq: number, expected: AuditHead, actual: AuditHead) => ({
    ok: false,
    count: Math.min(last.seq, seq - 1),
    first_broken: {
      seq,
      reason: 'head_mismatch' as const,
      expected: `seq ${expected.seq} ${expected.hash}`,
      actual: `seq ${actual.seq} ${actual.hash}`,
    },
  });
  if (last.seq < start.seq) return headBreak(last.seq + 1, start, last);
  if (hashAtStart !== start.hash)
    return headBreak(start.seq, start, { seq: start.seq, hash: hashAtStart ?? '' });
  if (last.seq > start.seq) {
    const end = (await reader.head()) ?? AUDIT_GENESIS;
    if (last.seq > end.seq) return headBreak(end.seq + 1, end, last);
    if (last.seq === end.seq && last.hash !== end.hash) return headBreak(end.seq, end, last);
  }
  return { ok: true, count: last.seq };
}
