/**
 * Capability grants (kgents covenants, DESIGN.md §8): a principal may do an action on a
 * resource (exact, or a prefix ending in `*`), with an optional budget of uses, an expiry and
 * a review gate (`ask`: a person approves each use), until revoked. Grants are store entities;
 * creating, revoking and spending one each write an event in the `system` session in the same
 * transaction. The PDP consults them (security/policy); spending is a compare-and-set in the
 * store, so a revoked, expired or used-up grant is refused at its next use on every node.
 */
import { z } from 'zod';

import { checkParams, type GrantRecord, WardenError } from '../core/index.ts';
import type { Kernel } from '../kernel/index.ts';

const name = (what: string) =>
  z
    .string()
    .min(3)
    .max(1024)
    .regex(/^[a-z][a-z0-9_-]*:.+$/, {
      message: `expected ${what} as type:id, e.g. agent:triage/fetch`,
    })
    .refine((s) => !/[\u0000-\u001f]/.test(s), { message: 'must not contain control characters' });

export const grantInputSchema = z.strictObject({
  principal: name('a principal'),
  action: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z][A-Za-z0-9_.:-]*$/, {
      message: 'expected an action such as tool.call or http.request',
    }),
  resource: name('a resource'),
  ask: z.boolean().default(false),
  /** Uses allowed; omit for unlimited. */
  budget: z.number().int().positive().max(1_000_000_000).optional(),
  /** Milliseconds from now until it expires; omit for never. */
  expires_in_ms: z.number().int().positive().optional(),
  reason: z.string().max(1000).optional(),
  created_by: z.string().min(1).max(256).default('local'),
});
export type GrantInput = z.input<typeof grantInputSchema>;

export class GrantService {
  readonly #kernel: Kernel;

  constructor(kernel: Kernel) {
    this.#kernel = kernel;
  }

  async create(input: GrantInput): Promise<GrantRecord> {
    const parsed = checkParams('grant.create', grantInputSchema, input);
    const now = this.#kernel.clock.now();
    const grant = {
      id: this.#kernel.ids.next('grt'),
      principal: parsed.principal,
      action: parsed.action,
      resource: parsed.resource,
      ask: parsed.ask,
      budget: parsed.budget ?? null,
      expires_at: parsed.expires_in_ms === undefined ? null : now + parsed.expires_in_ms,
      created_at: now,
      created_by: parsed.created_by,
      reason: parsed.reason ?? null,
    };
    await this.#kernel.store.commit([
      { op: 'grant.create', grant },
      await this.#event('grant.created', grant),
    ]);
    return this.#mustGet(grant.id);
  }

  async revoke(id: string, by = 'local', reason: string | null = null): Promise<GrantRecord> {
    await this.#kernel.store.commit([
      { op: 'grant.revoke', id, by, reason, now: this.#kernel.clock.now() },
      await this.#event('grant.revoked', { id, by, reason }),
    ]);
    return this.#mustGet(id);
  }

  /** Spends one use (POLICY_DENIED when revoked, expired or used up; nothing changes then). */
  async use(id: string): Promise<void> {
    // The count is the store's (a compare-and-set); the event names the grant, not a count
    // read before the commit, which racing uses would make wrong.
    await this.#kernel.store.commit([
      { op: 'grant.use', id, now: this.#kernel.clock.now() },
      await this.#event('grant.used', { id }),
    ]);
  }

  list(
    filter: { principal?: string; activeOnly?: boolean; limit?: number } = {},
  ): Promise<GrantRecord[]> {
    return this.#kernel.store.listGrants({
      ...(filter.principal ? { principal: filter.principal } : {}),
      ...(filter.activeOnly ? { activeAt: this.#kernel.clock.now() } : {}),
      limit: filter.limit ?? 1_000,
    });
  }

  async #mustGet(id: string): Promise<GrantRecord> {
    const grant = await this.#kernel.store.getGrant(id);
    if (!grant)
      throw new WardenError(
        'NOT_FOUND',
        `grant ${id} does not exist (list them: warden grant list)`,
      );
    return grant;
  }

  async #event(
    type: 'grant.created' | 'grant.revoked' | 'grant.used',
    data: unknown,
  ): Promise<{
    op: 'event';
    event: { session_id: string; type: typeof type; trace_id: string; data: unknown };
  }> {
    const system = await this.#kernel.sessions.system();
    return {
      op: 'event',
      event: { session_id: system.id, type, trace_id: this.#kernel.ids.next('tr'), data },
    };
  }
}

/** Whether a grant can be used at `now`: not revoked, not expired, budget left. */
export function grantStatus(
  grant: GrantRecord,
  now: number,
): 'active' | 'revoked' | 'expired' | 'exhausted' {
  if (grant.revoked_at !== null) return 'revoked';
  if (grant.expires_at !== null && grant.expires_at <= now) return 'expired';
  if (grant.budget !== null && grant.used >= grant.budget) return 'exhausted';
  return 'active';
}
