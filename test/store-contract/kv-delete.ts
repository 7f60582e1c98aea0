/**
 * The Store port contract for `kv.delete` (the agents' key-value store, DESIGN.md §8): deleting
 * a key, unconditionally (a missing key is a no-op) or compare-and-set on its version, atomic
 * with the rest of its commit. Every adapter's test file runs it next to the other kv tests in
 * {@link securityEntitiesContract} (`kvDeleteContract(name, open, hooks)`); a model-based
 * property checks any mix of kv.set and kv.delete against a plain map.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { isWardenError } from '../../src/core/index.ts';
import type { KvEntry, Store, StoreOp } from '../../src/store/index.ts';
import { allEvents, eventOp, expectWardenError, sessionRow, T0 } from './contract.ts';
import type { SecurityContractHooks } from './security-entities.ts';

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

const kvDelete = (key: string, expected_version?: number, namespace = 'ns'): StoreOp => ({
  op: 'kv.delete',
  namespace,
  key,
  ...(expected_version === undefined ? {} : { expected_version }),
});

/** kv.set's and kv.delete's CONFLICT details. */
const conflict = (
  key: string,
  version: number | null,
  expected: number | null,
  namespace = 'ns',
) => ({
  namespace,
  key,
  version,
  expected,
});

// ------------------------------------------------------------------ the model

interface ModelEntry {
  readonly value: unknown;
  readonly version: number;
}

type KvOp = Extract<StoreOp, { op: 'kv.set' | 'kv.delete' }>;

/**
 * Applies `ops` to `model` in order, as one commit: all of them, or (the first failing
 * compare-and-set's CONFLICT details returned) none.
 */
function applyModel(
  model: Map<string, ModelEntry>,
  ops: readonly KvOp[],
): ReturnType<typeof conflict> | null {
  const next = new Map(model);
  for (const op of ops) {
    const current = next.get(op.key);
    const expected = op.expected_version;
    if (op.op === 'kv.set') {
      if (expected !== undefined && expected !== (current?.version ?? null))
        return conflict(op.key, current?.version ?? null, expected, op.namespace);
      next.set(op.key, { value: op.value, version: (current?.version ?? 0) + 1 });
    } else {
      if (expected !== undefined && expected !== current?.version)
        return conflict(op.key, current?.version ?? null, expected, op.namespace);
      next.delete(op.key);
    }
  }
  model.clear();
  for (const [k, v] of next) model.set(k, v);
  return null;
}

let namespaces = 0;

export function kvDeleteContract(
  name: string,
  open: () => Promise<Store>,
  hooks: Pick<SecurityContractHooks, 'reopen'>,
): void {
  describe(`Store contract (kv.delete): ${name}`, () => {
    let store: Store;
    const others: Store[] = [];
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      for (const other of others.splice(0)) await other.close();
      await store.close();
    });

    const keys = async (namespace = 'ns') =>
      (await store.kvList(namespace)).map((e: KvEntry) => e.key);

    it('kv.delete removes an existing key, only in its namespace', async () => {
      await store.commit([kvSet('a', 1), kvSet('b', 2), kvSet('a', 3, undefined, 'other')]);
      await store.commit([kvDelete('a')]);
      expect(await store.kvGet('ns', 'a')).toBeNull();
      expect(await keys()).toEqual(['b']);
      expect(await store.kvGet('other', 'a')).toMatchObject({ value: 3, version: 1 });
    });

    it('kv.delete of a missing key is a no-op, and the rest of its commit applies', async () => {
      const session = sessionRow();
      await store.commit([{ op: 'session.insert', row: session }, kvSet('kept', 1)]);
      await store.commit([
        kvDelete('never-set'),
        kvDelete('kept', undefined, 'elsewhere'),
        eventOp(session.id, 'kv.deleted'),
      ]);
      expect(await store.kvGet('ns', 'never-set')).toBeNull();
      expect(await store.kvGet('ns', 'kept')).toMatchObject({ value: 1, version: 1 });
      expect((await allEvents(store, session.id)).map((e) => e.type)).toEqual(['kv.deleted']);
      // Twice in a row, and in one commit: the second finds nothing, still no error.
      await store.commit([kvDelete('kept'), kvDelete('kept')]);
      await store.commit([kvDelete('kept')]);
      expect(await keys()).toEqual([]);
    });

    it('kv.delete compare-and-set on the stored version deletes the key', async () => {
      await store.commit([kvSet('cas', 'v1')]);
      await store.commit([kvSet('cas', 'v2')]);
      await store.commit([kvDelete('cas', 2)]);
      expect(await store.kvGet('ns', 'cas')).toBeNull();
    });

    it('kv.delete compare-and-set on another version, or a missing key, is CONFLICT and changes nothing', async () => {
      await store.commit([kvSet('cas', 'v1')]);
      await store.commit([kvSet('cas', 'v2')]);
      const stale = await expectWardenError(
        store.commit([kvSet('side', true), kvDelete('cas', 1)]),
        'CONFLICT',
      );
      expect(stale.details).toEqual(conflict('cas', 2, 1));
      const ahead = await expectWardenError(store.commit([kvDelete('cas', 3)]), 'CONFLICT');
      expect(ahead.details).toEqual(conflict('cas', 2, 3));
      const missing = await expectWardenError(store.commit([kvDelete('absent', 1)]), 'CONFLICT');
      expect(missing.details).toEqual(conflict('absent', null, 1));
      expect(missing.message).toContain('ns/absent does not exist, expected version 1');
      // The same details shape as kv.set's compare-and-set.
      const set = await expectWardenError(store.commit([kvSet('cas', 'x', 1)]), 'CONFLICT');
      expect(Object.keys(stale.details ?? {}).sort()).toEqual(
        Object.keys(set.details ?? {}).sort(),
      );
      expect(await store.kvGet('ns', 'cas')).toEqual({
        value: 'v2',
        version: 2,
        updated_at: T0 + 20,
      });
      expect(await keys()).toEqual(['cas']);
    });

    it('kv.delete then kv.set re-creates the key at version 1', async () => {
      await store.commit([kvSet('k', 'a')]);
      await store.commit([kvSet('k', 'b')]);
      await store.commit([kvSet('k', 'c')]);
      await store.commit([kvDelete('k', 3)]);
      await store.commit([kvSet('k', 'again', null)]);
      expect(await store.kvGet('ns', 'k')).toMatchObject({ value: 'again', version: 1 });
      // In one commit too: the set sees the delete before it.
      await store.commit([kvSet('k', 'more')]);
      await store.commit([kvDelete('k'), kvSet('k', 'fresh', null)]);
      expect(await store.kvGet('ns', 'k')).toMatchObject({ value: 'fresh', version: 1 });
    });

    it('kv.delete rolls back with its commit when another op fails', async () => {
      const session = sessionRow();
      await store.commit([{ op: 'session.insert', row: session }, kvSet('k', 1), kvSet('j', 1)]);
      // A later kv op refuses…
      await expectWardenError(
        store.commit([kvDelete('k'), eventOp(session.id, 'kv.deleted'), kvSet('j', 2, 9)]),
        'CONFLICT',
      );
      // …or an op of another entity does.
      await expectWardenError(
        store.commit([kvDelete('k', 1), kvDelete('j'), { op: 'grant.use', id: 'g_none', now: T0 }]),
        'NOT_FOUND',
      );
      expect(await store.kvGet('ns', 'k')).toMatchObject({ value: 1, version: 1 });
      expect(await store.kvGet('ns', 'j')).toMatchObject({ value: 1, version: 1 });
      expect(await allEvents(store, session.id)).toEqual([]);
    });

    it('kv.delete checks its params like kv.set: INVALID_PARAMS, nothing changed', async () => {
      await store.commit([kvSet('k', 1)]);
      const bad: readonly Record<string, unknown>[] = [
        { key: '' },
        { namespace: '' },
        { key: 'k'.repeat(1_025) },
        { namespace: 'n'.repeat(257) },
        { key: 7 },
        { expected_version: 0 },
        { expected_version: 1.5 },
        { expected_version: '1' },
        // "Must not exist" has nothing to delete.
        { expected_version: null },
        { value: 1 },
      ];
      for (const over of bad) {
        const op = { ...kvDelete('k'), ...over };
        const error = await expectWardenError(store.commit([op]), 'INVALID_PARAMS');
        expect(error.message).toContain('kv.delete');
      }
      expect(await store.kvGet('ns', 'k')).toMatchObject({ value: 1, version: 1 });
      // The longest namespace and key kv.set takes are deletable.
      const [ns, key] = ['n'.repeat(256), 'k'.repeat(1_024)];
      await store.commit([kvSet(key, 1, undefined, ns)]);
      await store.commit([kvDelete(key, 1, ns)]);
      expect(await store.kvGet(ns, key)).toBeNull();
    });

    it('two stores racing a delete and a set at the same version: exactly one wins', async () => {
      const other = await hooks.reopen(store);
      others.push(other);
      for (let round = 0; round < 3; round += 1) {
        const key = `race-${round}`;
        await store.commit([kvSet(key, 0)]);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            (i % 2 === 0 ? store : other).commit([
              i % 3 === 0 ? kvSet(key, i, 1) : kvDelete(key, 1),
            ]),
          ),
        );
        const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
        expect(won).toHaveLength(1);
        for (const o of outcomes)
          if (o.status === 'rejected') expect(isWardenError(o.reason, 'CONFLICT')).toBe(true);
        const winner = won[0] ?? -1;
        expect(await other.kvGet('ns', key)).toEqual(
          winner % 3 === 0 ? { value: winner, version: 2, updated_at: T0 + 20 } : null,
        );
      }
    });

    it('any mix of kv.set and kv.delete commits agrees with a map model', async () => {
      const key = fc.constantFrom('a', 'b', 'c');
      const version = fc.integer({ min: 1, max: 4 });
      const op: fc.Arbitrary<(namespace: string) => KvOp> = fc.oneof(
        fc
          .tuple(
            key,
            fc.integer({ min: 0, max: 99 }),
            fc.option(fc.option(version), { nil: undefined }),
          )
          .map(
            ([k, value, expected]) =>
              (namespace: string) =>
                kvSet(k, value, expected, namespace) as KvOp,
          ),
        fc.tuple(key, fc.option(version, { nil: undefined })).map(
          ([k, expected]) =>
            (namespace: string) =>
              kvDelete(k, expected, namespace) as KvOp,
        ),
      );
      const commits = fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), {
        minLength: 1,
        maxLength: 8,
      });
      await fc.assert(
        fc.asyncProperty(commits, async (batches) => {
          // A namespace of its own per run: one store for every run.
          namespaces += 1;
          const namespace = `model-${String(namespaces)}`;
          const model = new Map<string, ModelEntry>();
          for (const batch of batches) {
            const ops = batch.map((make) => make(namespace));
            const refused = applyModel(model, ops);
            if (refused === null) await store.commit(ops);
            else
              expect((await expectWardenError(store.commit(ops), 'CONFLICT')).details).toEqual(
                refused,
              );
            const stored = (await store.kvList(namespace)).map((e) => [
              e.key,
              { value: e.value, version: e.version },
            ]);
            expect(stored).toEqual([...model].sort(([a], [b]) => a.localeCompare(b)));
          }
        }),
        { numRuns: 30 },
      );
    });
  });
}
