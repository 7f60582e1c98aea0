/**
 * Trust levels (core/policy/types.ts) applied after the policy decided: they only ever narrow
 * a decision (allow → ask or deny, ask → deny), never widen one.
 */
import type { Decision, MethodScopeTable, TrustLevel } from '../../core/index.ts';

/**
 * The trust level of `principal`: the most specific pattern wins — `agent:wf/stage`, then
 * `agent:wf/*`, then `agent:*` (`skill:name`, then `skill:*`; other types exact, then
 * `<type>:*`). `act` when no pattern matches.
 */
export function trustLevelOf(
  trust: Readonly<Record<string, TrustLevel>>,
  principal: string,
): TrustLevel {
  const exact = trust[principal];
  if (exact !== undefined) return exact;
  const colon = principal.indexOf(':');
  const kind = principal.slice(0, colon);
  if (kind === 'agent') {
    const slash = principal.indexOf('/', colon);
    if (slash > 0) {
      const workflow = trust[`${principal.slice(0, slash)}/*`];
      if (workflow !== undefined) return workflow;
    }
  }
  return trust[`${kind}:*`] ?? 'act';
}

/** Read-only actions: what `observe` may do. */
const READ_ACTIONS = new Set(['fs.read', 'fs.list', 'kv.get']);
const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * True for read-only requests: fs.read, fs.list, kv.get, an http.request whose
 * `context.method` is GET or HEAD, and ACP methods of scope `read`.
 */
export function isReadRequest(
  action: string,
  context: Readonly<Record<string, unknown>> | undefined,
  methodScopes: MethodScopeTable,
): boolean {
  if (READ_ACTIONS.has(action)) return true;
  if (action === 'http.request') {
    const method = context?.method;
    return typeof method === 'string' && READ_METHODS.has(method.toUpperCase());
  }
  if (action.startsWith('acp:')) {
    const method = action.slice(4);
    return Object.hasOwn(methodScopes, method) && methodScopes[method] === 'read';
  }
  return false;
}

/** A decision after the trust cap, with the reason when the cap changed it. */
export interface TrustOutcome {
  readonly decision: Decision;
  readonly reason: string | null;
}

/** Narrows `decision` by the principal's trust `level`. */
export function applyTrust(
  decision: Decision,
  level: TrustLevel,
  principal: string,
  action: string,
  read: boolean,
): TrustOutcome {
  if (decision === 'deny' || level === 'act' || read) return { decision, reason: null };
  switch (level) {
    case 'observe':
      return {
        decision: 'deny',
        reason: `trust: ${principal} has trust level observe: only read actions are allowed (fs.read, fs.list, kv.get, GET/HEAD http.request, read methods), not ${action}`,
      };
    case 'suggest':
      if (action === 'task.submit') return { decision, reason: null };
      return {
        decision: 'deny',
        reason: `trust: ${principal} has trust level suggest: only read actions and task.submit are allowed, not ${action}`,
      };
    case 'act-with-approval':
      if (decision === 'ask') return { decision, reason: null };
      return {
        decision: 'ask',
        reason: `trust: ${principal} has trust level act-with-approval: ${action} needs approval`,
      };
    default: {
      const never: never = level;
      throw new Error(`unknown trust level ${String(never)}`);
    }
  }
}
