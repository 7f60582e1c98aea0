/**
 * Interrupts: questions to a person (DESIGN.md §5). Status `pending → resolved | expired |
 * cancelled`; only a pending interrupt changes. Each kind has a default TTL and an expiry rule.
 */
export const INTERRUPT_KINDS = [
  'clarification',
  'confirmation',
  'agent_review',
  'checkpoint',
  'resource_exhausted',
  'timeout',
  'system_error',
] as const;
export type InterruptKind = (typeof INTERRUPT_KINDS)[number];

export const INTERRUPT_STATUSES = ['pending', 'resolved', 'expired', 'cancelled'] as const;
export type InterruptStatus = (typeof INTERRUPT_STATUSES)[number];

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Default time to live per kind; null means it never expires. */
export const INTERRUPT_TTL_MS: Readonly<Record<InterruptKind, number | null>> = {
  clarification: 24 * HOUR,
  confirmation: HOUR,
  agent_review: 30 * MINUTE,
  checkpoint: null,
  resource_exhausted: 5 * MINUTE,
  timeout: 5 * MINUTE,
  system_error: HOUR,
};

/**
 * What expiry means for each kind: `deny` resolves it as a denial (a confirmation that times
 * out is a "no") and routing continues; `terminate` ends the process with `interrupt_expired`
 * (or the budget reason, for `resource_exhausted`).
 */
export const INTERRUPT_EXPIRY: Readonly<Record<InterruptKind, 'deny' | 'terminate'>> = {
  clarification: 'terminate',
  confirmation: 'deny',
  agent_review: 'deny',
  checkpoint: 'terminate',
  resource_exhausted: 'terminate',
  timeout: 'terminate',
  system_error: 'terminate',
};

/** A person's answer. `approved: false` is an explicit denial. */
export interface InterruptResponse {
  readonly approved?: boolean;
  readonly text?: string;
  readonly decision?: string;
  readonly data?: unknown;
  /** For `resource_exhausted`: how much to add to each limit. */
  readonly grant?: Record<string, number>;
  /** Set by the kernel when expiry applied the kind's default. */
  readonly expired?: boolean;
}

export function interruptExpiresAt(
  kind: InterruptKind,
  createdAt: number,
  ttlMs?: number,
): number | null {
  const ttl = ttlMs ?? INTERRUPT_TTL_MS[kind];
  return ttl === null ? null : createdAt + ttl;
}
