/**
 * Who a bearer token is: the admin token (every scope), an API token (its scopes), or a remote
 * worker's attempt token (that attempt only, while it lasts). Secrets are compared in constant
 * time (as equal-length digests); a failure never says which part was wrong.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

import { WardenError } from '../../core/index.ts';
import type { Store } from '../../store/index.ts';
import { type Caller, parseAttemptToken, type Scope, SCOPES } from '../commands/index.ts';

/** Verifies API tokens (TokenService); UNAUTHORIZED for an unknown, revoked or expired one. */
export interface TokenVerifier {
  verify(token: string): Promise<{ id: string; name: string; scopes: readonly Scope[] }>;
}

export type Authenticate = (token: string, connectionId: string) => Promise<Caller>;

export function sameSecret(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function unauthorized(message = 'invalid credentials'): WardenError {
  return new WardenError('UNAUTHORIZED', message);
}

export function createAuthenticator(options: {
  readonly store: Store;
  /** The admin token (WARDEN_HOME/auth.token); re-read by the caller on reload. */
  readonly adminToken: () => string;
  readonly tokens?: TokenVerifier;
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
        throw unauthorized('the attempt token is not valid (the attempt may be over)');
      return {
        kind: 'attempt',
        id: task.id,
        name: `attempt:${task.id}`,
        scopes: new Set<Scope>(),
        attempt: { taskId: task.id, leaseToken: attempt.leaseToken },
        connectionId,
      };
    }
    if (sameSecret(token, options.adminToken()))
      return {
        kind: 'admin',
        id: 'admin',
        name: 'admin',
        scopes: new Set<Scope>(SCOPES),
        connectionId,
      };
    if (!options.tokens) throw unauthorized();
    const verified = await options.tokens.verify(token);
    touch(verified.id);
    return {
      kind: 'token',
      id: verified.id,
      name: verified.name,
      scopes: new Set(verified.scopes),
      connectionId,
    };
  };
}
