/**
 * The filtered reads of the security entities (listGrants, readAudit, listQuarantine, kvList),
 * written once for both adapters: the SQL is the same but for placeholders (`?` or `$n`) and the
 * key-prefix test. Limits are checked here too ({@link rowLimit}), so both refuse alike.
 */
import { rowLimit } from './row-limit.ts';
import { READ_LIMITS } from './security-rules.ts';
import type { AuditQuery, GrantFilter, KvListOptions, QuarantineFilter } from './types.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Query {
  readonly text: string;
  readonly values: unknown[];
}

class Builder {
  readonly values: unknown[] = [];
  readonly where: string[] = [];
  readonly #dialect: Dialect;

  constructor(dialect: Dialect) {
    this.#dialect = dialect;
  }

  /** The placeholder of a new parameter. */
  param(value: unknown): string {
    this.values.push(value);
    return this.#dialect === 'sqlite' ? '?' : `$${this.values.length}`;
  }

  /** `condition(placeholder)` when value is given. */
  when(value: unknown, condition: (p: string) => string): void {
    if (value !== undefined) this.where.push(condition(this.param(value)));
  }

  /** Keys starting with `prefix` (same answer on both: compared by code point). */
  prefix(column: string, prefix: string): void {
    this.where.push(
      this.#dialect === 'sqlite'
        ? `substr(${column}, 1, length(${this.param(prefix)})) = ${this.param(prefix)}`
        : `starts_with(${column}, ${this.param(prefix)}::text)`,
    );
  }

  build(table: string, order: string, limit: number): Query {
    const where = this.where.length > 0 ? ` WHERE ${this.where.join(' AND ')}` : '';
    const text = `SELECT * FROM ${table}${where} ORDER BY ${order} LIMIT ${this.param(limit)}`;
    return { text, values: this.values };
  }
}

export function policyVersionListQuery(dialect: Dialect, limit: number | undefined): Query {
  const { fallback, max } = READ_LIMITS.policyVersions;
  return new Builder(dialect).build(
    'policy_versions',
    'loaded_at DESC, id DESC',
    rowLimit('listPolicyVersions limit', limit, fallback, max),
  );
}

export function grantListQuery(dialect: Dialect, filter: GrantFilter): Query {
  const { fallback, max } = READ_LIMITS.grants;
  const q = new Builder(dialect);
  q.when(filter.principal, (p) => `principal = ${p}`);
  if (filter.activeAt !== undefined) {
    const at = filter.activeAt;
    q.where.push(
      `(revoked_at IS NULL OR revoked_at > ${q.param(at)})`,
      `(expires_at IS NULL OR expires_at > ${q.param(at)})`,
      '(budget IS NULL OR used < budget)',
    );
  }
  return q.build(
    'grants',
    'created_at, id',
    rowLimit('listGrants limit', filter.limit, fallback, max),
  );
}

export function auditReadQuery(dialect: Dialect, query: AuditQuery): Query {
  const { fallback, max } = READ_LIMITS.audit;
  const q = new Builder(dialect);
  q.when(query.afterSeq, (p) => `seq > ${p}`);
  q.when(query.since, (p) => `ts >= ${p}`);
  q.when(query.decision, (p) => `decision = ${p}`);
  q.when(query.principal, (p) => `principal = ${p}`);
  q.when(query.action, (p) => `action = ${p}`);
  return q.build('audit', 'seq', rowLimit('readAudit limit', query.limit, fallback, max));
}

export function quarantineListQuery(dialect: Dialect, filter: QuarantineFilter): Query {
  const { fallback, max } = READ_LIMITS.quarantine;
  const q = new Builder(dialect);
  q.when(filter.since, (p) => `ts >= ${p}`);
  q.when(filter.kind, (p) => `kind = ${p}`);
  return q.build(
    'quarantine',
    'ts DESC, id DESC',
    rowLimit('listQuarantine limit', filter.limit, fallback, max),
  );
}

export function kvListQuery(dialect: Dialect, namespace: string, options: KvListOptions): Query {
  const { fallback, max } = READ_LIMITS.kv;
  const q = new Builder(dialect);
  q.when(namespace, (p) => `namespace = ${p}`);
  if (options.prefix) q.prefix('key', options.prefix);
  return q.build('kv', 'key', rowLimit('kvList limit', options.limit, fallback, max));
}
