/**
 * Attempt tokens: what `task.claim` hands a remote worker for one attempt. The token carries
 * the task id and the attempt's lease token (the store's fencing token, random and never shown
 * anywhere else), so it authorizes exactly that attempt and stops working the moment the
 * attempt ends: the store rejects a stale lease token with LEASE_LOST.
 */
const PREFIX = 'wat.';

export function formatAttemptToken(taskId: string, leaseToken: string): string {
  return `${PREFIX}${taskId}.${leaseToken}`;
}

export function parseAttemptToken(
  token: string,
): { readonly taskId: string; readonly leaseToken: string } | null {
  if (!token.startsWith(PREFIX)) return null;
  const rest = token.slice(PREFIX.length);
  const dot = rest.indexOf('.');
  if (dot <= 0 || dot === rest.length - 1) return null;
  return { taskId: rest.slice(0, dot), leaseToken: rest.slice(dot + 1) };
}

export function isAttemptToken(token: string): boolean {
  return token.startsWith(PREFIX);
}
