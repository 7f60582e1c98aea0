/**
 * One policy version held by the PDP: its policies indexed by principal scope, the pre-parsed
 * Cedar sets built from them on demand (one per distinct group of applicable policies), and
 * its decision cache. Dropping a version releases its pre-parsed sets; a version that is never
 * released (a PDP garbage-collected without `close()`) is released by a FinalizationRegistry.
 */
import type { EntityJson } from '@cedar-policy/cedar-wasm/nodejs';

import type { DecisionResult } from '../../core/index.ts';
import { acquireSet, type CompiledPolicy, entityKey, releaseSet } from './cedar.ts';
import type { PreparedPolicy } from './prepare.ts';

/** Principals whose policy subset is remembered; past this the memo starts over. */
const MAX_PRINCIPALS = 4_096;

/** The policies that can apply to one principal, pre-parsed. */
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
  readonly #byPrincipal = new Map<string, PolicySubset>();
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

  /** The policies whose principal scope can match `entity`, pre-parsed (memoised). */
  subsetFor(name: string, entity: EntityJson): PolicySubset {
    const known = this.#byPrincipal.get(name);
    if (known !== undefined) return known;
    const uid = '__entity' in entity.uid ? entity.uid.__entity : entity.uid;
    const keys = ['*', `is:${uid.type}`, entityKey('eq', uid), entityKey('in', uid)];
    for (const parent of entity.parents) keys.push(entityKey('in', parent));
    const found = new Set<CompiledPolicy>();
    for (const key of keys) for (const p of this.#buckets.get(key) ?? []) found.add(p);
    const policies = [...found].sort((a, b) => this.#order.get(a)! - this.#order.get(b)!);
    const subsetKey = policies.map((p) => p.id).join('\n');
    let subset = this.#subsets.get(subsetKey);
    if (subset === undefined) {
      const setId = acquireSet(policies);
      this.#held.push(setId);
      subset = { setId, policies };
      this.#subsets.set(subsetKey, subset);
    }
    if (this.#byPrincipal.size >= MAX_PRINCIPALS) this.#byPrincipal.clear();
    this.#byPrincipal.set(name, subset);
    return subset;
  }

  /** Frees the pre-parsed sets and the cache (the version can still decide: it rebuilds). */
  release(): void {
    for (const id of this.#held.splice(0)) releaseSet(id);
    this.#subsets.clear();
    this.#byPrincipal.clear();
    this.cache.clear();
  }
}
