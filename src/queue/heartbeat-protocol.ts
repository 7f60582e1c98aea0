/** Messages between a worker and its heartbeat thread. */
import type { Durability } from '../store/index.ts';

export interface HeartbeatThreadData {
  readonly file: string;
  readonly durability: Durability;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly stallLimitMs: number;
  /** The parent's clock at thread start. */
  readonly now: number;
}

export type ToHeartbeatThread =
  | { readonly op: 'track'; readonly id: string; readonly token: string }
  | { readonly op: 'untrack'; readonly id: string }
  /**
   * The parent is alive; `now` is the parent's clock, so claims and renewals use ONE clock (the
   * thread adds the monotonic time elapsed since the tick).
   */
  | { readonly op: 'tick'; readonly now: number }
  /**
   * Tracks and untracks in order, flattened into strings (cheap to clone): `+`, id, token to
   * track; `-`, id to untrack.
   */
  | { readonly op: 'batch'; readonly changes: readonly string[] }
  | { readonly op: 'stop' };

export type FromHeartbeatThread =
  | { readonly op: 'lost'; readonly ids: readonly string[] }
  | { readonly op: 'stalled'; readonly since: number }
  | { readonly op: 'error'; readonly message: string };
