/**
 * Operator scopes (reference §2.6) and how they meet Warden's tokens. A connection is granted
 * what it declares ∩ what its credential allows (least privilege: an admin token that declares
 * `operator.read` gets read only); each method needs one scope, with `operator.admin`
 * satisfying every scope and `operator.write` satisfying read. Unclassified methods need
 * admin (default deny). After the scope check, the policy decision point decides the same
 * call as the ACP command doing the same work — there is no other authorization code.
 */
import type { TokenScope } from '../../core/index.ts';
import { patchScope, patchScopeOfFields, sessionsPatchParams } from '../../core/openclaw/index.ts';
import type { CommandName } from '../commands/index.ts';
import { gatewayError, GatewayFailure } from './frames.ts';

export const OPERATOR_SCOPES = [
  'operator.read',
  'operator.write',
  'operator.admin',
  'operator.approvals',
  'operator.pairing',
  'operator.talk',
  'operator.talk.secrets',
  'operator.questions',
  'operator.sessions.read',
  'operator.sessions.write',
] as const;
export type OperatorScope = (typeof OPERATOR_SCOPES)[number];

/** The Warden token scope an operator scope stands for. */
const WARDEN_SCOPE: Record<OperatorScope, TokenScope> = {
  'operator.read': 'read',
  'operator.sessions.read': 'read',
  'operator.write': 'write',
  'operator.sessions.write': 'write',
  'operator.admin': 'admin',
  'operator.approvals': 'approvals',
  'operator.questions': 'approvals',
  // Pairing and talk secrets are administration in Warden.
  'operator.pairing': 'admin',
  'operator.talk': 'admin',
  'operator.talk.secrets': 'admin',
};

function tokenAllows(granted: ReadonlySet<string>, needed: TokenScope): boolean {
  return granted.has(needed) || granted.has('admin');
}

/**
 * The scopes a connection gets: the declared ones its credential allows, in declaration order,
 * duplicates and unknown names dropped. A missing list means no scopes (§2.2, default deny).
 */
export function grantScopes(
  declared: readonly string[] | undefined,
  credential: ReadonlySet<string>,
): OperatorScope[] {
  const out: OperatorScope[] = [];
  for (const scope of declared ?? []) {
    if (!(OPERATOR_SCOPES as readonly string[]).includes(scope)) continue;
    const s = scope as OperatorScope;
    if (!out.includes(s) && tokenAllows(credential, WARDEN_SCOPE[s])) out.push(s);
  }
  return out;
}

/** True when `granted` satisfies `needed` (admin satisfies all; write satisfies read). */
export function scopeSatisfied(granted: readonly OperatorScope[], needed: OperatorScope): boolean {
  if (granted.includes('operator.admin') || granted.includes(needed)) return true;
  if (needed === 'operator.read' || needed === 'operator.sessions.read')
    return granted.includes('operator.write') || granted.includes('operator.read');
  if (needed === 'operator.sessions.write') return granted.includes('operator.write');
  if (needed === 'operator.questions') return granted.includes('operator.approvals');
  return false;
}

/**
 * A gateway method: the scope it needs (or a function of its params, §2.6 "decided per call")
 * and the ACP command the policy decision point decides it as.
 */
export interface MethodAccess {
  readonly scope: OperatorScope | ((params: Record<string, unknown>) => OperatorScope);
  readonly command: CommandName;
}

/**
 * §2.6 "decided per call", by the core's rule on the parsed params; params that do not parse
 * are decided by the fields present (the method then reports what is wrong with them).
 */
export function sessionsPatchScope(params: Record<string, unknown>): OperatorScope {
  const parsed = sessionsPatchParams.safeParse(params);
  return parsed.success ? patchScope(parsed.data) : patchScopeOfFields(params);
}

/** `agent` and `chat.send`: `/new` and `/reset` messages need admin (§4.18). */
function messageScope(params: Record<string, unknown>): OperatorScope {
  const message = params.message;
  return typeof message === 'string' && /^\s*\/(new|reset)\b/i.test(message)
    ? 'operator.admin'
    : 'operator.write';
}

const read = (command: CommandName): MethodAccess => ({ scope: 'operator.read', command });
const write = (command: CommandName): MethodAccess => ({ scope: 'operator.write', command });
const admin = (command: CommandName): MethodAccess => ({ scope: 'operator.admin', command });

export const METHOD_ACCESS: Readonly<Record<string, MethodAccess>> = {
  health: read('system.status'),
  status: read('system.status'),
  'system-presence': read('system.status'),
  'last-heartbeat': read('system.status'),
  'config.get': read('system.status'),
  'models.list': read('system.status'),
  'agents.list': read('system.status'),
  'usage.status': read('session.list'),
  'usage.cost': read('session.list'),
  'sessions.list': read('session.list'),
  'sessions.preview': read('session.history'),
  'sessions.resolve': read('session.get'),
  'sessions.describe': read('session.get'),
  'sessions.get': read('session.get'),
  'sessions.usage': read('session.list'),
  'sessions.usage.timeseries': read('session.history'),
  'sessions.usage.logs': read('session.history'),
  'sessions.history': read('session.history'),
  'sessions.subscribe': read('session.get'),
  'sessions.unsubscribe': read('session.get'),
  'session.status': read('session.get'),
  'sessions.status': read('session.get'),
  'chat.history': read('session.history'),
  'sessions.patch': { scope: sessionsPatchScope, command: 'session.patch' },
  'sessions.reset': admin('session.patch'),
  'sessions.compact': admin('session.patch'),
  'sessions.delete': {
    scope: (p) => (p.archivedOnly === true ? 'operator.write' : 'operator.admin'),
    command: 'session.delete',
  },
  'chat.send': { scope: messageScope, command: 'run.start' },
  'sessions.send': { scope: messageScope, command: 'run.start' },
  'sessions.steer': { scope: messageScope, command: 'run.start' },
  agent: { scope: messageScope, command: 'run.start' },
  'agent.wait': read('run.get'),
  'chat.abort': write('run.cancel'),
  'sessions.abort': write('run.cancel'),
  'chat.inject': admin('session.patch'),
  'exec.approval.resolve': { scope: 'operator.approvals', command: 'interrupt.resolve' },
  'exec.approval.waitDecision': { scope: 'operator.approvals', command: 'interrupt.get' },
  'exec.approvals.get': admin('policy.get'),
};

export function requiredScope(method: string, params: Record<string, unknown>): OperatorScope {
  // Own keys only: `constructor`, `__proto__`… are unknown methods, not Object's members.
  const access = Object.hasOwn(METHOD_ACCESS, method) ? METHOD_ACCESS[method] : undefined;
  if (!access) return 'operator.admin';
  return typeof access.scope === 'function' ? access.scope(params) : access.scope;
}

/** §2.6: FORBIDDEN with `details.code: MISSING_SCOPE`. */
export function missingScope(needed: OperatorScope): GatewayFailure {
  return new GatewayFailure(
    gatewayError('FORBIDDEN', `missing scope: ${needed}`, {
      code: 'MISSING_SCOPE',
      missingScope: needed,
      requiredScopes: [needed],
    }),
  );
}
