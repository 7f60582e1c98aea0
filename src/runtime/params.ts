/** Parameter schemas of the runtime's public constructors and methods (see core/params.ts). */
import { z } from 'zod';

import { param } from '../core/index.ts';

const DAY_MS = 86_400_000;

/** An AgentRegistry argument (Worker, createTestKernel). */
export const agentRegistryParam = param.withMethods<unknown>(
  'an AgentRegistry (new AgentRegistry().register(name, agent))',
  ['register', 'get', 'names'],
);

export const workerArgs = z.object({
  options: param.options(
    {
      kernel: param.withMethods('a Kernel (new Kernel({ store }))', [
        'startRun',
        'registerService',
        'unregisterService',
      ]),
      agents: agentRegistryParam.optional(),
      models: param
        .withMethods('a ModelRegistry (new ModelRegistry())', ['register', 'resolve'])
        .optional(),
      concurrency: param.int(1, 10_000).optional(),
      leaseMs: param.int(1, 7 * DAY_MS).optional(),
      heartbeatMs: param.int(1, 7 * DAY_MS).optional(),
      heartbeat: param.oneOf(['auto', 'thread', 'timer']).optional(),
      id: param.nonEmpty('a worker id string of 1-512 characters', 512).optional(),
      onDelta: param.fn('a function ({ pid, stage, step, text }) => void').optional(),
      onError: param.fn('a function (error, { task_id, where }) => void').optional(),
      tools: param.fn('a function (step, ctx) => StepTools (the tool path)').optional(),
      preferRuns: param
        .is<ReadonlySet<string>>('a Set of run pids', (v) => v instanceof Set)
        .optional(),
    },
    'an options object { kernel, agents?, … }',
  ),
});

export const stopArgs = z.object({
  options: param.options(
    { abort: param.boolean().optional(), release: param.boolean().optional() },
    'an object { abort?, release? }',
  ),
});

export const registerAgentArgs = z.object({
  name: param.nonEmpty('an agent name string of 1-128 characters', 128),
  agent: param.is(
    'an agent: a function (ctx, config) => Promise<StepResult>, or an object with such a run method',
    (v) =>
      typeof v === 'function' ||
      (v !== null && typeof v === 'object' && typeof (v as { run?: unknown }).run === 'function'),
  ),
});

export const agentNameArgs = z.object({ name: param.string() });

export const modelRegistryArgs = z.object({
  defaultSpec: param
    .nonEmpty("a model spec string such as 'scripted' or 'openai:gpt-4o-mini'", 256)
    .optional(),
});

export const registerModelArgs = z.object({
  name: param.matching(
    'a provider name of letters, digits, _ . - (no colon)',
    /^[A-Za-z0-9_.-]{1,64}$/,
  ),
  factory: param.fn('a function () => ModelProvider'),
});

export const openAiArgs = z.object({
  options: param.options(
    {
      baseURL: param.nonEmpty('a URL string').optional(),
      apiKey: param.string().optional(),
      defaultModel: param.nonEmpty('a model name string', 256).optional(),
      maxRetries: param.int(0, 100).optional(),
    },
    'an options object { baseURL?, apiKey?, defaultModel?, maxRetries? }',
  ),
});

export const anthropicArgs = z.object({
  options: param.options(
    {
      baseURL: param.nonEmpty('a URL string').optional(),
      apiKey: param.string().optional(),
      defaultModel: param.nonEmpty('a model name string', 256).optional(),
      defaultMaxTokens: param.int(1, 1_000_000).optional(),
      maxRetries: param.int(0, 100).optional(),
    },
    'an options object { baseURL?, apiKey?, defaultModel?, defaultMaxTokens?, maxRetries? }',
  ),
});

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

/** `ctx.model(messages, options?)` of an agent's context. */
export const modelCallArgs = z.object({
  messages: param.is(
    "an array of chat messages [{ role: 'system' | 'user' | 'assistant' | 'tool', content: string }, …]",
    (v) =>
      Array.isArray(v) &&
      v.length > 0 &&
      v.every(
        (m: unknown) =>
          m !== null &&
          typeof m === 'object' &&
          ROLES.has((m as { role?: unknown }).role as string) &&
          typeof (m as { content?: unknown }).content === 'string',
      ),
  ),
  options: param.options(
    {
      model: param.nonEmpty("a model spec string such as 'openai:gpt-4o-mini'", 256).optional(),
      maxOutputTokens: param.int(1).optional(),
      temperature: param
        .is<number>('a number from 0 to 2', (v) => typeof v === 'number' && v >= 0 && v <= 2)
        .optional(),
      tools: param
        .is<unknown[]>(
          'an array of tool specs [{ name, description, inputSchema }, …]',
          (v) =>
            Array.isArray(v) &&
            v.every(
              (t: unknown) =>
                t !== null &&
                typeof t === 'object' &&
                typeof (t as { name?: unknown }).name === 'string' &&
                typeof (t as { inputSchema?: unknown }).inputSchema === 'object',
            ),
        )
        .optional(),
    },
    'an object { model?, maxOutputTokens?, temperature?, tools? }',
  ),
});

/** `ctx.toolCall(tool)`. */
export const toolCallArgs = z.object({
  tool: param.nonEmpty('a tool name string of 1-256 characters', 256),
});

/** `ctx.effect(key, request, fn, options?)`; the key is scoped to the run and step. */
export const agentEffectArgs = z.object({
  key: param.nonEmpty(
    'an effect key: a string of 1-256 characters naming the call in the step',
    256,
  ),
  fn: param.fn('the effect function () => result'),
  options: param.options(
    {
      tool: param.nonEmpty('a tool name string', 256).optional(),
      reconcile: param.fn('a function () => result | undefined').optional(),
    },
    'an object { tool?, reconcile? }',
  ),
});
