/**
 * Built-in Cedar policies, loaded beside the operator's in every policy version: API tokens
 * may call the ACP methods of their scopes, an attempt may call worker methods for its own
 * task only, and an active capability grant allows (or asks for) what it names. Nothing else:
 * with no operator policy every tool, URL, path, command, KV key, lane, workflow and secret
 * is denied.
 *
 * They are part of Warden, not of the policy files, so they are not in the version hash:
 * a policy version names the operator's content; these change only with Warden itself.
 */

/** The file name built-in policies are reported under. */
export const BUILTIN_FILE = '<builtin>';

/** Ids of the two grant policies: the PDP reports them as the grant's id. */
export const GRANT_POLICY = 'builtin:grant';
export const GRANT_ASK_POLICY = 'builtin:grant.ask';

const tokenScope = (scope: string) => `@id("builtin:token.scope.${scope}")
permit (
  principal is Token,
  action in Action::"scope:${scope}",
  resource
) when {
  principal.scopes.contains("${scope}")
};`;

export const BASE_POLICIES = `${['read', 'write', 'approvals'].map(tokenScope).join('\n\n')}

@id("builtin:token.admin")
permit (
  principal is Token,
  action in Action::"acp",
  resource
) when {
  principal.scopes.contains("admin")
};

@id("builtin:token.worker")
permit (
  principal is Token,
  action in Action::"scope:worker",
  resource
) when {
  principal.scopes.contains("write")
};

@id("builtin:attempt.own-task")
permit (
  principal is Attempt,
  action in Action::"scope:worker",
  resource
) when {
  context has task_id && context.task_id == principal.task_id
};

@id("${GRANT_POLICY}")
permit (principal, action, resource) when {
  context has grant && !context.grant.ask
};

@id("${GRANT_ASK_POLICY}")
@decision("ask")
permit (principal, action, resource) when {
  context has grant && context.grant.ask
};
`;
