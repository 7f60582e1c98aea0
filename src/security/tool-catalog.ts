/**
 * Which tools a stage may call: the built-ins and the tools of its MCP servers, restricted to
 * what the stage names (an `llm` stage's `tools`, a `tool` stage's `tool`, `shell.exec` for a
 * `shell` stage). A name the stage does not list is unknown to it — and the policy still
 * decides every call of the ones it does list.
 */
import type { StepContext } from '../kernel/index.ts';
import type { ToolSource } from '../runtime/index.ts';
import type { ToolCatalog } from './tool-path.ts';
import type { GuardedTool } from './tools/guarded-tool.ts';

/** MCP servers' tools for a stage (pooled by the caller; empty when the stage names none). */
export type McpSourcesFor = (step: StepContext) => readonly ToolSource[];

export function stageToolNames(step: Pick<StepContext, 'stage'>): readonly string[] {
  const agent = step.stage.agent;
  switch (agent?.kind) {
    case 'llm':
      return agent.tools ?? [];
    case 'tool':
      return [agent.tool];
    case 'shell':
      return ['shell.exec'];
    default:
      // TypeScript agents call tools by name through ctx.tools: any tool, policy decides.
      return ['*'];
  }
}

/** True when `name` is one of `patterns` (`*` as a last segment matches the rest). */
export function matchesToolPattern(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => {
    if (p === '*') return true;
    if (p.endsWith('.*')) return name.startsWith(p.slice(0, -1));
    return p === name;
  });
}

export function createCatalog(
  builtins: readonly GuardedTool[],
  mcpFor: McpSourcesFor,
): (step: StepContext) => ToolCatalog {
  const byName = new Map(builtins.map((t) => [t.name, t]));
  return (step) => {
    const allowed = stageToolNames(step);
    let all: Promise<Map<string, GuardedTool>> | null = null;
    const load = () => {
      all ??= (async () => {
        const tools = new Map(byName);
        for (const source of mcpFor(step))
          for (const tool of await source.list()) tools.set(tool.name, tool);
        return tools;
      })();
      return all;
    };
    return {
      async get(name) {
        if (!matchesToolPattern(name, allowed)) return undefined;
        const builtin = byName.get(name);
        if (builtin) return builtin;
        if (!name.startsWith('mcp.')) return undefined;
        return (await load()).get(name);
      },
      async expand(names) {
        const tools = await load();
        return [...tools.values()].filter(
          (t) => matchesToolPattern(t.name, names) && matchesToolPattern(t.name, allowed),
        );
      },
    };
  };
}
