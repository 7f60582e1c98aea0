/**
 * The security entities' SQL for the SQLite adapter (rules and errors in ../security-rules.ts).
 * Every op runs inside a {@link Store.commit} transaction, which holds the database's write
 * lock from its start (BEGIN IMMEDIATE): a guarded write is one compare-and-set statement, and
 * the audit head read at an append cannot move before the commit, in this process or another.
 * Statements are prepared once per connection, on first use.
 */
import type Database from 'better-sqlite3';

import { WardenError } from '../../core/index.ts';
import type {
  AuditRecord,
  GrantRecord,
  PolicyVersionRecord,
  QuarantineRecord,
} from '../../core/policy/types.ts';
import type { Row } from '../rows.ts';
import {
  auditReadQuery,
  type Dialect,
  grantListQuery,
  kvListQuery,
  policyVersionListQuery,
  quarantineListQuery,
  type Query,
} from '../security-queries.ts';
import {
  AUDIT_GENESIS,
  auditFromRow,
  type AuditHead,
  chainAudit,
  checkGrantRevoke,
  checkGrantUse,
  grantExistsError,
  grantFromRow,
  grantRevokeMissedError,
  grantUseDeniedError,
  kvConflictError,
  kvEntryFromRow,
  kvFromRow,
  policySourceMismatchError,
  policyVersionFromRow,
  prepareAudit,
  prepareGrant,
  prepareKvDelete,
  prepareKvSet,
  preparePolicyVersion,
  prepareQuarantine,
  quarantineExistsError,
  quarantineFromRow,
  type SecurityOp,
  verifyAuditChain,
} from '../security-rules.ts';
import type {
  AuditQuery,
  AuditVerification,
  GrantFilter,
  KvEntry,
  KvListOptions,
  KvValue,
  QuarantineFilter,
} from '../types.ts';

const DIALECT: Dialect = 'sqlite';

const SQL = {
  /**
   * Inserts, or (same source only) sets activated_at when activating. → changes: 0 means the id
   * is stored with another source.
   */
  policyUpsert: `INSERT INTO policy_versions (id, source, loaded_at, activated_at)
    VALUES (@id, @source, @loaded_at, @activated_at)
    ON CONFLICT (id) DO UPDATE SET activated_at = coalesce(excluded.activated_at, policy_versions.activated_at)
    WHERE policy_versions.source = excluded.source`,
  policyById: 'SELECT * FROM policy_versions WHERE id = ?',
  policyActive: `SELECT * FROM policy_versions WHERE activated_at IS NOT NULL
    ORDER BY activated_at DESC, id DESC LIMIT 1`,
  /** → changes: 0 means the id exists */
  grantInsert: `INSERT INTO grants (id, principal, action, resource, ask, budget, used, expires_at, created_at,
      created_by, reason)
    VALUES (@id, @principal, @action, @resource, @ask, @budget, 0, @expires_at, @created_at, @created_by, @reason)
    ON CONFLICT (id) DO NOTHING`,
  grantById: 'SELECT * FROM grants WHERE id = ?',
  /** Compare-and-set on "not revoked". → changes */
  grantRevoke: `UPDATE grants SET revoked_at = @now, revoked_by = @by, revoke_reason = @reason
    WHERE id = @id AND revoked_at IS NULL`,
  /** Compare-and-set on "usable at @now". → changes */
  grantUse: `UPDATE grants SET used = used + 1
    WHERE id = @id AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > @now)
      AND (budget IS NULL OR used < budget)`,
  auditHead: 'SELECT last_seq, last_hash FROM audit_head WHERE id = 1',
  auditInsert: `INSERT INTO audit (seq, ts, trace_id, principal, action, resource, decision, decided, reasons,
      policy_version, context, prev_hash, hash)
    VALUES (@seq, @ts, @trace_id, @principal, @action, @resource, @decision, @decided, @reasons,
      @policy_version, @context, @prev_hash, @hash)`,
  auditSetHead: `INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, ?, ?)
    ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq, last_hash = excluded.last_hash`,
  auditPage: 'SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?',
  /** → changes: 0 means the id exists */
  quarantineInsert: `INSERT INTO quarantine (id, ts, trace_id, kind, principal, action, resource, reasons, context,
      process_id, session_id)
    VALUES (@id, @ts, @trace_id, @kind, @principal, @action, @resource, @reasons, @context, @process_id,
      @session_id)
    ON CONFLICT (id) DO NOTHING`,
  quarantineById: 'SELECT * FROM quarantine WHERE id = ?',
  kvGet: 'SELECT value, version, updated_at FROM kv WHERE namespace = ? AND key = ?',
  /** An unconditional set. */
  kvUpsert: `INSERT INTO kv (namespace, key, value, version, updated_at) VALUES (@namespace, @key, @value, 1, @now)
    ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = kv.version + 1,
      updated_at = excluded.updated_at`,
  /** Only when the key does not exist. → changes */
  kvInsertNew: `INSERT INTO kv (namespace, key, value, version, updated_at) VALUES (@namespace, @key, @value, 1, @now)
    ON CONFLICT (namespace, key) DO NOTHING`,
  /** Compare-and-set on the version. → changes */
  kvUpdateAt: `UPDATE kv SET value = @value, version = version + 1, updated_at = @now
    WHERE namespace = @namespace AND key = @key AND version = @expected`,
  /** An unconditional delete: no row is a no-op. */
  kvDelete: 'DELETE FROM kv WHERE namespace = @namespace AND key = @key',
  /** Compare-and-set on the version. → changes */
  kvDeleteAt: `DELETE FROM kv WHERE namespace = @namespace AND key = @key AND version = @expected`,
} as const;

type Statements = { readonly [K in keyof typeof SQL]: Database.Statement };

const prepared = new WeakMap<Database.Database, Statements>();

function statements(db: Database.Database): Statements {
  let s = prepared.get(db);
  if (!s) {
    s = Object.fromEntries(
      Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)]),
    ) as unknown as Statements;
    prepared.set(db, s);
  }
  return s;
}

/** Applies one security op inside the commit's transaction. */
export function applySecurityOp(db: Database.Database, op: SecurityOp): void {
  const s = statements(db);
  switch (op.op) {
    case 'policy.version': {
      const row = preparePolicyVersion(op);
      if (s.policyUpsert.run(row).changes === 1) return;
      throw policySourceMismatchError(op.id);
    }
    case 'grant.create':
      if (s.grantInsert.run(prepareGrant(op)).changes === 1) return;
      throw grantExistsError(op.grant.id);
    case 'grant.revoke':
      checkGrantRevoke(op);
      if (s.grantRevoke.run({ id: op.id, by: op.by, reason: op.reason, now: op.now }).changes === 1)
        return;
      throw grantRevokeMissedError(op.id, getGrant(db, op.id));
    case 'grant.use':
      checkGrantUse(op);
      if (s.grantUse.run({ id: op.id, now: op.now }).changes === 1) return;
      throw grantUseDeniedError(op.id, getGrant(db, op.id), op.now);
    case 'audit.append': {
      const records = prepareAudit(op);
      if (records.length === 0) return;
      const { rows, head } = chainAudit(auditHead(db) ?? AUDIT_GENESIS, records);
      for (const row of rows)
        s.auditInsert.run({ ...row.record, reasons: row.reasons, context: row.context });
      s.auditSetHead.run(head.seq, head.hash);
      return;
    }
    case 'quarantine.add':
      if (s.quarantineInsert.run(prepareQuarantine(op)).changes === 1) return;
      throw quarantineExistsError(op.record.id);
    case 'kv.set': {
      const set = prepareKvSet(op);
      const changes =
        set.expected === undefined
          ? s.kvUpsert.run(set).changes
          : set.expected === null
            ? s.kvInsertNew.run(set).changes
            : s.kvUpdateAt.run(set).changes;
      if (changes === 1) return;
      throw kvConflictError(set, kvGet(db, set.namespace, set.key)?.version ?? null);
    }
    case 'kv.delete': {
      const del = prepareKvDelete(op);
      const target = { namespace: del.namespace, key: del.key };
      if (del.expected === undefined) {
        s.kvDelete.run(target);
        return;
      }
      if (s.kvDeleteAt.run({ ...target, expected: del.expected }).changes === 1) return;
      throw kvConflictError(del, kvGet(db, del.namespace, del.key)?.version ?? null);
    }
    default: {
      const never: never = op;
      throw new WardenError('INTERNAL', `unknown store op ${JSON.stringify(never)}`);
    }
  }
}

function all(db: Database.Database, query: Query): Row[] {
  return db.prepare(query.text).all(...query.values) as Row[];
}

function auditHead(db: Database.Database): AuditHead | undefined {
  const row = statements(db).auditHead.get() as { last_seq: number; last_hash: string } | undefined;
  return row && { seq: row.last_seq, hash: row.last_hash };
}

export function getPolicyVersion(
  db: Database.Database,
  id: string,
): PolicyVersionRecord | undefined {
  const row = statements(db).policyById.get(id) as Row | undefined;
  return row && policyVersionFromRow(row);
}

export function activePolicyVersion(db: Database.Database): PolicyVersionRecord | null {
  const row = statements(db).policyActive.get() as Row | undefined;
  return row ? policyVersionFromRow(row) : null;
}

export function listPolicyVersions(
  db: Database.Database,
  limit: number | undefined,
): PolicyVersionRecord[] {
  return all(db, policyVersionListQuery(DIALECT, limit)).map(policyVersionFromRow);
}

export function getGrant(db: Database.Database, id: string): GrantRecord | undefined {
  const row = statements(db).grantById.get(id) as Row | undefined;
  return row && grantFromRow(row);
}

export function listGrants(db: Database.Database, filter: GrantFilter): GrantRecord[] {
  return all(db, grantListQuery(DIALECT, filter)).map(grantFromRow);
}

export function readAudit(db: Database.Database, query: AuditQuery): AuditRecord[] {
  return all(db, auditReadQuery(DIALECT, query)).map(auditFromRow);
}

/** `read` wraps each synchronous read (the store's error handling). */
export function verifyAudit(
  db: Database.Database,
  read: <T>(fn: () => T) => T,
): Promise<AuditVerification> {
  const s = statements(db);
  return verifyAuditChain({
    head: () => Promise.resolve(read(() => auditHead(db))),
    page: (afterSeq, limit) =>
      Promise.resolve(read(() => (s.auditPage.all(afterSeq, limit) as Row[]).map(auditFromRow))),
  });
}

export function getQuarantine(db: Database.Database, id: string): QuarantineRecord | undefined {
  const row = statements(db).quarantineById.get(id) as Row | undefined;
  return row && quarantineFromRow(row);
}

export function listQuarantine(
  db: Database.Database,
  filter: QuarantineFilter,
): QuarantineRecord[] {
  return all(db, quarantineListQuery(DIALECT, filter)).map(quarantineFromRow);
}

export function kvGet(db: Database.Database, namespace: string, key: string): KvValue | null {
  const row = statements(db).kvGet.get(namespace, key) as Row | undefined;
  return row ? kvFromRow(row) : null;
}

export function kvList(
  db: Database.Database,
  namespace: string,
  options: KvListOptions,
): KvEntry[] {
  return all(db, kvListQuery(DIALECT, namespace, options)).map(kvEntryFromRow);
}
