/**
 * Argument checks at the public API boundary. Every function and method exported from the
 * package's entry points checks its arguments with a zod schema built once at module load, and
 * throws INVALID_PARAMS naming the function, the parameter (or option) path, what was expected
 * and what it got — never a raw TypeError from deep inside. Only the boundary checks: values
 * the kernel, queue and workers pass each other are trusted and never checked again, so the
 * hot paths (claim, settle, commit) pay nothing. What the boundary pays is small: a check of a
 * method's arguments took 0.2–0.6 µs (zod 4, Node 24, a loaded 2-core VM), against ≥ 0.3 ms for
 * any write transaction. Bulk arguments (submitMany's jobs) are checked by hand, without copying.
 *
 *   checkParams('Kernel.getProcess', pidArgs, { pid });
 *   // INVALID_PARAMS "Kernel.getProcess: pid: expected a process id string (got undefined)"
 */
import { z } from 'zod';

import { WardenError } from './errors.ts';

export interface ParamIssue {
  /** Where in the arguments, e.g. `options.leaseMs` or `pid`. */
  readonly path: string;
  readonly message: string;
}

/**
 * Parses `value` with `schema` and returns the parsed value, or throws INVALID_PARAMS whose
 * message starts with `where` (`Kernel.startRun`, `new Worker`) and lists every problem as
 * `path: expected … (got …)`; `details` are `{where, issues: [{path, message}]}`.
 */
export function checkParams<T>(where: string, schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue): ParamIssue => {
    const message =
      issue.code === 'unrecognized_keys' || issue.message.includes('(got ')
        ? issue.message
        : `${issue.message} (got ${describeValue(valueAt(value, issue.path))})`;
    return { path: formatIssuePath(issue.path), message };
  });
  throw invalidParams(where, issues);
}

/** INVALID_PARAMS for problems found by hand (the same message shape as {@link checkParams}). */
export function invalidParams(where: string, issues: readonly ParamIssue[]): WardenError {
  const text = issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`));
  return new WardenError('INVALID_PARAMS', `${where}: ${text.join('; ')}`, {
    details: { where, issues: issues.map((i) => ({ path: i.path, message: i.message })) },
  });
}

/** A short, safe description of any value for an error message (never its full contents). */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return value.length > 40 ? `${JSON.stringify(value.slice(0, 40))}…` : JSON.stringify(value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${String(value)}n`;
    case 'symbol':
      return value.toString();
    case 'function':
      return value.name ? `function ${value.name}` : 'a function';
  }
  if (Array.isArray(value)) return `an array of ${value.length}`;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    const keys = Object.keys(value);
    if (keys.length === 0) return 'an empty object';
    const shown = keys.slice(0, 6).join(', ');
    return `an object with keys ${shown}${keys.length > 6 ? ', …' : ''}`;
  }
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
}

/** `a.b[2].c` for a zod issue path ('' for the root). */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** The value at a zod issue path in `root`, or undefined. */
export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const part of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}

/**
 * Schema builders with messages in the user's terms ("expected a positive integer"), for the
 * parameter schemas of each area.
 */
export const param = {
  /** Anything satisfying `test`; the message is `expected <what>`. */
  is<T>(what: string, test: (value: unknown) => boolean): z.ZodType<T> {
    return z.custom<T>(test, { error: `expected ${what}` });
  },
  string(what = 'a string'): z.ZodType<string> {
    return param.is<string>(what, (v) => typeof v === 'string');
  },
  /** A string of 1–`max` characters. */
  nonEmpty(what: string, max = 1_024): z.ZodType<string> {
    return param.is<string>(what, (v) => typeof v === 'string' && v.length > 0 && v.length <= max);
  },
  /** A string matching `pattern`. */
  matching(what: string, pattern: RegExp): z.ZodType<string> {
    return param.is<string>(what, (v) => typeof v === 'string' && pattern.test(v));
  },
  /** A safe integer in [min, max]. */
  int(min: number, max = Number.MAX_SAFE_INTEGER, what?: string): z.ZodType<number> {
    const text =
      what ??
      (max === Number.MAX_SAFE_INTEGER
        ? min === 0
          ? 'an integer ≥ 0'
          : min === 1
            ? 'a positive integer'
            : `an integer ≥ ${min}`
        : `an integer from ${min} to ${max}`);
    return param.is<number>(
      text,
      (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max,
    );
  },
  boolean(what = 'true or false'): z.ZodType<boolean> {
    return param.is<boolean>(what, (v) => typeof v === 'boolean');
  },
  /** A function (its signature is not checked; calling it is). */
  fn<F>(what: string): z.ZodType<F> {
    return param.is<F>(what, (v) => typeof v === 'function');
  },
  /** One of `values`, each quoted in the message. */
  oneOf<const V extends readonly [string, ...string[]]>(values: V): z.ZodType<V[number]> {
    return param.is<V[number]>(
      `one of ${values.map((v) => `'${v}'`).join(', ')}`,
      (v) => typeof v === 'string' && (values as readonly string[]).includes(v),
    );
  },
  /** An object with `methods` (duck-typed: instances from another copy of Warden pass too). */
  withMethods<T>(what: string, methods: readonly string[]): z.ZodType<T> {
    return param.is<T>(
      what,
      (v) =>
        v !== null &&
        typeof v === 'object' &&
        methods.every((m) => typeof (v as Record<string, unknown>)[m] === 'function'),
    );
  },
  /**
   * A plain options object with exactly these keys (each optional unless its schema says
   * otherwise): a misspelt key is an error naming it and the known keys, never ignored.
   */
  options<S extends z.ZodRawShape>(shape: S, what = 'an options object') {
    const known = Object.keys(shape).join(', ');
    return z.strictObject(shape, {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')} (known keys: ${known})`
          : `expected ${what}`,
    });
  },
} as const;

/** A Clock: an object with `now()` returning ms since the epoch. */
export const clockParam = param.withMethods<{ now(): number }>(
  'a Clock (an object with now(): number, e.g. systemClock or new ManualClock())',
  ['now'],
);
