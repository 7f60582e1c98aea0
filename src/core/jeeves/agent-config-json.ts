/**
 * `Instruction.agent_config`: the AgentConfig JSON Go re-serialised from the validated struct
 * (§3.1, last paragraph). Every key is present, in the Go struct's order, with `output_key` and
 * `join_strategy` defaulted; unset `temperature`, `max_tokens`, `allowed_tools`,
 * `routing_rules` and `required_output_fields` are `null`; `requires`, `after` and
 * `join_strategy` are left out when empty (Go's `omitempty`).
 */
import type { JsonObject } from '../json.ts';
import type { JeevesAgentConfig } from './types.ts';

/** The object to JSON-encode into `Instruction.agent_config` (and a stage's `external` config). */
export function agentConfigJson(agent: JeevesAgentConfig): JsonObject {
  const out: JsonObject = { name: agent.name, stage_order: agent.stage_order };
  if (agent.requires.length > 0) out.requires = [...agent.requires];
  if (agent.after.length > 0) out.after = [...agent.after];
  if (agent.join_strategy !== '') out.join_strategy = agent.join_strategy;
  out.has_llm = agent.has_llm;
  out.has_tools = agent.has_tools;
  out.has_policies = agent.has_policies;
  out.tool_access = agent.tool_access;
  out.allowed_tools = agent.allowed_tools === null ? null : { ...agent.allowed_tools };
  out.model_role = agent.model_role;
  out.prompt_key = agent.prompt_key;
  out.temperature = agent.temperature;
  out.max_tokens = agent.max_tokens;
  out.output_key = agent.output_key;
  out.required_output_fields =
    agent.required_output_fields === null ? null : [...agent.required_output_fields];
  out.routing_rules =
    agent.routing_rules === null
      ? null
      : agent.routing_rules.map((r) => ({
          condition: r.condition,
          value: r.value,
          target: r.target,
        }));
  out.default_next = agent.default_next;
  out.error_next = agent.error_next;
  out.timeout_seconds = agent.timeout_seconds;
  out.max_retries = agent.max_retries;
  return out;
}
