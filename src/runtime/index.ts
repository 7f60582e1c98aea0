export {
  type Agent,
  type AgentContext,
  AgentRegistry,
  type ModelCallOptions,
} from './agents/agent.ts';
export { parseJsonObject } from './agents/builtin.ts';
export * from './agents/tool-agents.ts';
export { AnthropicProvider, type AnthropicProviderOptions } from './models/anthropic.ts';
export { OpenAiProvider, type OpenAiProviderOptions } from './models/openai.ts';
export {
  type ChatMessage,
  type ModelProvider,
  type ModelReply,
  type ModelRequest,
  type ModelTool,
  parseModelSpec,
  type StopReason,
  type ToolCallRequest,
  type ToolChoice,
} from './models/provider.ts';
export { ModelRegistry } from './models/registry.ts';
export { ScriptedProvider } from './models/scripted.ts';
export { McpToolSource } from './tools/mcp.ts';
export * from './tools/step-tools.ts';
export * from './tools/types.ts';
export { Worker, type WorkerOptions } from './worker.ts';
