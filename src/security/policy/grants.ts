/**
 * Capability grants as the PDP sees them: a principal may do an action on a resource (exact,
 * or a prefix ending in `*`) while the grant is active — not revoked, not expired, and with
 * budget left. The store holds the truth; an index is its in-memory copy, refreshed by the
 * owner (`replace` on start, `upsert`/`remove` as grants change or their budget is used).
 */
import type { GrantRecord } from '../../core/index.ts';

/** What the PDP needs from the grants. */
export interface GrantIndex {
  /**
   * Changes whenever a grant is added, changed or removed. The PDP never caches a decision
   * that involved a grant, so it does not need this; callers caching around it do.
   */
  readonly generation: number;
  /** The active grant for this request, or null; `now` in ms since the epoch. */
  activeFor(principal: string, action: string, resource: string, now: number): GrantRecord | null;
}

/** True when `grant` may be used at `now`. */
export function isGrantActive(grant: GrantRecord, now: number): boolean {
  return (
    grant.revoked_at === null &&
    (grant.expires_at === null || now < grant.expires_at) &&
    (grant.budget === null || grant.used < grant.budget)
  );
}

/** True when the grant's resource (exact, or a prefix ending in `*`) covers `resource`. */
export function grantCovers(grant: GrantRecord, resource: string): boolean {
  return grant.resource.endsWith('*')
    ? resource.startsWith(grant.resource.slice(0, -1))
    : grant.resource === resource;
}

/**
 * Grants kept in memory, indexed by principal. When several active grants cover a request,
 * the one without a review gate wins, then an exact resource over a prefix, then the lowest id
 * (so the choice is deterministic).
 */
export class InMemoryGrantIndex implements GrantIndex {
  #generation = 0;
  readonly #byPrincipal = new Map<string, Map<string, GrantRecord>>();
  readonly #principalOf = new Map<string, string>();

  constructor(grants: Iterable<GrantRecord> = []) {
    this.replace(grants);
  }

  get generation(): number {
    return this.#generation;
  }

  /** Drops every grant and indexes `grants` instead. */
  replace(grants: Iterable<GrantRecord>): void {
    this.#byPrincipal.clear();
    this.#principalOf.clear();
    for (const grant of grants) this.#add(grant);
    this.#generation++;
  }

  /** Adds a grant or replaces the one with its id (e.g. after its budget was used). */
  upsert(grant: GrantRecord): void {
    this.#delete(grant.id);
    this.#add(grant);
    this.#generation++;
  }

  /** Removes a grant; false when there was none with that id. */
  remove(id: string): boolean {
    const removed = this.#delete(id);
    if (removed) this.#generation++;
    return removed;
  }

  get size(): number {
    return this.#principalOf.size;
  }

  activeFor(principal: string, action: string, resource: string, now: number): GrantRecord | null {
    const grants = this.#byPrincipal.get(principal);
    if (grants === undefined) return null;
    let best: GrantRecord | null = null;
    for (const grant of grants.values()) {
      if (grant.action !== action || !grantCovers(grant, resource) || !isGrantActive(grant, now))
        continue;
      if (
        best === null ||
        rank(grant) < rank(best) ||
        (rank(grant) === rank(best) && grant.id < best.id)
      )
        best = grant;
    }
    return best;
  }

  #add(grant: GrantRecord): void {
    let grants = this.#byPrincipal.get(grant.principal);
    if (grants === undefined)
      this.#byPrincipal.set(grant.principal, (grants = new Map<string, GrantRecord>()));
    grants.set(grant.id, grant);
    this.#principalOf.set(grant.id, grant.principal);
  }

  #delete(id: string): boolean {
    const principal = this.#principalOf.get(id);
    if (principal === undefined) return false;
    const grants = this.#byPrincipal.get(principal)!;
    grants.delete(id);
    if (grants.size === 0) this.#byPrincipal.delete(principal);
    this.#principalOf.delete(id);
    return true;
  }
}

/** Lower is preferred: no review gate first, then exact resources. */
function rank(grant: GrantRecord): number {
  return (grant.ask ? 2 : 0) + (grant.resource.endsWith('*') ? 1 : 0);
}
