/** Evaluates routing conditions against a routing context (DESIGN.md §5). */
import { canonicalJson, readPath } from '../json.ts';
import type { Condition } from './schema.ts';

/** What a condition's `field` paths can read: `output.x`, `outputs.<key>.x`, `state.x`, … */
export interface RoutingContext {
  readonly output: unknown;
  readonly outputs: Readonly<Record<string, unknown>>;
  readonly state: Readonly<Record<string, unknown>>;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly input: unknown;
  /** The response to this stage's interrupt, when one was resolved. */
  readonly interrupt: unknown;
}

export function evaluateCondition(condition: Condition, ctx: RoutingContext): boolean {
  if ('always' in condition) return true;
  if ('and' in condition) return condition.and.every((c) => evaluateCondition(c, ctx));
  if ('or' in condition) return condition.or.some((c) => evaluateCondition(c, ctx));
  if ('not' in condition) return !evaluateCondition(condition.not, ctx);
  const value = readField(ctx, condition.field);
  if ('exists' in condition) return value !== undefined && value !== null;
  if ('not_exists' in condition) return value === undefined || value === null;
  if ('eq' in condition) return jsonEqual(value, condition.eq);
  if ('neq' in condition) return !jsonEqual(value, condition.neq);
  if ('contains' in condition) return contains(value, condition.contains);
  if (typeof value !== 'number') return false;
  if (condition.gt !== undefined) return value > condition.gt;
  if (condition.gte !== undefined) return value >= condition.gte;
  if (condition.lt !== undefined) return value < condition.lt;
  if (condition.lte !== undefined) return value <= condition.lte;
  return false;
}

export function readField(ctx: RoutingContext, field: string): unknown {
  const dot = field.indexOf('.');
  const root = dot === -1 ? field : field.slice(0, dot);
  const rest = dot === -1 ? '' : field.slice(dot + 1);
  const base = (ctx as unknown as Record<string, unknown>)[root];
  return rest === '' ? base : readPath(base, rest);
}

/** JSON equality: numbers by value (1 == 1.0), everything else by canonical serialisation. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === undefined) return b === undefined;
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  return canonicalJson(a) === canonicalJson(b);
}

function contains(haystack: unknown, needle: unknown): boolean {
  if (typeof haystack === 'string') return typeof needle === 'string' && haystack.includes(needle);
  if (Array.isArray(haystack)) return haystack.some((item) => jsonEqual(item, needle));
  if (haystack !== null && typeof haystack === 'object') {
    return typeof needle === 'string' && Object.hasOwn(haystack, needle);
  }
  return false;
}
