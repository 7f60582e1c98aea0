/**
 * A tool as the tool path sees it: the runtime's Tool, plus `inspect`, which runs the guards
 * that must see a call before the policy decides (the real path of a file, the parsed command
 * and its risk, the URL) and names the capabilities the call needs beyond `tool.call`.
 */
import type { DecisionRequest } from '../../core/index.ts';
import type { Tool } from '../../runtime/index.ts';

/** One capability a call needs, decided like `tool.call` (principal filled in by the path). */
export type CapabilityCheck = Omit<DecisionRequest, 'principal'>;

export interface Inspection {
  /** Capabilities the call needs besides `tool.call` (e.g. `http.request` on the URL). */
  readonly checks: readonly CapabilityCheck[];
  /** Arguments as the tool will run them (real paths substituted), when they differ. */
  readonly args?: Record<string, unknown>;
  /** What the guards found, for events and audit (e.g. the command's risk). */
  readonly findings?: Readonly<Record<string, unknown>>;
}

export interface InspectEnv {
  readonly principal: string;
  readonly signal: AbortSignal;
}

export interface GuardedTool extends Tool {
  /**
   * Runs the guards a call must pass before it is decided; throws GUARD_BLOCKED (with
   * `details: {guard, reasons}`) to block it outright.
   */
  inspect?(args: Record<string, unknown>, env: InspectEnv): Promise<Inspection>;
}
