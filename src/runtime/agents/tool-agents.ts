/**
 * The `tool` and `shell` agent kinds: one call through the tool path. A refused or failed call
 * fails the step with its code (POLICY_DENIED, GUARD_BLOCKED, APPROVAL_DENIED, TOOL_ERROR), so
 * routing can send it to `error_next`; the stage's retry policy applies as for any failure.
 */
import {
  type ErrorCode,
  renderTemplate,
  type ShellAgentSpec,
  shellQuote,
  type ToolAgentSpec,
  WardenError,
} from '../../core/index.ts';
import type { StepResult } from '../../kernel/index.ts';
import type { ToolCallResult } from '../tools/step-tools.ts';
import type { AgentContext } from './agent.ts';

export async function runToolAgent(ctx: AgentContext, spec: ToolAgentSpec): Promise<StepResult> {
  const args = renderArgs(spec.args, ctx) as Record<string, unknown>;
  const result = await ctx.tools.call(spec.tool, args, {
    key: 'tool',
    ...(spec.timeout ? { timeoutMs: spec.timeout } : {}),
  });
  return { output: outcome(spec.tool, result) };
}

export async function runShellAgent(ctx: AgentContext, spec: ShellAgentSpec): Promise<StepResult> {
  // Values from the run (inputs, earlier outputs) become single shell words: a value cannot
  // add commands, whatever it contains.
  const command = renderTemplate(spec.command, ctx.envelope, shellQuote);
  const result = await ctx.tools.call(
    'shell.exec',
    { command, ...(spec.cwd ? { cwd: spec.cwd } : {}) },
    { key: 'shell', ...(spec.timeout ? { timeoutMs: spec.timeout } : {}) },
  );
  return { output: outcome('shell.exec', result) };
}

/** A successful call's output, or the call's error thrown as the step's failure. */
function outcome(tool: string, result: ToolCallResult): unknown {
  if (result.ok) return result.output;
  const error = result.output as { code?: string; message?: string; details?: unknown } | null;
  throw new WardenError(
    (result.code as ErrorCode | undefined) ?? 'TOOL_ERROR',
    error?.message ?? `tool ${tool} failed`,
    { retryable: false, details: { tool, ...(error?.details ? { cause: error.details } : {}) } },
  );
}

/** Renders every string in the arguments as a template over the run (values inserted as is). */
function renderArgs(value: unknown, ctx: AgentContext): unknown {
  if (typeof value === 'string') return renderTemplate(value, ctx.envelope);
  if (Array.isArray(value)) return value.map((v) => renderArgs(v, ctx));
  if (value !== null && typeof value === 'object') {
    // `{secret: NAME}` stays a reference: the tool path resolves it just before the call.
    if (Object.keys(value).length === 1 && 'secret' in value) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderArgs(v, ctx)]));
  }
  return value;
}
