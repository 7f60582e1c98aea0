/**
 * `type:id` names → Cedar entities (docs/policy.md#entity-model). Everything about an
 * entity is derived from its name (and, for tokens, the scopes authentication verified), so a
 * decision depends on nothing but the request and the policy version.
 *
 *   agent:wf/stage     Agent::"wf/stage"  in Workflow::"wf"      {workflow, stage}
 *   token:tok_1        Token::"tok_1"                            {scopes}
 *   attempt:task_1     Attempt::"task_1"                         {task_id}
 *   tool:mcp.gh.issue  Tool::"mcp.gh.issue" in ToolGroup::"mcp.gh", ToolGroup::"mcp"  {name}
 *   url:https://h/p    Url::"https://h/p"                        {scheme, host, port, path}
 *   path:/a/b          Path::"/a/b"                              {path}
 *   command:ls -l      Command::"ls -l"                          {text, program, simple}
 *   acp:session.list   Action::"acp:session.list" in scope:<s>, acp:session.*, acp (+ read/write)
 *
 * A name that is malformed or of an unknown type throws INVALID_PARAMS: the PDP denies it.
 */
import type { CedarValueJson, EntityJson, EntityUidJson } from '@cedar-policy/cedar-wasm/nodejs';

import {
  ACTION_GROUPS,
  COMPOUND_COMMAND_CHARS,
  isPolicyAction,
  type MethodScopeTable,
  PRINCIPAL_TYPES,
  RESOURCE_TYPES,
  TOKEN_SCOPES,
  WardenError,
} from '../../core/index.ts';

/**
 * The default ACP method → scope table: empty (every `acp:` action is then only in the `acp`
 * group, which admin tokens may call). The daemon passes the dispatcher's table.
 */
export const DEFAULT_METHOD_SCOPES: MethodScopeTable = Object.freeze({});

/** Nesting allowed in a request's context (deeper is refused, so evaluation stays bounded). */
export const MAX_CONTEXT_DEPTH = 32;

function invalid(message: string): WardenError {
  return new WardenError('INVALID_PARAMS', message);
}

function split(name: string, what: string): [string, string] {
  const colon = name.indexOf(':');
  if (colon <= 0 || colon === name.length - 1)
    throw invalid(`${what} '${name}' is not a type:id name (e.g. agent:wf/stage)`);
  return [name.slice(0, colon), name.slice(colon + 1)];
}

function uid(type: string, id: string): EntityUidJson {
  return { type, id };
}

/** The principal's entity; `scopes` are a token's verified scopes (`token:admin` has all). */
export function principalEntity(principal: string, scopes?: readonly string[]): EntityJson {
  const [kind, id] = split(principal, 'principal');
  switch (kind) {
    case 'agent': {
      const slash = id.indexOf('/');
      const parents = slash > 0 ? [uid('Workflow', id.slice(0, slash))] : [];
      const attrs: Record<string, CedarValueJson> =
        slash > 0 ? { workflow: id.slice(0, slash), stage: id.slice(slash + 1) } : { workflow: id };
      return { uid: uid(PRINCIPAL_TYPES.agent, id), attrs, parents };
    }
    case 'token': {
      const granted = id === 'admin' ? [...TOKEN_SCOPES] : (scopes ?? []).filter(isString);
      return { uid: uid(PRINCIPAL_TYPES.token, id), attrs: { scopes: granted }, parents: [] };
    }
    case 'attempt':
      return { uid: uid(PRINCIPAL_TYPES.attempt, id), attrs: { task_id: id }, parents: [] };
    case 'skill':
    case 'user':
      return { uid: uid(PRINCIPAL_TYPES[kind], id), attrs: { name: id }, parents: [] };
    default:
      throw invalid(
        `unknown principal type '${kind}' in '${principal}' (known: ${Object.keys(PRINCIPAL_TYPES).join(', ')})`,
      );
  }
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

/** The action's entity with its groups; unknown actions are refused (unknown = deny). */
export function actionEntity(action: string, methodScopes: MethodScopeTable): EntityJson {
  if (isPolicyAction(action))
    return {
      uid: uid('Action', action),
      attrs: {},
      parents: ACTION_GROUPS[action].map((g) => uid('Action', g)),
    };
  if (action.startsWith('acp:') && action.length > 4) {
    const method = action.slice(4);
    const parents = [uid('Action', 'acp')];
    // Every dotted prefix is a group: `session.*` names `session.list` and `session.get`.
    for (let dot = method.indexOf('.'); dot > 0; dot = method.indexOf('.', dot + 1))
      parents.push(uid('Action', `acp:${method.slice(0, dot)}.*`));
    const scope = Object.hasOwn(methodScopes, method) ? methodScopes[method] : undefined;
    if (scope !== undefined) {
      parents.push(uid('Action', `scope:${scope}`));
      if (scope === 'read' || scope === 'write') parents.push(uid('Action', scope));
    }
    return { uid: uid('Action', action), attrs: {}, parents };
  }
  throw invalid(
    `unknown action '${action}' (known: ${Object.keys(ACTION_GROUPS).join(', ')}, acp:<method>)`,
  );
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

/** The resource's entity. */
export function resourceEntity(resource: string): EntityJson {
  const [kind, id] = split(resource, 'resource');
  switch (kind) {
    case 'tool': {
      const parents: EntityUidJson[] = [];
      for (let dot = id.lastIndexOf('.'); dot > 0; dot = id.lastIndexOf('.', dot - 1))
        parents.push(uid('ToolGroup', id.slice(0, dot)));
      return { uid: uid('Tool', id), attrs: { name: id }, parents };
    }
    case 'url': {
      let url: URL;
      try {
        url = new URL(id);
      } catch {
        throw invalid(`resource '${resource}' is not an absolute URL`);
      }
      const port = url.port === '' ? (DEFAULT_PORTS[url.protocol] ?? 0) : Number(url.port);
      const attrs = {
        scheme: url.protocol.slice(0, -1),
        host: url.hostname,
        port,
        path: url.pathname,
      };
      return { uid: uid('Url', id), attrs, parents: [] };
    }
    case 'path': {
      // Real paths only: a relative or non-normal path would slip past root prefixes.
      if (
        !id.startsWith('/') ||
        /\/\.{0,2}(\/|$)/.test(id.slice(id === '/' ? 1 : 0)) ||
        id.includes('\0')
      )
        throw invalid(`resource '${resource}' is not an absolute, normalised path`);
      return { uid: uid('Path', id), attrs: { path: id }, parents: [] };
    }
    case 'command': {
      const program = id.trim().split(/\s+/, 1)[0] ?? '';
      const simple = !COMPOUND_COMMAND_CHARS.test(id) && !id.includes('\0');
      return { uid: uid('Command', id), attrs: { text: id, program, simple }, parents: [] };
    }
    case 'kv': {
      const slash = id.indexOf('/');
      if (slash <= 0) throw invalid(`resource '${resource}' is not kv:<namespace>/<key>`);
      const attrs = { namespace: id.slice(0, slash), key: id.slice(slash + 1) };
      return { uid: uid('Kv', id), attrs, parents: [] };
    }
    case 'lane':
    case 'workflow':
    case 'method':
    case 'secret':
      return { uid: uid(RESOURCE_TYPES[kind], id), attrs: { name: id }, parents: [] };
    default:
      throw invalid(
        `unknown resource type '${kind}' in '${resource}' (known: ${Object.keys(RESOURCE_TYPES).join(', ')})`,
      );
  }
}

/** Keys Cedar's JSON format reads as entity or extension values: refused in a context. */
const RESERVED_KEYS = new Set(['__entity', '__extn', '__expr']);

/**
 * A request context as a Cedar record. Integers stay numbers, other finite numbers become
 * `decimal` values (4 places, Cedar has no floats), null and undefined members are dropped,
 * arrays become sets; anything else, a reserved key or nesting over {@link MAX_CONTEXT_DEPTH}
 * throws. The PDP's own `grant` key is removed here and set by the PDP alone.
 */
export function toCedarContext(
  context: Readonly<Record<string, unknown>> | undefined,
): Record<string, CedarValueJson> {
  if (context === undefined) return {};
  const out = toCedarValue(context, 'context', 0) as Record<string, CedarValueJson>;
  delete out.grant;
  return out;
}

function toCedarValue(value: unknown, path: string, depth: number): CedarValueJson | undefined {
  if (depth > MAX_CONTEXT_DEPTH) throw invalid(`${path}: nested deeper than ${MAX_CONTEXT_DEPTH}`);
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isSafeInteger(value)) return value;
      if (Number.isFinite(value) && Math.abs(value) < 9e14)
        return { __extn: { fn: 'decimal', arg: value.toFixed(4) } };
      throw invalid(`${path}: ${value} is not a number Cedar can hold`);
    case 'undefined':
      return undefined;
    case 'object':
      break;
    default:
      throw invalid(`${path}: a ${typeof value} is not a context value`);
  }
  if (value === null) return undefined;
  if (Array.isArray(value)) {
    const items: CedarValueJson[] = [];
    value.forEach((item, i) => {
      const v = toCedarValue(item, `${path}[${i}]`, depth + 1);
      if (v !== undefined) items.push(v);
    });
    return items;
  }
  if (value instanceof Date) return value.toISOString();
  const record: Record<string, CedarValueJson> = {};
  for (const [key, member] of Object.entries(value)) {
    if (RESERVED_KEYS.has(key)) throw invalid(`${path}.${key}: reserved key`);
    const v = toCedarValue(member, `${path}.${key}`, depth + 1);
    if (v !== undefined) record[key] = v;
  }
  return record;
}
