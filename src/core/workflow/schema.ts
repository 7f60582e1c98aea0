/**
 * The workflow file format (YAML or JSON), as zod schemas. Types are derived from the schemas.
 * Structural checks live here; cross-references (targets, loops, duplicates) in `validate.ts`.
 * Unknown keys are errors: a typo must never be silently ignored.
 */
import { z } from 'zod';

import { INTERRUPT_KINDS } from '../interrupt.ts';
import { PRIORITIES } from '../process-state.ts';
import { mcpServerListSchema } from '../tools/mcp-config.ts';
import { DURATION_PATTERN, parseDurationMs } from './duration.ts';

const jsonValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValue),
    z.record(z.string(), jsonValue),
  ]),
);

const positiveInt = z.number().int().positive();

export const durationSchema = z
  .union([
    z.number().int().positive(),
    z.string().regex(DURATION_PATTERN, 'expected a duration such as 500ms, 30s, 2m or 1h'),
  ])
  .transform((v) => parseDurationMs(v))
  .refine((ms) => ms > 0, 'expected a positive duration');

const stageName = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/,
    'expected a name of letters, digits, _ . - (max 64), starting with a letter or _',
  );

/** A routing condition (DESIGN.md §5). A field test names exactly one operator. */
export type Condition =
  | { always: true }
  | { and: Condition[] }
  | { or: Condition[] }
  | { not: Condition }
  | FieldCondition;

export interface FieldCondition {
  field: string;
  eq?: unknown;
  neq?: unknown;
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
  contains?: unknown;
  exists?: true;
  not_exists?: true;
}

export const FIELD_OPERATORS = [
  'eq',
  'neq',
  'gt',
  'gte',
  'lt',
  'lte',
  'contains',
  'exists',
  'not_exists',
] as const;

const fieldCondition = z
  .strictObject({
    field: z.string().regex(/^(output|outputs|state|metadata|input|interrupt)(\.[^.]+)*$/, {
      message: 'expected a path starting with output, outputs, state, metadata, input or interrupt',
    }),
    eq: jsonValue.optional(),
    neq: jsonValue.optional(),
    gt: z.number().optional(),
    gte: z.number().optional(),
    lt: z.number().optional(),
    lte: z.number().optional(),
    contains: jsonValue.optional(),
    exists: z.literal(true).optional(),
    not_exists: z.literal(true).optional(),
  })
  .superRefine((value, ctx) => {
    const ops = FIELD_OPERATORS.filter(
      (op) => (value as Record<string, unknown>)[op] !== undefined,
    );
    if (ops.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `expected exactly one operator of ${FIELD_OPERATORS.join(', ')}, got ${ops.length === 0 ? 'none' : ops.join(', ')}`,
      });
    }
  });

export const conditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.strictObject({ always: z.literal(true) }),
    z.strictObject({ and: z.array(conditionSchema).min(1) }),
    z.strictObject({ or: z.array(conditionSchema).min(1) }),
    z.strictObject({ not: conditionSchema }),
    fieldCondition as unknown as z.ZodType<FieldCondition>,
  ]),
);

export const routingRuleSchema = z.union([
  z.strictObject({ when: conditionSchema, next: stageName }),
  z.strictObject({ fn: z.string().min(1) }),
]);
export type RoutingRule = z.infer<typeof routingRuleSchema>;

export const scriptedResponseSchema = z.strictObject({
  text: z.string().optional(),
  json: jsonValue.optional(),
  usage: z
    .strictObject({
      input_tokens: z.number().int().nonnegative(),
      output_tokens: z.number().int().nonnegative(),
    })
    .optional(),
  /** Delay between streamed chunks, to make a demo watchable. */
  chunk_delay_ms: z.number().int().nonnegative().max(10_000).optional(),
  /** Fail this call with a provider error instead of answering. */
  error: z.string().optional(),
  /**
   * Tool calls the reply asks for (with or without text); the reply then stops for them. Names
   * are Warden tool names; an `id` defaults to `call_<call index>_<position>`.
   */
  tool_calls: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        arguments: z.record(z.string(), jsonValue).optional(),
        id: z.string().min(1).optional(),
      }),
    )
    .optional(),
});
export type ScriptedResponse = z.infer<typeof scriptedResponseSchema>;

/** A tool name: dotted segments (`http.fetch`, `mcp.files.read_file`), `*` as a last segment in lists. */
const toolName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*(\.([A-Za-z0-9_-]+|\*))+$/, {
  message: 'expected a dotted tool name such as http.fetch or mcp.<server>.<tool>',
});

const noopAgent = z.strictObject({
  kind: z.literal('noop'),
  output: z.record(z.string(), jsonValue).optional(),
  delay: durationSchema.optional(),
});

const llmAgent = z.strictObject({
  kind: z.literal('llm'),
  /** `scripted` (default), or `openai` / `openai:<model>` for an OpenAI-compatible endpoint. */
  model: z.string().min(1).optional(),
  system: z.string().optional(),
  prompt: z.string().min(1),
  /** `json` parses the reply as a JSON object so routing can read its fields. */
  output: z.enum(['text', 'json']).default('text'),
  max_output_tokens: positiveInt.optional(),
  temperature: z.number().min(0).max(2).optional(),
  script: z.array(scriptedResponseSchema).min(1).optional(),
  /** Tools the model may call (`http.fetch`, `mcp.<server>.<tool>`, `mcp.<server>.*`); policy still decides each call. */
  tools: z.array(toolName).max(128).optional(),
  /** Model → tools → model rounds before the stage fails with TOOL_ERROR (default 8). */
  max_tool_rounds: positiveInt.max(100).optional(),
  /** MCP servers whose tools this stage may name (`mcp.<server>.<tool>`); docs/mcp.md. */
  mcp: mcpServerListSchema.optional(),
});

/** Calls one tool through the tool path; string arguments are templates over the run. */
const toolAgent = z.strictObject({
  kind: z.literal('tool'),
  tool: toolName,
  args: z.record(z.string(), jsonValue).default({}),
  /** The call's timeout (default: the tool's). */
  timeout: durationSchema.optional(),
  mcp: mcpServerListSchema.optional(),
});

/** Runs a command with `shell.exec`: policy-gated, risk-scored; inserted values are shell-quoted. */
const shellAgent = z.strictObject({
  kind: z.literal('shell'),
  command: z.string().min(1).max(16_384),
  /** Working directory (default: the first `files.write` root the policy allows, else the workspace). */
  cwd: z.string().min(1).optional(),
  timeout: durationSchema.optional(),
});

const tsAgent = z.strictObject({
  kind: z.literal('typescript'),
  name: z.string().min(1),
  config: z.record(z.string(), jsonValue).optional(),
});

/**
 * Run by a client outside the daemon (a jeeves `PipelineWorker` over gRPC, or any external
 * worker): its steps wait in the kernel's external lane, where no in-process worker claims them,
 * until a client takes one and reports its result. `config` is handed to that client as is.
 */
const externalAgent = z.strictObject({
  kind: z.literal('external'),
  config: z.record(z.string(), jsonValue).optional(),
});

export const agentSchema = z.discriminatedUnion('kind', [
  noopAgent,
  llmAgent,
  tsAgent,
  toolAgent,
  shellAgent,
  externalAgent,
]);
export type AgentSpec = z.infer<typeof agentSchema>;
export type LlmAgentSpec = z.infer<typeof llmAgent>;
export type ToolAgentSpec = z.infer<typeof toolAgent>;
export type ShellAgentSpec = z.infer<typeof shellAgent>;
export type ExternalAgentSpec = z.infer<typeof externalAgent>;

/** How a workflow runs its stages: one at a time by routing, or as a dependency graph. */
export const RUN_MODES = ['sequential', 'parallel'] as const;
export type RunMode = (typeof RUN_MODES)[number];

export const JOIN_STRATEGIES = ['all', 'any'] as const;
export type JoinStrategy = (typeof JOIN_STRATEGIES)[number];

export const interruptSpecSchema = z.strictObject({
  kind: z.enum(INTERRUPT_KINDS),
  prompt: z.string().min(1).optional(),
  /** Take the prompt from a path in the stage output instead (e.g. `output.question`). */
  prompt_from: z.string().optional(),
  /** Raise only when this holds for the stage output (stages with an agent only). */
  when: conditionSchema.optional(),
  ttl: durationSchema.optional(),
});
export type InterruptSpec = z.infer<typeof interruptSpecSchema>;

export const retrySchema = z.strictObject({
  max_attempts: positiveInt.max(1000).default(3),
  backoff: durationSchema.default(1_000),
  max_backoff: durationSchema.default(60_000),
});

export const stageSchema = z.strictObject({
  name: stageName,
  description: z.string().optional(),
  agent: agentSchema.optional(),
  interrupt: interruptSpecSchema.optional(),
  routing: z.array(routingRuleSchema).default([]),
  default_next: stageName.optional(),
  error_next: stageName.optional(),
  /** Where to go after this stage's interrupt is resolved (default: apply routing). */
  resume_next: stageName.optional(),
  max_visits: positiveInt.optional(),
  timeout: durationSchema.optional(),
  retry: retrySchema.optional(),
  output_key: stageName.optional(),
  /** Parallel mode: stages that must complete (succeed) before this one starts. */
  requires: z.array(stageName).max(64).optional(),
  /** Parallel mode: stages that must finish (succeed, fail or be cancelled) before this one starts. */
  after: z.array(stageName).max(64).optional(),
  /** Parallel mode: start when `all` of `requires` completed (default) or the first (`any`). */
  join_strategy: z.enum(JOIN_STRATEGIES).optional(),
});
export type StageSpec = z.infer<typeof stageSchema>;

export const boundsSchema = z.strictObject({
  max_iterations: positiveInt.optional(),
  max_llm_calls: positiveInt.optional(),
  max_agent_hops: positiveInt.optional(),
  max_tool_calls: positiveInt.optional(),
  max_input_tokens: positiveInt.optional(),
  max_output_tokens: positiveInt.optional(),
  timeout: durationSchema.optional(),
  soft_timeout: durationSchema.optional(),
});

export const workflowSchema = z.strictObject({
  name: stageName,
  description: z.string().optional(),
  version: z.union([z.string(), z.number()]).optional(),
  /** Default model for llm stages. */
  model: z.string().min(1).optional(),
  priority: z.enum(PRIORITIES).default('normal'),
  /**
   * `sequential` (absent): one stage at a time, chosen by routing. `parallel`: every stage runs
   * once, as soon as its `requires` and `after` allow (docs/workflows.md#parallel-stages).
   * No default is written into the parsed workflow, so existing workflows keep their hash.
   */
  mode: z.enum(RUN_MODES).optional(),
  /** Parallel mode: branches issued and not yet reported at once (absent: no limit). */
  max_concurrent_agents: positiveInt.max(10_000).optional(),
  start: stageName.optional(),
  bounds: boundsSchema.default({}),
  /** `interrupt` raises a `resource_exhausted` interrupt so a person can grant more budget. */
  on_budget_exhausted: z.enum(['terminate', 'interrupt']).default('terminate'),
  edge_limits: z
    .array(z.strictObject({ from: stageName, to: stageName, max_count: positiveInt }))
    .default([]),
  stages: z.array(stageSchema).min(1, 'expected at least one stage'),
});

export type WorkflowInput = z.input<typeof workflowSchema>;
export type Workflow = z.output<typeof workflowSchema>;
