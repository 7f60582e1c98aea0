/**
 * The `policy.yaml` format (docs/policy.md), as zod schemas: structure only; what
 * each entry means (a domain, a root, a prefix) is checked while compiling (`yaml-rules.ts`).
 * Unknown keys are errors: a typo in a policy must never silently allow or deny.
 */
import { z } from 'zod';

import { param } from '../params.ts';
import { POLICY_MODES, TRUST_LEVELS } from './types.ts';

/** Entries per list and characters per entry: a policy file is small; bounds keep it so. */
const MAX_ENTRIES = 10_000;
const MAX_ENTRY_CHARS = 4_096;

const entry = (what: string) => param.nonEmpty(what, MAX_ENTRY_CHARS);
/** A list of `items`, each `item` (singular, for messages about one entry). */
const list = (items: string, item: string) =>
  z
    .array(entry(item), { error: `expected a list of ${items}` })
    .max(MAX_ENTRIES, { error: `expected at most ${MAX_ENTRIES} entries` });
const count = (what: string) =>
  param.int(1, Number.MAX_SAFE_INTEGER, `a positive integer (${what})`);

/** The readable and writable parts of one resource class. */
const readWrite = (items: string, item: string) =>
  param
    .options(
      { read: list(items, item).optional(), write: list(items, item).optional() },
      `a mapping with read and/or write lists of ${items}`,
    )
    .optional();

/** Budget caps: each forbids the action once `context.usage.<counter>` reaches the cap. */
export const BUDGET_CAPS = {
  max_tool_calls: { action: 'tool.call', counter: 'tool_calls' },
  max_http_requests: { action: 'http.request', counter: 'http_requests' },
  max_http_bytes: { action: 'http.request', counter: 'http_bytes' },
  max_shell_commands: { action: 'shell.exec', counter: 'shell_commands' },
  max_fs_writes: { action: 'fs.write', counter: 'fs_writes' },
} as const;
export type BudgetCap = keyof typeof BUDGET_CAPS;

const budgetShape = Object.fromEntries(
  Object.keys(BUDGET_CAPS).map((k) => [k, count(k).optional()]),
) as Record<BudgetCap, z.ZodOptional<z.ZodType<number>>>;

/** What one agent (or skill) may do. */
export const policyRuleSchema = param.options(
  {
    trust: param.oneOf(TRUST_LEVELS).optional(),
    tools: list('tool names', 'a tool name ("web_search", "mcp.github.*" or "*")').optional(),
    ask: list(
      'tool or action names that need approval',
      'a tool name or an action name',
    ).optional(),
    urls: list(
      'URL patterns',
      'a URL pattern ("example.com", "*.example.com", "https://api.example.com/v1/")',
    ).optional(),
    files: readWrite(
      'directory roots',
      'a directory root (absolute, or relative to the policy file)',
    ),
    commands: list(
      'command prefixes',
      'a command prefix ("git status", "npm test" or "*")',
    ).optional(),
    max_command_risk: param.oneOf(['low', 'medium', 'high']).optional(),
    kv: readWrite('KV namespaces', 'a KV namespace or key ("notes", "notes/today" or "*")'),
    lanes: list('lane names', 'a lane name (task.submit) or "*"').optional(),
    workflows: list('workflow names', 'a workflow name (run.spawn) or "*"').optional(),
    budget: param
      .options(budgetShape, `a mapping of ${Object.keys(BUDGET_CAPS).join(', ')}`)
      .optional(),
  },
  'a mapping of rules (trust, tools, ask, urls, files, commands, …)',
);
export type PolicyRule = z.infer<typeof policyRuleSchema>;

const tokenRuleSchema = param.options(
  {
    allow_methods: list(
      'ACP methods',
      'an ACP method ("session.list", "session.*" or "*")',
    ).optional(),
    deny_methods: list(
      'ACP methods',
      'an ACP method ("session.list", "session.*" or "*")',
    ).optional(),
  },
  'a mapping with allow_methods and/or deny_methods',
);

const secretRuleSchema = param.options(
  {
    agents: list(
      'agent patterns',
      'an agent pattern ("wf/stage", "wf", "wf/*", "*" or "skill:<name>")',
    ),
  },
  'a mapping with agents: [...]',
);

const rules = <T extends z.ZodType>(schema: T, what: string) =>
  z.record(z.string(), schema, { error: `expected a mapping of ${what}` }).optional();

export const policyFileSchema = param.options(
  {
    version: param.is<1>('1 (the policy format version)', (v) => v === 1),
    mode: param.oneOf(POLICY_MODES).optional(),
    agents: rules(policyRuleSchema, 'agent patterns to rules'),
    skills: rules(policyRuleSchema, 'skill names to rules'),
    tokens: rules(tokenRuleSchema, 'token ids to method rules'),
    secrets: rules(secretRuleSchema, 'secret names to { agents: [...] }'),
  },
  'a policy mapping starting with version: 1',
);
export type PolicyFile = z.infer<typeof policyFileSchema>;
