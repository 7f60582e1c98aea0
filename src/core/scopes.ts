/**
 * Authorization scopes of API tokens (DESIGN.md §8): each protocol method needs one. `admin`
 * implies every other scope; the admin token (`WARDEN_HOME/auth.token`) holds all of them.
 */
import { WardenError } from './errors.ts';

export const TOKEN_SCOPES = ['read', 'write', 'admin', 'approvals'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

const KNOWN = new Set<string>(TOKEN_SCOPES);

export function isTokenScope(value: unknown): value is TokenScope {
  return typeof value === 'string' && KNOWN.has(value);
}

/** True when `granted` allows `needed` (`admin` allows everything). */
export function hasScope(granted: readonly TokenScope[], needed: TokenScope): boolean {
  return granted.includes(needed) || granted.includes('admin');
}

/**
 * Checks and normalises a scope list (a comma-separated string or an array): known scopes
 * only, at least one, duplicates dropped, in {@link TOKEN_SCOPES} order. INVALID_PARAMS naming
 * the valid scopes otherwise.
 */
export function parseScopes(value: string | readonly unknown[]): TokenScope[] {
  const items =
    typeof value === 'string'
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : value;
  const unknown = items.filter((s) => !isTokenScope(s)).map(String);
  if (unknown.length > 0 || items.length === 0) {
    const what =
      unknown.length > 0
        ? `unknown scope${unknown.length > 1 ? 's' : ''} ${unknown.map((s) => `'${s}'`).join(', ')}`
        : 'no scope given';
    throw new WardenError(
      'INVALID_PARAMS',
      `${what}: valid scopes are ${TOKEN_SCOPES.join(', ')} (comma-separated, e.g. read,write)`,
      { details: { unknown, valid: [...TOKEN_SCOPES] } },
    );
  }
  return TOKEN_SCOPES.filter((scope) => items.includes(scope));
}
