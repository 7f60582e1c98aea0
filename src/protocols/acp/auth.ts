/**
 * Who a bearer token is: the admin token or an API token (the security layer's TokenService
 * decides), or a remote worker's attempt token (that attempt only, while it lasts). Secrets are
 * compared in constant time; a failure never says which part was wrong.
 */
import type { IncomingMessage } from 'node:http';

import { WardenError } from '../../core/index.ts';
import { sameSecret, type TokenService } from '../../security/index.ts';
import type { Store } from '../../store/index.ts';
import { type Caller, parseAttemptToken, type Scope } from '../commands/index.ts';

export type Authenticate = (token: string, connectionId: string) => Promise<Caller>;

export function createAuthenticator(options: {
  readonly store: Store;
  /** The admin token (WARDEN_HOME/auth.token); read at every authentication (reloads). */
  readonly adminToken: () => string;
  readonly tokens: TokenService;
  /** Failures of the background `last_used_at` update (never fail the connection). */
  readonly onError?: (error: unknown) => void;
}): Authenticate {
  // `last_used_at` is written at most once a minute per token: an audit hint, not a hot path.
  const touched = new Map<string, number>();
  const touch = (id: string) => {
    const now = Date.now();
    if (now - (touched.get(id) ?? 0) < 60_000) return;
    touched.set(id, now);
    if (touched.size > 10_000) touched.clear();
    options.store
      .commit([{ op: 'token.touch', id, now }])
      .catch((error: unknown) => options.onError?.(error));
  };
  return async (token, connectionId) => {
    const attempt = parseAttemptToken(token);
    if (attempt) {
      const task = await options.store.getTask(attempt.taskId);
      if (
        !task ||
        task.state !== 'running' ||
        task.lease_token === null ||
        !sameSecret(attempt.leaseToken, task.lease_token)
      )
        throw new WardenError(
          'UNAUTHORIZED',
          'the attempt token is not valid (the attempt may be over)',
        );
      return {
        kind: 'attempt',
        id: task.id,
        name: `attempt:${task.id}`,
        scopes: new Set<Scope>(),
        attempt: { taskId: task.id, leaseToken: attempt.leaseToken },
        connectionId,
      };
    }
    const principal = await options.tokens.authenticate(token, options.adminToken());
    if (principal.kind === 'token') touch(principal.id);
    return {
      kind: principal.kind,
      id: principal.id,
      name: principal.name,
      scopes: new Set(principal.scopes),
      connectionId,
    };
  };
}

/** Query parameters that would carry a credential: refused even when the token is valid. */
const CREDENTIAL_PARAMS = [
  'token',
  'access_token',
  'auth',
  'authorization',
  'key',
  'api_key',
  'bearer',
];

export function bearerToken(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+(\S{1,4096})\s*$/i.exec(header);
  return match ? match[1]! : null;
}

export function credentialInUrl(url: URL): boolean {
  for (const name of url.searchParams.keys())
    if (CREDENTIAL_PARAMS.includes(name.toLowerCase())) return true;
  return false;
}

/**
 * The caller of an HTTP request (an ACP upgrade, `/events`): the bearer token from the
 * `Authorization` header only. UNAUTHORIZED for a credential in the URL (even a valid one), a
 * missing header, or a token that does not authenticate (without saying why).
 */
export async function authenticateRequest(
  req: IncomingMessage,
  url: URL,
  authenticate: Authenticate,
  connectionId: string,
): Promise<Caller> {
  if (credentialInUrl(url))
    throw new WardenError(
      'UNAUTHORIZED',
      'credentials in the URL are refused (they end up in logs and history); send the token in the Authorization: Bearer header',
    );
  const token = bearerToken(req);
  if (token === null)
    throw new WardenError(
      'UNAUTHORIZED',
      'missing credentials: send Authorization: Bearer <token> (the admin token is in WARDEN_HOME/auth.token)',
    );
  try {
    return await authenticate(token, connectionId);
  } catch {
    throw new WardenError(
      'UNAUTHORIZED',
      'invalid credentials: the token is unknown, revoked or expired',
    );
  }
}
