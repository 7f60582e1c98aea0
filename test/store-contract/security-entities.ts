/**
 * The Store port contract for the security entities (DESIGN.md §4, §8): policy versions,
 * grants, the audit log, quarantine and the agents' key-value store. Every adapter's test file
 * runs it next to {@link storeContract} (`securityEntitiesContract(name, open, hooks)`).
 *
 * Behaviour is tested through the port, except where the contract is about the database
 * itself: `hooks` give a second store on the same database (another connection or node, for
 * the races) and raw SQL on it (the audit log's append-only triggers, and tampering with a
 * record to see verification find it).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  findAuditBreak,
  GENESIS_HASH,
  hashAuditRecord,
  isWardenError,
  SYSTEM_SESSION_KEY,
} from '../../src/core/index.ts';
import type { AuditRecord, QuarantineRecord } from '../../src/core/policy/types.ts';
import type {
  NewAuditRecord,
  NewGrant,
  SessionRecord,
  Store,
  StoreOp,
} from '../../src/store/index.ts';
import { allEvents, eventOp, expectWardenError, sessionRow, T0 } from './contract.ts';

export interface SecurityContractHooks {
  /** A second store on the same database as `store` (another connection; another node). */
  reopen(store: Store): Promise<Store>;
  /** Runs SQL on `store`'s database outside the store; rejects with the database's error. */
  sql(store: Store, text: string): Promise<void>;
  /** SQL that removes the audit table's append-only triggers (to tamper with it). */
  readonly dropAuditTriggers: string;
}

let counter = 0;
const uid = (prefix: string) => `${prefix}_${String((counter += 1)).padStart(6, '0')}`;

export function grantRow(over: Partial<NewGrant> = {}): NewGrant {
  return {
    id: uid('g'),
    principal: 'agent:w/a',
    action: 'tool.call',
    resource: 'tool:http.get',
    ask: false,
    budget: null,
    expires_at: null,
    created_at: T0,
    created_by: 'user:ops',
    reason: 'contract',
    ...over,
  };
}

export function auditRecord(over: Partial<NewAuditRecord> = {}): NewAuditRecord {
  return {
    ts: T0,
    trace_id: 'tr_audit',
    principal: 'agent:w/a',
    action: 'tool.call',
    resource: 'tool:http.get',
    decision: 'allow',
    decided: 'allow',
    reasons: ['policy0: permit'],
    policy_version: 'pv_1',
    context: { attempt: 1, nested: { z: 1, a: [1, 'x', null] }, text: 'é ✓ 𝄞' },
    ...over,
  };
}

export function quarantineRow(over: Partial<QuarantineRecord> = {}): QuarantineRecord {
  return {
    id: uid('q'),
    ts: T0,
    trace_id: 'tr_q',
    kind: 'ssrf',
    principal: 'agent:w/a',
    action: 'http.request',
    resource: 'url:http://169.254.169.254/',
    reasons: ['metadata address'],
    context: { resolved: ['169.254.169.254'] },
    process_id: null,
    session_id: null,
    ...over,
  };
}

const use = (id: string, now = T0 + 10): StoreOp => ({ op: 'grant.use', id, now });
const append = (...records: NewAuditRecord[]): StoreOp => ({ op: 'audit.append', records });
const kvSet = (
  key: string,
  value: unknown,
  expected_version?: number | null,
  namespace = 'ns',
): StoreOp => ({
  op: 'kv.set',
  namespace,
  key,
  value,
  ...(expected_version === undefined ? {} : { expected_version }),
  now: T0 + 20,
});
const policy = (id: string, source: Record<string, string>, activate: boolean, now: number) =>
  ({ op: 'policy.version', id, source, loaded_at: now, activate, now }) as const;

/** Every audit record, in seq order. */
async function allAudit(store: Store): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (;;) {
    const page = await store.readAudit({ afterSeq: out.at(-1)?.seq ?? 0, limit: 10_000 });
    if (page.length === 0) return out;
    out.push(...page);
  }
}

export function securityEntitiesContract(
  name: string,
  open: () => Promise<Store>,
  hooks: SecurityContractHooks,
): void {
  describe(`Store contract (policy versions, grants, audit, quarantine, kv): ${name}`, () => {
    let store: Store;
    const others: Store[] = [];
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      for (const other of others.splice(0)) await other.close();
      await store.close();
    });

    async function second(): Promise<Store> {
      const other = await hooks.reopen(store);
      others.push(other);
      return other;
    }

    async function newSession(over: Partial<SessionRecord> = {}): Promise<SessionRecord> {
      const row = sessionRow(over);
      await store.commit([{ op: 'session.insert', row }]);
      return row;
    }

    describe('policy versions', () => {
      it('stores a version once, activates it, and reads it back', async () => {
        expect(await store.activePolicyVersion()).toBeNull();
        expect(await store.getPolicyVersion('pv_missing')).toBeUndefined();
        const source = { 'main.yaml': 'allow: [kv.get]\n', 'extra.cedar': 'permit(...);' };
        await store.commit([policy('pv_a', source, false, T0)]);
        expect(await store.getPolicyVersion('pv_a')).toEqual({
          id: 'pv_a',
          source,
          loaded_at: T0,
          activated_at: null,
        });
        // Persisted but not active until activated.
        expect(await store.activePolicyVersion()).toBeNull();
        await store.commit([policy('pv_a', source, true, T0 + 5)]);
        expect(await store.activePolicyVersion()).toEqual({
          id: 'pv_a',
          source,
          loaded_at: T0,
          activated_at: T0 + 5,
        });
      });

      it('is idempotent: the same id and source again changes nothing but activation', async () => {
        const source = { 'p.yaml': 'x' };
        await store.commit([policy('pv_same', source, true, T0)]);
        await store.commit([policy('pv_same', { 'p.yaml': 'x' }, false, T0 + 50)]);
        expect(await store.getPolicyVersion('pv_same')).toEqual({
          id: 'pv_same',
          source,
          loaded_at: T0,
          activated_at: T0,
        });
        expect(await store.listPolicyVersions()).toHaveLength(1);
      });

      it('the active version is the one activated last; older ones can be activated again', async () => {
        await store.commit([policy('pv_1', { f: '1' }, true, T0 + 1)]);
        await store.commit([policy('pv_2', { f: '2' }, true, T0 + 2)]);
        await store.commit([policy('pv_3', { f: '3' }, false, T0 + 3)]);
        expect((await store.activePolicyVersion())?.id).toBe('pv_2');
        await store.commit([policy('pv_1', { f: '1' }, true, T0 + 4)]);
        expect(await store.activePolicyVersion()).toMatchObject({
          id: 'pv_1',
          loaded_at: T0 + 1,
          activated_at: T0 + 4,
        });
        expect((await store.listPolicyVersions()).map((v) => v.id)).toEqual([
          'pv_3',
          'pv_2',
          'pv_1',
        ]);
        expect((await store.listPolicyVersions({ limit: 1 })).map((v) => v.id)).toEqual(['pv_3']);
        await expectWardenError(store.listPolicyVersions({ limit: 0 }), 'INVALID_PARAMS');
      });

      it('the same id with another source is STORE_CORRUPT and the whole commit changes nothing', async () => {
        const session = await newSession();
        await store.commit([policy('pv_x', { f: 'one' }, true, T0)]);
        await expectWardenError(
          store.commit([
            eventOp(session.id, 'policy.loaded'),
            kvSet('k', 1),
            policy('pv_x', { f: 'two' }, true, T0 + 9),
          ]),
          'STORE_CORRUPT',
        );
        expect(await store.getPolicyVersion('pv_x')).toMatchObject({
          source: { f: 'one' },
          activated_at: T0,
        });
        expect(await store.kvGet('ns', 'k')).toBeNull();
        expect(await allEvents(store, session.id)).toEqual([]);
      });
    });

    describe('grants', () => {
      it('grant.create round-trips (nothing used, not revoked); a taken id is CONFLICT', async () => {
        const grant = grantRow({ budget: 3, expires_at: T0 + 1_000, ask: true, reason: null });
        await store.commit([{ op: 'grant.create', grant }]);
        expect(await store.getGrant(grant.id)).toEqual({
          ...grant,
          used: 0,
          revoked_at: null,
          revoked_by: null,
          revoke_reason: null,
        });
        expect(await store.getGrant('g_missing')).toBeUndefined();
        await expectWardenError(
          store.commit([{ op: 'grant.create', grant: { ...grant, principal: 'other' } }]),
          'CONFLICT',
        );
        expect((await store.getGrant(grant.id))?.principal).toBe(grant.principal);
      });

      it('its events go to the system session in the same commit', async () => {
        const system = await newSession({ key: SYSTEM_SESSION_KEY });
        const grant = grantRow();
        const events = await store.commit([
          { op: 'grant.create', grant },
          eventOp(system.id, 'grant.created', { id: grant.id }),
        ]);
        expect(events).toMatchObject([
          { session_id: system.id, seq: 1, type: 'grant.created', data: { id: grant.id } },
        ]);
      });

      it('grant.revoke is compare-and-set: once, INVALID_STATE again, NOT_FOUND when missing', async () => {
        const session = await newSession();
        const grant = grantRow();
        await store.commit([{ op: 'grant.create', grant }]);
        await store.commit([
          { op: 'grant.revoke', id: grant.id, by: 'user:ops', reason: 'leaked', now: T0 + 7 },
        ]);
        expect(await store.getGrant(grant.id)).toMatchObject({
          revoked_at: T0 + 7,
          revoked_by: 'user:ops',
          revoke_reason: 'leaked',
        });
        const error = await expectWardenError(
          store.commit([
            eventOp(session.id, 'grant.revoked'),
            kvSet('after-revoke', true),
            { op: 'grant.revoke', id: grant.id, by: 'user:other', reason: null, now: T0 + 9 },
          ]),
          'INVALID_STATE',
        );
        expect(error.details).toMatchObject({ grant_id: grant.id, revoked_at: T0 + 7 });
        expect(await store.getGrant(grant.id)).toMatchObject({
          revoked_at: T0 + 7,
          revoked_by: 'user:ops',
        });
        expect(await allEvents(store, session.id)).toEqual([]);
        expect(await store.kvGet('ns', 'after-revoke')).toBeNull();
        await expectWardenError(
          store.commit([{ op: 'grant.revoke', id: 'g_missing', by: 'u', reason: null, now: T0 }]),
          'NOT_FOUND',
        );
      });

      it('grant.use spends the budget, then POLICY_DENIED exhausted changes nothing', async () => {
        const session = await newSession();
        const grant = grantRow({ budget: 2 });
        const other = grantRow({ budget: 5 });
        await store.commit([
          { op: 'grant.create', grant },
          { op: 'grant.create', grant: other },
        ]);
        await store.commit([use(grant.id)]);
        await store.commit([use(grant.id)]);
        expect((await store.getGrant(grant.id))?.used).toBe(2);
        const error = await expectWardenError(
          store.commit([eventOp(session.id, 'grant.used'), use(other.id), use(grant.id)]),
          'POLICY_DENIED',
        );
        expect(error.details).toEqual({ grant_id: grant.id, why: 'exhausted' });
        expect((await store.getGrant(grant.id))?.used).toBe(2);
        // The other grant's use in the refused commit was rolled back too.
        expect((await store.getGrant(other.id))?.used).toBe(0);
        expect(await allEvents(store, session.id)).toEqual([]);
      });

      it('grant.use: a null budget is unlimited; expired and revoked grants are denied with why', async () => {
        const unlimited = grantRow({ budget: null });
        const expiring = grantRow({ budget: null, expires_at: T0 + 100 });
        const revoked = grantRow({ budget: 10 });
        await store.commit([
          { op: 'grant.create', grant: unlimited },
          { op: 'grant.create', grant: expiring },
          { op: 'grant.create', grant: revoked },
          { op: 'grant.revoke', id: revoked.id, by: 'user:ops', reason: null, now: T0 + 1 },
        ]);
        for (let i = 0; i < 5; i++) await store.commit([use(unlimited.id)]);
        expect((await store.getGrant(unlimited.id))?.used).toBe(5);

        await store.commit([use(expiring.id, T0 + 99)]);
        // Expired at its expiry time.
        const expired = await expectWardenError(
          store.commit([use(expiring.id, T0 + 100)]),
          'POLICY_DENIED',
        );
        expect(expired.details).toEqual({ grant_id: expiring.id, why: 'expired' });
        expect((await store.getGrant(expiring.id))?.used).toBe(1);

        const denied = await expectWardenError(store.commit([use(revoked.id)]), 'POLICY_DENIED');
        expect(denied.details).toEqual({ grant_id: revoked.id, why: 'revoked' });
        expect((await store.getGrant(revoked.id))?.used).toBe(0);

        await expectWardenError(store.commit([use('g_missing')]), 'NOT_FOUND');
      });

      it('listGrants filters by principal and by what is usable at a time', async () => {
        const a = grantRow({ principal: 'agent:w/list', created_at: T0 + 1 });
        const b = grantRow({ principal: 'agent:w/list', created_at: T0 + 2, budget: 1 });
        const c = grantRow({ principal: 'agent:w/list', created_at: T0 + 3, expires_at: T0 + 50 });
        const d = grantRow({ principal: 'agent:w/list', created_at: T0 + 4 });
        const e = grantRow({ principal: 'token:tok_other', created_at: T0 });
        await store.commit(
          [a, b, c, d, e].map((grant): StoreOp => ({ op: 'grant.create', grant })),
        );
        await store.commit([
          use(b.id),
          { op: 'grant.revoke', id: d.id, by: 'user:ops', reason: null, now: T0 + 30 },
        ]);
        const ids = async (filter: Parameters<Store['listGrants']>[0]) =>
          (await store.listGrants(filter)).map((g) => g.id);
        expect(await ids({})).toEqual([e.id, a.id, b.id, c.id, d.id]);
        expect(await ids({ principal: 'agent:w/list' })).toEqual([a.id, b.id, c.id, d.id]);
        // At T0+40: b is spent, d revoked (at T0+30); c expires at T0+50.
        expect(await ids({ principal: 'agent:w/list', activeAt: T0 + 40 })).toEqual([a.id, c.id]);
        expect(await ids({ principal: 'agent:w/list', activeAt: T0 + 60 })).toEqual([a.id]);
        // Before the revocation, d was usable.
        expect(await ids({ principal: 'agent:w/list', activeAt: T0 + 20 })).toEqual([
          a.id,
          c.id,
          d.id,
        ]);
        expect(await ids({ limit: 2 })).toEqual([e.id, a.id]);
        await expectWardenError(store.listGrants({ limit: -1 }), 'INVALID_PARAMS');
      });

      it('rejects a malformed grant with INVALID_PARAMS, writing nothing', async () => {
        const bad = { ...grantRow(), budget: -1 };
        await expectWardenError(
          store.commit([{ op: 'grant.create', grant: bad }]),
          'INVALID_PARAMS',
        );
        expect(await store.getGrant(bad.id)).toBeUndefined();
      });

      it('two stores racing for a budget-1 grant: exactly one use wins', async () => {
        const other = await second();
        const grant = grantRow({ budget: 1 });
        await store.commit([{ op: 'grant.create', grant }]);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) =>
            (i % 2 === 0 ? store : other).commit([use(grant.id)]),
          ),
        );
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(7);
        for (const o of lost) {
          expect(isWardenError(o.reason, 'POLICY_DENIED'), String(o.reason)).toBe(true);
          expect((o.reason as { details: unknown }).details).toEqual({
            grant_id: grant.id,
            why: 'exhausted',
          });
        }
        expect((await store.getGrant(grant.id))?.used).toBe(1);
        expect((await other.getGrant(grant.id))?.used).toBe(1);
      });
    });

    describe('audit', () => {
      it('assigns contiguous seqs from 1 and chains sha256(prev_hash ‖ canonical record)', async () => {
        expect(await store.verifyAudit()).toEqual({ ok: true, count: 0 });
        const first = auditRecord({ trace_id: 'tr_1' });
        const second = auditRecord({
          trace_id: 'tr_2',
          decision: 'allow',
          decided: 'deny',
          reasons: ['audit mode', 'forbid0'],
        });
        await store.commit([append(first, second)]);
        await store.commit([
          append(auditRecord({ trace_id: 'tr_3', decision: 'ask', decided: 'ask' })),
        ]);
        await store.commit([append()]); // nothing to append: no record, no gap
        const records = await allAudit(store);
        expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
        expect(records[0]).toEqual({
          ...first,
          seq: 1,
          prev_hash: GENESIS_HASH,
          hash: records[0]!.hash,
        });
        expect(records[1]).toMatchObject({ ...second, seq: 2, prev_hash: records[0]!.hash });
        for (const { hash, ...body } of records) expect(hashAuditRecord(body)).toBe(hash);
        expect(findAuditBreak(records)).toBeNull();
        expect(await store.verifyAudit()).toEqual({ ok: true, count: 3 });
      });

      it('readAudit filters by seq, time, decision, principal and action, in seq order', async () => {
        await store.commit([
          append(
            auditRecord({ ts: T0 + 1, principal: 'agent:w/a', decision: 'allow' }),
            auditRecord({ ts: T0 + 2, principal: 'agent:w/b', decision: 'deny', decided: 'deny' }),
            auditRecord({ ts: T0 + 3, principal: 'agent:w/a', action: 'kv.set' }),
            auditRecord({ ts: T0 + 4, principal: 'agent:w/a', decision: 'deny', decided: 'deny' }),
          ),
        ]);
        const seqs = async (query: Parameters<Store['readAudit']>[0]) =>
          (await store.readAudit(query)).map((r) => r.seq);
        expect(await seqs({})).toEqual([1, 2, 3, 4]);
        expect(await seqs({ afterSeq: 2 })).toEqual([3, 4]);
        expect(await seqs({ since: T0 + 3 })).toEqual([3, 4]);
        expect(await seqs({ decision: 'deny' })).toEqual([2, 4]);
        expect(await seqs({ principal: 'agent:w/a', decision: 'deny' })).toEqual([4]);
        expect(await seqs({ action: 'kv.set' })).toEqual([3]);
        expect(await seqs({ limit: 3, afterSeq: 0 })).toEqual([1, 2, 3]);
        await expectWardenError(store.readAudit({ decision: 'maybe' as 'deny' }), 'INVALID_PARAMS');
      });

      it('an append in a refused commit leaves no record and no gap', async () => {
        await store.commit([append(auditRecord())]);
        await expectWardenError(
          store.commit([append(auditRecord(), auditRecord()), use('g_missing')]),
          'NOT_FOUND',
        );
        expect((await allAudit(store)).map((r) => r.seq)).toEqual([1]);
        await store.commit([append(auditRecord({ trace_id: 'tr_next' }))]);
        const records = await allAudit(store);
        expect(records.map((r) => [r.seq, r.trace_id])).toEqual([
          [1, 'tr_audit'],
          [2, 'tr_next'],
        ]);
        expect(await store.verifyAudit()).toEqual({ ok: true, count: 2 });
      });

      it('refuses malformed and oversized records, appending nothing', async () => {
        await expectWardenError(
          store.commit([append(auditRecord(), { ...auditRecord(), decision: 'maybe' as 'allow' })]),
          'INVALID_PARAMS',
        );
        await expectWardenError(
          store.commit([append({ ...auditRecord(), extra: 1 } as NewAuditRecord)]),
          'INVALID_PARAMS',
        );
        await expectWardenError(
          store.commit([append(auditRecord({ context: { blob: 'x'.repeat(300_000) } }))]),
          'PAYLOAD_TOO_LARGE',
        );
        expect(await allAudit(store)).toEqual([]);
      });

      it('two stores appending concurrently (200 commits each) keep seq contiguous and the chain intact', async () => {
        const other = await second();
        const appendAll = (s: Store, who: string) =>
          Promise.all(
            Array.from({ length: 200 }, (_, i) =>
              s.commit([append(auditRecord({ trace_id: `${who}_${i}`, context: { i } }))]),
            ),
          );
        await Promise.all([appendAll(store, 'one'), appendAll(other, 'two')]);
        const records = await allAudit(store);
        expect(records).toHaveLength(400);
        expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
        expect(findAuditBreak(records)).toBeNull();
        const traces = new Set(records.map((r) => r.trace_id));
        for (let i = 0; i < 200; i++) {
          expect(traces.has(`one_${i}`)).toBe(true);
          expect(traces.has(`two_${i}`)).toBe(true);
        }
        expect(await store.verifyAudit()).toEqual({ ok: true, count: 400 });
        expect(await other.verifyAudit()).toEqual({ ok: true, count: 400 });
      });

      it('the database refuses UPDATE and DELETE of audit records', async () => {
        await store.commit([append(auditRecord(), auditRecord(), auditRecord())]);
        const before = await allAudit(store);
        await expect(
          hooks.sql(store, `UPDATE audit SET reasons = '["forged"]' WHERE seq = 2`),
        ).rejects.toThrow(/append-only/);
        await expect(hooks.sql(store, 'DELETE FROM audit WHERE seq = 3')).rejects.toThrow(
          /append-only/,
        );
        await expect(hooks.sql(store, 'DELETE FROM audit')).rejects.toThrow(/append-only/);
        expect(await allAudit(store)).toEqual(before);
        expect(await store.verifyAudit()).toEqual({ ok: true, count: 3 });
      });

      it('deleting sessions and pruning history leave the audit log alone', async () => {
        const system = await newSession({ key: SYSTEM_SESSION_KEY });
        const session = await newSession();
        await store.commit([eventOp(session.id, 'x'), append(auditRecord(), auditRecord())]);
        await store.deleteSession({
          id: session.id,
          event: { session_id: system.id, trace_id: 'tr_del' },
        });
        await store.prune({
          policy: { finishedBefore: T0 * 2, deadBefore: T0 * 2, eventsBefore: T0 * 2 },
          limit: 1_000,
          event: { session_id: system.id, trace_id: 'tr_prune' },
        });
        expect(await allAudit(store)).toHaveLength(2);
        expect(await store.verifyAudit()).toEqual({ ok: true, count: 2 });
      });

      describe('verifyAudit finds a tampered log', () => {
        beforeEach(async () => {
          await store.commit([
            append(
              auditRecord({ trace_id: 'tr_1' }),
              auditRecord({ trace_id: 'tr_2', decision: 'deny', decided: 'deny' }),
              auditRecord({ trace_id: 'tr_3' }),
              auditRecord({ trace_id: 'tr_4' }),
            ),
          ]);
          await hooks.sql(store, hooks.dropAuditTriggers);
        });

        it('a changed record: hash_mismatch at its seq', async () => {
          await hooks.sql(store, `UPDATE audit SET decision = 'allow' WHERE seq = 2`);
          expect(await store.verifyAudit()).toMatchObject({
            ok: false,
            count: 1,
            first_broken: { seq: 2, reason: 'hash_mismatch' },
          });
        });

        it('a removed record: seq_gap', async () => {
          await hooks.sql(store, 'DELETE FROM audit WHERE seq = 3');
          expect(await store.verifyAudit()).toMatchObject({
            ok: false,
            count: 2,
            first_broken: { seq: 3, reason: 'seq_gap' },
          });
        });

        it('records cut off the end: head_mismatch', async () => {
          await hooks.sql(store, 'DELETE FROM audit WHERE seq >= 3');
          expect(await store.verifyAudit()).toMatchObject({
            ok: false,
            count: 2,
            first_broken: { seq: 3, reason: 'head_mismatch' },
          });
        });

        it('a re-chained record (hashes recomputed, head left): head_mismatch', async () => {
          const [, , , last] = await allAudit(store);
          const { hash: _hash, ...body } = { ...last!, reasons: ['forged'] };
          await hooks.sql(
            store,
            `UPDATE audit SET reasons = '["forged"]', hash = '${hashAuditRecord(body)}' WHERE seq = 4`,
          );
          expect(await store.verifyAudit()).toMatchObject({
            ok: false,
            first_broken: { seq: 4, reason: 'head_mismatch' },
          });
        });
      });
    });

    describe('quarantine', () => {
      it('quarantine.add round-trips; a taken id is CONFLICT', async () => {
        const record = quarantineRow({ process_id: 'p_1', session_id: 's_1' });
        await store.commit([{ op: 'quarantine.add', record }]);
        expect(await store.getQuarantine(record.id)).toEqual(record);
        expect(await store.getQuarantine('q_missing')).toBeUndefined();
        await expectWardenError(
          store.commit([{ op: 'quarantine.add', record: { ...record, kind: 'path' } }]),
          'CONFLICT',
        );
        expect((await store.getQuarantine(record.id))?.kind).toBe('ssrf');
      });

      it('listQuarantine is newest first, by time and kind', async () => {
        const a = quarantineRow({ ts: T0 + 1, kind: 'ssrf' });
        const b = quarantineRow({ ts: T0 + 2, kind: 'command' });
        const c = quarantineRow({ ts: T0 + 3, kind: 'ssrf' });
        await store.commit([a, b, c].map((record): StoreOp => ({ op: 'quarantine.add', record })));
        const ids = async (filter: Parameters<Store['listQuarantine']>[0]) =>
          (await store.listQuarantine(filter)).map((q) => q.id);
        expect(await ids({})).toEqual([c.id, b.id, a.id]);
        expect(await ids({ kind: 'ssrf' })).toEqual([c.id, a.id]);
        expect(await ids({ since: T0 + 2 })).toEqual([c.id, b.id]);
        expect(await ids({ limit: 1 })).toEqual([c.id]);
      });
    });

    describe('kv', () => {
      it('kv.set inserts at version 1 and bumps it on every set; kvGet reads it', async () => {
        expect(await store.kvGet('ns', 'k')).toBeNull();
        await store.commit([kvSet('k', { a: [1, 2], s: 'é' })]);
        expect(await store.kvGet('ns', 'k')).toEqual({
          value: { a: [1, 2], s: 'é' },
          version: 1,
          updated_at: T0 + 20,
        });
        await store.commit([kvSet('k', null)]);
        expect(await store.kvGet('ns', 'k')).toMatchObject({ value: null, version: 2 });
        expect(await store.kvGet('other', 'k')).toBeNull();
      });

      it('kv.set compare-and-set: null means absent, a number the stored version', async () => {
        const session = await newSession();
        await store.commit([kvSet('cas', 1, null)]);
        const exists = await expectWardenError(
          store.commit([eventOp(session.id, 'kv.set'), kvSet('cas', 2, null)]),
          'CONFLICT',
        );
        expect(exists.details).toEqual({ namespace: 'ns', key: 'cas', version: 1, expected: null });
        const stale = await expectWardenError(
          store.commit([kvSet('side', true), kvSet('cas', 3, 7)]),
          'CONFLICT',
        );
        expect(stale.details).toEqual({ namespace: 'ns', key: 'cas', version: 1, expected: 7 });
        await expectWardenError(store.commit([kvSet('absent', 1, 1)]), 'CONFLICT');
        // Nothing of the refused commits applied.
        expect(await store.kvGet('ns', 'cas')).toMatchObject({ value: 1, version: 1 });
        expect(await store.kvGet('ns', 'side')).toBeNull();
        expect(await store.kvGet('ns', 'absent')).toBeNull();
        expect(await allEvents(store, session.id)).toEqual([]);
        await store.commit([kvSet('cas', 4, 1)]);
        expect(await store.kvGet('ns', 'cas')).toMatchObject({ value: 4, version: 2 });
      });

      it('kvList lists a namespace in key order, by prefix, bounded', async () => {
        await store.commit(['b/2', 'a', 'b/1', 'b', 'ba', 'é', 'c'].map((key, i) => kvSet(key, i)));
        await store.commit([kvSet('b/3', 'elsewhere', undefined, 'other')]);
        const keys = async (options?: Parameters<Store['kvList']>[1]) =>
          (await store.kvList('ns', options)).map((e) => e.key);
        expect(await keys()).toEqual(['a', 'b', 'b/1', 'b/2', 'ba', 'c', 'é']);
        expect(await keys({ prefix: 'b/' })).toEqual(['b/1', 'b/2']);
        expect(await keys({ prefix: 'b' })).toEqual(['b', 'b/1', 'b/2', 'ba']);
        expect(await keys({ prefix: 'zz' })).toEqual([]);
        expect(await keys({ limit: 2 })).toEqual(['a', 'b']);
        expect((await store.kvList('ns', { prefix: 'b/1' }))[0]).toEqual({
          key: 'b/1',
          value: 2,
          version: 1,
          updated_at: T0 + 20,
        });
      });

      it('a value over 64 KiB of JSON is PAYLOAD_TOO_LARGE', async () => {
        await store.commit([kvSet('big', 'x'.repeat(65_000))]);
        const error = await expectWardenError(
          store.commit([kvSet('big', 'x'.repeat(65_535))]),
          'PAYLOAD_TOO_LARGE',
        );
        expect(error.details).toMatchObject({ max_bytes: 65_536 });
        expect((await store.kvGet('ns', 'big'))?.version).toBe(1);
        await expectWardenError(store.commit([kvSet('', 1)]), 'INVALID_PARAMS');
      });

      it('two stores setting the same version: exactly one wins', async () => {
        const other = await second();
        await store.commit([kvSet('race', 0)]);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            (i % 2 === 0 ? store : other).commit([kvSet('race', i, 1)]),
          ),
        );
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        for (const o of outcomes)
          if (o.status === 'rejected') expect(isWardenError(o.reason, 'CONFLICT')).toBe(true);
        expect((await other.kvGet('ns', 'race'))?.version).toBe(2);
      });
    });
  });
}
