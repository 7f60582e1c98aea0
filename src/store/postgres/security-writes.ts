/**
 * The security entities' SQL for the PostgreSQL adapter (rules and errors in
 * ../security-rules.ts). Every op runs inside a {@link Store.commit} transaction under READ
 * COMMITTED, with many nodes writing the same rows:
 *
 * - Guarded writes are one conditional statement each (`UPDATE … WHERE <guard>`, `INSERT … ON
 *   CONFLICT`). A row another transaction changed meanwhile is re-checked against the guard once
 *   that transaction commits, so two nodes racing for a grant's last use, or for the same kv
 *   version, never both win: the loser changes no row and gets its typed error.
 * - Audit records are checked here and chained when the transaction ends (audit-log.ts).
 */
import { WardenError } from '../../core/index.ts';
import type {
  AuditRecord,
  GrantRecord,
  PolicyVersionRecord,
  QuarantineRecord,
} from '../../core/policy/types.ts';
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
  auditFromRow,
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
import type { PgTx } from './tx.ts';

/** The read side of a connection or transaction: just `query`. */
type Queryable = Pick<PgTx, 'query'>;

const DIALECT: Dialect = 'postgres';

const SQL = {
  /** See the SQLite adapter: no row when the id is stored with another source. */
  policyUpsert: `INSERT INTO policy_versions AS p (id, source, loaded_at, activated_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (id) DO UPDATE SET activated_at = coalesce(excluded.activated_at, p.activated_at)
    WHERE p.source = excluded.source`,
  grantInsert: `INSERT INTO grants (id, principal, action, resource, ask, budget, used, expires_at, created_at,
      created_by, reason)
    VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING`,
  grantRevoke: `UPDATE grants SET revoked_at = $2, revoked_by = $3, revoke_reason = $4
    WHERE id = $1 AND revoked_at IS NULL`,
  grantUse: `UPDATE grants SET used = used + 1
    WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
      AND (budget IS NULL OR used < budget)`,
  quarantineInsert: `INSERT INTO quarantine (id, ts, trace_id, kind, principal, action, resource, reasons, context,
      process_id, session_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
  kvUpsert: `INSERT INTO kv AS k (namespace, key, value, version, updated_at) VALUES ($1, $2, $3, 1, $4)
    ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = k.version + 1,
      updated_at = excluded.updated_at`,
  kvInsertNew: `INSERT INTO kv (namespace, key, value, version, updated_at) VALUES ($1, $2, $3, 1, $4)
    ON CONFLICT (namespace, key) DO NOTHING`,
  kvUpdateAt: `UPDATE kv SET value = $3, version = version + 1, updated_at = $4
    WHERE namespace = $1 AND key = $2 AND version = $5`,
  kvDelete: 'DELETE FROM kv WHERE namespace = $1 AND key = $2',
  kvDeleteAt: 'DELETE FROM kv WHERE namespace = $1 AND key = $2 AND version = $3',
} as const;

/** Applies one security op inside the commit's transaction. */
export async function applySecurityOp(tx: PgTx, op: SecurityOp): Promise<void> {
  switch (op.op) {
    case 'policy.version': {
      const p = preparePolicyVersion(op);
      const { rowCount } = await tx.query(SQL.policyUpsert, [
        p.id,
        p.source,
        p.loaded_at,
        p.activated_at,
      ]);
      if (rowCount === 1) return;
      throw policySourceMismatchError(op.id);
    }
    case 'grant.create': {
      const g = prepareGrant(op);
      const { rowCount } = await tx.query(SQL.grantInsert, [
        g.id,
        g.principal,
        g.action,
        g.resource,
        g.ask,
        g.budget,
        g.expires_at,
        g.created_at,
        g.created_by,
        g.reason,
      ]);
      if (rowCount === 1) return;
      throw grantExistsError(op.grant.id);
    }
    case 'grant.revoke': {
      checkGrantRevoke(op);
      const { rowCount } = await tx.query(SQL.grantRevoke, [op.id, op.now, op.by, op.reason]);
      if (rowCount === 1) return;
      throw grantRevokeMissedError(op.id, await getGrant(tx, op.id));
    }
    case 'grant.use': {
      checkGrantUse(op);
      const { rowCount } = await tx.query(SQL.grantUse, [op.id, op.now]);
      if (rowCount === 1) return;
      // A new statement: under READ COMMITTED it sees what the winner committed.
      throw grantUseDeniedError(op.id, await getGrant(tx, op.id), op.now);
    }
    case 'audit.append':
      tx.appendAudit(prepareAudit(op));
      return;
    case 'quarantine.add': {
      const q = prepareQuarantine(op);
      const { rowCount } = await tx.query(SQL.quarantineInsert, [
        q.id,
        q.ts,
        q.trace_id,
        q.kind,
        q.principal,
        q.action,
        q.resource,
        q.reasons,
        q.context,
        q.process_id,
        q.session_id,
      ]);
      if (rowCount === 1) return;
      throw quarantineExistsError(op.record.id);
    }
    case 'kv.set': {
      const set = prepareKvSet(op);
      const base = [set.namespace, set.key, set.value, set.now];
      const { rowCount } =
        set.expected === undefined
          ? await tx.query(SQL.kvUpsert, base)
          : set.expected === null
            ? await tx.query(SQL.kvInsertNew, base)
            : await tx.query(SQL.kvUpdateAt, [...base, set.expected]);
      if (rowCount === 1) return;
      throw kvConflictError(set, (await kvGet(tx, set.namespace, set.key))?.version ?? null);
    }
    case 'kv.delete': {
      const del = prepareKvDelete(op);
      if (del.expected === undefined) {
        await tx.query(SQL.kvDelete, [del.namespace, del.key]);
        return;
      }
      // Like kvUpdateAt: a row changed meanwhile by another node is re-checked against the
      // version once that transaction commits, so a racing set and delete never both win.
      const { rowCount } = await tx.query(SQL.kvDeleteAt, [del.namespace, del.key, del.expected]);
      if (rowCount === 1) return;
      throw kvConflictError(del, (await kvGet(tx, del.namespace, del.key))?.version ?? null);
    }
    default: {
      const never: never = op;
      throw new WardenError('INTERNAL', `unknown store op ${JSON.stringify(never)}`);
    }
  }
}

async function all(q: Queryable, query: Query) {
  return (await q.query(query.text, query.values)).rows;
}

async function one(q: Queryable, text: string, values: readonly unknown[]) {
  return (await q.query(text, values)).rows[0];
}

export async function getPolicyVersion(
  q: Queryable,
  id: string,
): Promise<PolicyVersionRecord | undefined> {
  const row = await one(q, 'SELECT * FROM policy_versions WHERE id = $1', [id]);
  return row && policyVersionFromRow(row);
}

export async function activePolicyVersion(q: Queryable): Promise<PolicyVersionRecord | null> {
  const row = await one(
    q,
    `SELECT * FROM policy_versions WHERE activated_at IS NOT NULL
     ORDER BY activated_at DESC, id DESC LIMIT 1`,
    [],
  );
  return row ? policyVersionFromRow(row) : null;
}

export async function listPolicyVersions(
  q: Queryable,
  limit: number | undefined,
): Promise<PolicyVersionRecord[]> {
  return (await all(q, policyVersionListQuery(DIALECT, limit))).map(policyVersionFromRow);
}

export async function getGrant(q: Queryable, id: string): Promise<GrantRecord | undefined> {
  const row = await one(q, 'SELECT * FROM grants WHERE id = $1', [id]);
  return row && grantFromRow(row);
}

export async function listGrants(q: Queryable, filter: GrantFilter): Promise<GrantRecord[]> {
  return (await all(q, grantListQuery(DIALECT, filter))).map(grantFromRow);
}

export async function readAudit(q: Queryable, query: AuditQuery): Promise<AuditRecord[]> {
  return (await all(q, auditReadQuery(DIALECT, query))).map(auditFromRow);
}

export function verifyAudit(q: Queryable): Promise<AuditVerification> {
  return verifyAuditChain({
    head: async () => {
      const row = await one(q, 'SELECT last_seq, last_hash FROM audit_head WHERE id = 1', []);
      return row && { seq: Number(row.last_seq), hash: row.last_hash as string };
    },
    page: async (afterSeq, limit) =>
      (
        await q.query('SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2', [afterSeq, limit])
      ).rows.map(auditFromRow),
  });
}

export async function getQuarantine(
  q: Queryable,
  id: string,
): Promise<QuarantineRecord | undefined> {
  const row = await one(q, 'SELECT * FROM quarantine WHERE id = $1', [id]);
  return row && quarantineFromRow(row);
}

export async function listQuarantine(
  q: Queryable,
  filter: QuarantineFilter,
): Promise<QuarantineRecord[]> {
  return (await all(q, quarantineListQuery(DIALECT, filter))).map(quarantineFromRow);
}

export async function kvGet(q: Queryable, namespace: string, key: string): Promise<KvValue | null> {
  const row = await one(
    q,
    'SELECT value, version, updated_at FROM kv WHERE namespace = $1 AND key = $2',
    [namespace, key],
  );
  return row ? kvFromRow(row) : null;
}

export async function kvList(
  q: Queryable,
  namespace: string,
  options: KvListOptions,
): Promise<KvEntry[]> {
  return (await all(q, kvListQuery(DIALECT, namespace, options))).map(kvEntryFromRow);
}
