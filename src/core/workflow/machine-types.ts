/**
 * The types the orchestration machine works with: the snapshot it transforms, the effect it
 * asks the kernel to carry out, and the reports it takes. Shared by the sequential machine
 * (machine.ts) and the parallel one (parallel.ts); machine.ts re-exports them.
 */
import type { InterruptKind } from '../interrupt.ts';
import type { Quota, TerminalReason, Usage } from '../quota.ts';
import type { RoutingContext } from './condition.ts';
import type { Envelope } from './envelope.ts';

export interface RunSnapshot {
  envelope: Envelope;
  usage: Usage;
  quota: Quota;
  terminated: { reason: TerminalReason; message: string } | null;
}

export interface RaisedInterrupt {
  readonly kind: InterruptKind;
  readonly stage: string;
  readonly prompt: string;
  readonly data: Record<string, unknown>;
  readonly ttl_ms?: number;
}

/** One branch step of a parallel run; `fresh` when this transition issued it (queue it). */
export interface ForkedStep {
  readonly stage: string;
  readonly step: number;
  readonly fresh: boolean;
}

export type Effect =
  | {
      readonly kind: 'run_agent';
      readonly stage: string;
      readonly step: number;
      readonly fresh: boolean;
    }
  /**
   * Parallel mode: every outstanding branch step after the transition, in stage order. At least
   * one: a parallel run with nothing outstanding has terminated.
   */
  | { readonly kind: 'fork'; readonly steps: readonly ForkedStep[] }
  | { readonly kind: 'raise_interrupt'; readonly step: number; readonly interrupt: RaisedInterrupt }
  | { readonly kind: 'wait_interrupt' }
  | { readonly kind: 'terminate'; readonly reason: TerminalReason; readonly message: string };

/**
 * A parallel branch this transition cancelled: its task (if it has one) must be cancelled in
 * the same commit, and a late report of its step is stale.
 */
export interface CancelledBranch {
  readonly stage: string;
  /** Null when the stage was never issued (it lost an `any` join before it started). */
  readonly step: number | null;
  /** `join`: it lost the `any` join of stage `join` to `winner`; `run_ended`: the run terminated. */
  readonly reason: 'join' | 'run_ended';
  readonly join?: string;
  readonly winner?: string;
}

export interface Transitioned {
  readonly snapshot: RunSnapshot;
  readonly effect: Effect;
  /** Transitions taken on the way, for `route.taken` events. */
  readonly routes: ReadonlyArray<{ from: string; to: string; via: string }>;
  /** Parallel mode: branches cancelled by this transition, in stage order (absent: none). */
  readonly cancelled?: readonly CancelledBranch[];
}

/** A TypeScript routing function: returns the next stage, or undefined for "no match". */
export type RoutingFunction = (ctx: RoutingContext) => string | undefined | null;

export interface MachineOptions {
  readonly elapsedMs: number;
  readonly now: number;
  readonly routingFunctions?: ReadonlyMap<string, RoutingFunction>;
}

export interface StepSuccess {
  readonly step: number;
  readonly stage: string;
  readonly output: unknown;
  readonly modelCalls: number;
  readonly statePatch?: Record<string, unknown>;
  readonly attempt?: number;
}

export interface StepFailure {
  readonly step: number;
  readonly stage: string;
  readonly code: string;
  readonly message: string;
  /** For QUOTA_EXCEEDED failures: the budget reason the worker hit. */
  readonly reason?: TerminalReason;
  readonly attempt?: number;
}

/** A step a worker or client may report: issued and not yet reported. */
export interface OutstandingStep {
  readonly step: number;
  readonly stage: string;
}
