/**
 * Tools (DESIGN.md §7): declared with a JSON schema and executed only through the tool path
 * (tools/tool-path.ts): decide → guards → approval → effect journal → execute → redact → record
 * → audit. A tool's `execute` never checks policy itself; it gets the already-approved call.
 */

/** A JSON Schema (draft 2020-12 subset) for a tool's arguments: an object schema. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** What a tool is, as models and policies see it. */
export interface ToolSpec {
  /** Dotted name, unique in the agent's tool set (`http.fetch`, `mcp.<server>.<tool>`). */
  readonly name: string;
  readonly description: string;
  /** The arguments' schema; arguments are validated against it before anything else. */
  readonly inputSchema: JsonSchema;
  /**
   * `read` tools observe; `write` tools change state; `execute` tools run code or commands.
   * Trust levels and the default approval rules use it. Unknown tools (MCP) are `execute`.
   */
  readonly effect: 'read' | 'write' | 'execute';
}

export interface ToolExecution {
  /** Aborted on cancel, the call's timeout, the step's lease loss. Pass it to anything that waits. */
  readonly signal: AbortSignal;
  /** The run making the call (e.g. the parent of a run `run.spawn` starts). */
  readonly caller?: { readonly pid: string };
  /** Secret values by name, for arguments given as `{secret: NAME}` (already substituted). */
  readonly secret: (name: string) => string;
  /**
   * Decides (and audits) one more capability the call needs while it runs, e.g. each redirect
   * of an HTTP fetch; throws POLICY_DENIED unless the policy allows it outright.
   */
  readonly authorize?: (
    action: string,
    resource: string,
    context?: Readonly<Record<string, unknown>>,
  ) => Promise<void>;
}

/** A tool's answer: JSON data, with `is_error` when the tool ran but reports a failure. */
export interface ToolOutput {
  readonly content: unknown;
  readonly is_error?: boolean;
}

export interface Tool extends ToolSpec {
  execute(args: Record<string, unknown>, run: ToolExecution): Promise<ToolOutput>;
}

/** A place tools come from (built-ins, an MCP server). Sources are opened once and closed at the end. */
export interface ToolSource {
  readonly name: string;
  list(signal?: AbortSignal): Promise<readonly Tool[]>;
  close(): Promise<void>;
}
