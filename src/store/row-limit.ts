/**
 * Row limits at the Store port, the same rule for every adapter: a limit is a positive integer,
 * or INVALID_PARAMS. Zero would make a paging caller loop for ever (a prune of 0 rows always has
 * `more`), and SQL reads a negative LIMIT as "no limit" (a prune of -1 would delete everything
 * in one transaction). A limit above the method's maximum is lowered to it.
 */
import { errors } from '../core/index.ts';

/** `limit` checked (`fallback` when undefined) and clamped to `max`; `what` names it in errors. */
export function rowLimit(
  what: string,
  limit: number | undefined,
  fallback: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  if (limit === undefined) return Math.min(fallback, max);
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw errors.invalidParams(`${what} must be a positive integer (got ${String(limit)})`, {
      what,
      limit: String(limit),
    });
  }
  return Math.min(limit, max);
}
