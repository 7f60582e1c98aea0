/**
 * What an agent sees of tools during one step: the specs it may offer a model, and `call`,
 * which goes through the one tool path (security/tool-path.ts: decide → guards → approval →
 * effect journal → execute → redact → record → audit). The runtime only defines the shape;
 * the daemon and CLI plug the security layer's implementation into the worker.
 */
import type { StepContext } from '../../kernel/index.ts';
import type { AgentContext } from '../agents/agent.ts';
import type { ToolSpec } from './types.ts';

/** The outcome of one call. A refused or failed call is an answer too (the model sees it). */
export interface ToolCallResult {
  readonly ok: boolean;
  /** The tool's answer (redacted), or the error's `{code, message}` when not ok. */
  readonly output: unknown;
  /** Set when not ok: POLICY_DENIED, GUARD_BLOCKED, APPROVAL_DENIED, TOOL_ERROR, … */
  readonly code?: string;
  /** True when the answer came from the effect journal (an earlier attempt ran it). */
  readonly replayed?: boolean;
}

export interface CallOptions {
  /**
   * Names the call within the step, stable across retries of the step (the effect journal key
   * and the approval are found by it): e.g. `round-2/call_1`.
   */
  readonly key: string;
  /** Overrides the tool's default timeout (ms). */
  readonly timeoutMs?: number;
}

export interface StepTools {
  /** The tools these names allow (globs such as `mcp.files.*` expanded), as offered to a model. */
  specs(names: readonly string[]): Promise<readonly ToolSpec[]>;
  call(name: string, args: Record<string, unknown>, options: CallOptions): Promise<ToolCallResult>;
  /** Releases what the step opened (MCP connections are pooled by the factory, not here). */
  close(): Promise<void>;
}

/** Builds a step's tools; given to the Worker. Without one, every tool call is denied. */
export type StepToolsFactory = (step: StepContext, ctx: AgentContext) => StepTools;

/** The tools of a worker that has no tool path: nothing is offered and every call is refused. */
export const NO_TOOLS: StepTools = Object.freeze({
  specs: () => Promise.resolve([]),
  call: (name: string) =>
    Promise.resolve({
      ok: false,
      code: 'POLICY_DENIED',
      output: {
        code: 'POLICY_DENIED',
        message: `tool '${name}' denied: this worker has no tool path (default deny)`,
      },
    }),
  close: () => Promise.resolve(),
});
