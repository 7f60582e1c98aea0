/**
 * One policy version held by the PDP: its policies indexed by principal and action scope, the
 * pre-parsed Cedar sets built from them on demand (one per distinct group of policies that can
 * apply to a principal and an action: only those are evaluated), and
 * its decision cache. Dropping a version releases its pre-parsed sets; a version that is never
 * released (a PDP garbage-collected without `close()`) is released by a FinalizationRegistry.
 */
import type { EntityJson } from '@cedar-policy/cedar-wasm/nodejs';

import type { DecisionResult } from '../../core/index.ts';
import { acquireSet, type CompiledPolicy, entityKey, releaseSet } from './cedar.ts';
import type { PreparedPolicy } from './prepare.ts';

/** (principal, action) pairs whose subset is remembered; past this the memo starts over. */
const MAX_MEMO = 4_096;

/** The policies that can apply to one principal and action, pre-parsed. */
export interface PolicySubset {
  readonly setId: string;
  readonly policies: readonly CompiledPolicy[];
}

const finalizer = new FinalizationRegistry<string[]>((held) => {
  for (const id of held) releaseSet(id);
});

export class LoadedVersion {
  readonly prepared: PreparedPolicy;
  readonly byId: ReadonlyMap<string, CompiledPolicy>;
  /** Decision cache, least recently used first. */
  readonly cache = new Map<string, DecisionResult>();
  /** Use counter value of the last activate / retain / decide (eviction order). */
  lastUsed = 0;
  readonly #buckets = new Map<string, CompiledPolicy[]>();
  readonly #order = new Map<CompiledPolicy, number>();
  readonly #subsets = new Map<string, PolicySubset>();
  readonly #memo = new Map<string, PolicySubset>();
  /** Pre-parsed set ids this version holds (shared with the finalizer). */
  readonly #held: string[] = [];

  constructor(prepared: PreparedPolicy) {
    this.prepared = prepared;
    const byId = new Map<string, CompiledPolicy>();
    prepared.policies.forEach((policy, i) => {
      byId.set(policy.id, policy);
      this.#order.set(policy, i);
      const bucket = this.#buckets.get(policy.bucket);
      if (bucket === undefined) this.#buckets.set(policy.bucket, [policy]);
      else bucket.push(policy);
    });
    this.byId = byId;
    finalizer.register(this, this.#held, this);
  }

  /**
   * The policies whose scope can match this principal and action, pre-parsed (memoised by the
   * two names). A policy outside the subset could not be satisfied, and could not fail either:
   * Cedar checks the scope before the conditions.
   */
  subsetFor(
    principal: string,
    entity: EntityJson,
    action: string,
    actionEntity: EntityJson,
  ): PolicySubset {
    const memo = `${principal}\n${action}`;
    const known = this.#memo.get(memo);
    if (known !== undefined) return known;
    const uid = '__entity' in entity.uid ? entity.uid.__entity : entity.uid;
    const keys = ['*', `is:${uid.type}`, entityKey('eq', uid), entityKey('in', uid)];
    for (const parent of entity.parents) keys.push(entityKey('in', parent));
    const actionUid = '__entity' in actionEntity.uid ? actionEntity.uid.__entity : actionEntity.uid;
    const actionKeys = new Set(['*', entityKey('eq', actionUid), entityKey('in', actionUid)]);
    for (const parent of actionEntity.parents) actionKeys.add(entityKey('in', parent));
    const found = new Set<CompiledPolicy>();
    for (const key of keys)
      for (const p of this.#buckets.get(key) ?? [])
        if (p.actionBuckets.some((k) => actionKeys.has(k))) found.add(p);
    const policies = [...found].sort((a, b) => this.#order.get(a)! - this.#order.get(b)!);
    const subsetKey = policies.map((p) => p.id).join('\n');
    let subset = this.#subsets.get(subsetKey);
    if (subset === undefined) {
      const setId = acquireSet(policies);
      this.#held.push(setId);
      subset = { setId, policies };
      this.#subsets.set(subsetKey, subset);
    }
    if (this.#memo.size >= MAX_MEMO) this.#memo.clear();
    this.#memo.set(memo, subset);
    return subset;
  }

  /** Frees the pre-parsed sets and the cache (the version can still decide: it rebuilds). */
  release(): void {
    for (const id of this.#held.splice(0)) releaseSet(id);
    this.#subsets.clear();
    this.#memo.clear();
    this.cache.clear();
  }
}
