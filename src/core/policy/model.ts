/**
 * The policy entity model shared by the YAML compiler (core) and the PDP (security): which
 * `type:` prefixes name which Cedar entity types, the closed set of actions and the action
 * groups they belong to. A name outside these sets is an unknown capability, and is denied.
 */

/** Principal prefixes (`agent:wf/stage`) → Cedar entity types. */
export const PRINCIPAL_TYPES = {
  agent: 'Agent',
  token: 'Token',
  attempt: 'Attempt',
  skill: 'Skill',
  user: 'User',
} as const;
export type PrincipalKind = keyof typeof PRINCIPAL_TYPES;

/** Resource prefixes (`url:https://…`) → Cedar entity types. */
export const RESOURCE_TYPES = {
  tool: 'Tool',
  url: 'Url',
  path: 'Path',
  command: 'Command',
  kv: 'Kv',
  lane: 'Lane',
  workflow: 'Workflow',
  method: 'Method',
  secret: 'Secret',
} as const;
export type ResourceKind = keyof typeof RESOURCE_TYPES;

/** Every Cedar entity type the PDP creates (raw policies naming another type are refused). */
export const ENTITY_TYPES: readonly string[] = [
  ...Object.values(PRINCIPAL_TYPES),
  ...Object.values(RESOURCE_TYPES),
  'ToolGroup',
  'Action',
];

/**
 * The actions other than ACP methods, and the groups (`Action::"read"` …) each is a member of.
 * `secret.use` (a tool using a secret by reference, resource `secret:<NAME>`) is in no group.
 */
export const ACTION_GROUPS = {
  'tool.call': ['execute'],
  'http.request': ['network'],
  'fs.read': ['read'],
  'fs.list': ['read'],
  'fs.write': ['write'],
  'shell.exec': ['execute'],
  'kv.get': ['read'],
  'kv.set': ['write'],
  'task.submit': ['write'],
  'run.spawn': ['execute'],
  'secret.use': [],
} as const satisfies Record<string, readonly string[]>;
export type PolicyAction = keyof typeof ACTION_GROUPS;
export const POLICY_ACTIONS = Object.keys(ACTION_GROUPS) as PolicyAction[];

/** Action groups: `Action::"read"` etc. (ACP methods also join `scope:<scope>` and `acp`). */
export const ACTION_GROUP_NAMES = ['read', 'write', 'execute', 'network'] as const;

/** The scope an ACP method needs; `worker` methods are called by attempt principals. */
export const METHOD_SCOPES = ['read', 'write', 'admin', 'approvals', 'worker'] as const;
export type MethodScope = (typeof METHOD_SCOPES)[number];

/** ACP method → the scope it needs, as declared by the ACP dispatcher. */
export type MethodScopeTable = Readonly<Record<string, MethodScope>>;

/**
 * Levels the command-risk guard reports in `context.risk`, lowest first. YAML
 * `max_command_risk` forbids commands above the level it names.
 */
export const COMMAND_RISKS = ['low', 'medium', 'high', 'critical'] as const;
export type CommandRisk = (typeof COMMAND_RISKS)[number];

/**
 * Characters that make a command more than one simple command (control operators, pipes,
 * redirections, substitutions, expansions, line breaks). YAML command prefixes only match
 * commands without them: `git status; rm -rf ~` does not start a `git status` command.
 */
export const COMPOUND_COMMAND_CHARS = /[;&|<>`$(){}\n\r\\]/;

export function isPolicyAction(action: string): action is PolicyAction {
  return Object.hasOwn(ACTION_GROUPS, action);
}
