/**
 * Redaction (DESIGN.md §2.10, §8): secrets never reach logs, events, errors or the store.
 * Everything Warden writes that might carry a secret — a log line, an event's data, an error's
 * message and details, a tool's arguments and output, a recorded model prompt — goes through a
 * {@link Redactor} first.
 *
 * A redactor knows secret values by name and replaces every form of each (plain, base64 at any
 * alignment, hex, URL- and JSON-encoded: see secret-forms.ts) with `[REDACTED:NAME]`. It also
 * recognises common credential shapes it was not told about (bearer tokens, provider API keys,
 * JWTs, PEM private keys, URL passwords: redact-patterns.ts) and replaces them with
 * `[REDACTED]`. Two regular expressions, built once (again only after the secrets change):
 * the secrets' forms as escaped literals, longest first so that a secret containing another is
 * replaced whole; then the shapes. Secrets go first so that a shape cannot take half of one
 * (`password=abc,def`: the key=value shape stops at the comma). Both are linear in the text's
 * length; the cost per byte grows with the number of forms (~13 per secret). Measured on
 * Node 24 on a busy 2-core VM, per MB of text (random base64, English prose): 10 secrets
 * 20–85 ms, 100 secrets 90–250 ms. Building: ~10 ms for 10 secrets, 50–120 ms for 100. A page
 * of 1,000 small events (three short strings each) takes ~10 ms once warm.
 *
 * A replacement can join with its neighbours into a new occurrence (secret `]abcdef`, text
 * `]abcdef]abcdef`…), so after a pass that replaced anything the result is searched again, up
 * to {@link MAX_PASSES} passes, and again after the shapes changed anything; text that still
 * holds a secret after that is replaced whole. So the output of `redactText` never contains a
 * known secret's forms.
 *
 * Not covered: a secret shorter than {@link MIN_SECRET_CHARS}, a secret transformed in any other
 * way (split, reversed, re-cased, hashed, encrypted, compressed, line-wrapped base64), and
 * shapes the patterns do not know. Redaction is a net, not a licence to log secrets.
 */
import { Buffer } from 'node:buffer';

import { invalidParams, WardenError } from '../core/index.ts';
import { normaliseKey, SENSITIVE_KEYS, TOKEN_PATTERNS } from './redact-patterns.ts';
import { MIN_SECRET_CHARS, SECRET_NAME_PATTERN, secretForms } from './secret-forms.ts';

/** The replacement for a pattern match or a sensitive key's value. */
export const REDACTED_TEXT = '[REDACTED]';

/** Passes over a text before it is replaced whole (see the module comment). */
export const MAX_PASSES = 4;

/** Objects nested deeper than this are replaced with {@link TOO_DEEP}, unread. */
export const MAX_REDACT_DEPTH = 64;
export const TOO_DEEP = '[REDACTED: nested too deep]';

export interface RedactorOptions {
  /** Secret values by name (names as in secrets.yaml: `^[A-Z][A-Z0-9_]{0,63}$`). @default {} */
  readonly secrets?: Readonly<Record<string, string>> | Iterable<readonly [string, string]>;
  /**
   * Also redact credential shapes (redact-patterns.ts) and the values of sensitive keys
   * (`password`, `token`, `authorization`…) in objects. @default true
   */
  readonly patterns?: boolean;
}

interface Compiled {
  /** Every form of every secret, longest first; null without secrets. */
  readonly literals: RegExp | null;
  /** The credential shapes, one named group per shape; null with `patterns: false`. */
  readonly shapes: RegExp | null;
  /** A form's text → its secret's name. */
  readonly names: ReadonlyMap<string, string>;
}

const escapeRegex = (text: string): string => text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');

const SENSITIVE = new Set(SENSITIVE_KEYS);

/** `{secret: NAME}`: a reference, whose name is not a secret and stays readable. */
function isSecretRef(value: Record<string, unknown>): boolean {
  const keys = Object.keys(value);
  return (
    keys.length === 1 &&
    keys[0] === 'secret' &&
    typeof value.secret === 'string' &&
    SECRET_NAME_PATTERN.test(value.secret)
  );
}

let none: Redactor | undefined;

/** Replaces secrets and credential shapes in text and in values of any shape. */
export class Redactor {
  readonly #secrets = new Map<string, string>(); // value → name
  readonly #patterns: boolean;
  readonly #sealed: boolean;
  #compiled: Compiled | null = null;

  /** @throws INVALID_PARAMS for a bad name or a value that is not a string. */
  constructor(options: RedactorOptions = {}, sealed = false) {
    this.#patterns = options.patterns ?? true;
    const secrets = options.secrets ?? {};
    const entries =
      Symbol.iterator in secrets ? secrets : Object.entries(secrets as Record<string, string>);
    for (const [name, value] of entries) this.addSecret(value, name);
    this.#sealed = sealed;
  }

  /** One shared redactor that changes nothing (no secrets, no patterns); it refuses secrets. */
  static none(): Redactor {
    none ??= new Redactor({ patterns: false }, true);
    return none;
  }

  /**
   * Adds a secret: from now on its every form is replaced by `[REDACTED:NAME]`. Values shorter
   * than {@link MIN_SECRET_CHARS} characters are not added (they would redact ordinary words)
   * and the result is false. A value added twice keeps its first name.
   * @throws INVALID_PARAMS for a bad name or a value that is not a string; INVALID_STATE on
   *   {@link Redactor.none}.
   */
  addSecret(value: string, name: string): boolean {
    if (this.#sealed)
      throw new WardenError(
        'INVALID_STATE',
        'Redactor.none() is shared and redacts nothing; create a new Redactor to add secrets',
      );
    if (typeof name !== 'string' || !SECRET_NAME_PATTERN.test(name))
      throw invalidParams('Redactor.addSecret', [
        { path: 'name', message: 'expected a name like GITHUB_TOKEN (A-Z, 0-9, _; 64 at most)' },
      ]);
    if (typeof value !== 'string')
      // The value is never described: it may be the secret.
      throw invalidParams('Redactor.addSecret', [
        { path: 'value', message: `expected a string (got ${typeof value})` },
      ]);
    if (value.length < MIN_SECRET_CHARS) return false;
    if (!this.#secrets.has(value)) {
      this.#secrets.set(value, name);
      this.#compiled = null;
    }
    return true;
  }

  /** The names of the secrets this redactor knows, sorted (never their values). */
  names(): string[] {
    return [...new Set(this.#secrets.values())].sort();
  }

  /** Text with every secret form and credential shape replaced. */
  redactText(text: string): string {
    const { literals, shapes, names } = this.#compile();
    let out = literals === null ? text : this.#replaceSecrets(text, literals, names);
    if (shapes === null) return out;
    let changed = false;
    out = out.replace(shapes, (_match: string, ...rest: unknown[]) => {
      changed = true;
      const groups = rest[rest.length - 1] as Record<string, string | undefined>;
      for (let i = 0; i < TOKEN_PATTERNS.length; i++) {
        const keep = groups[`p${i}`];
        if (keep !== undefined) return `${keep}${REDACTED_TEXT}`;
      }
      return REDACTED_TEXT;
    });
    return changed && literals !== null ? this.#replaceSecrets(out, literals, names) : out;
  }

  /** Replaces secrets' forms until none is left (at most MAX_PASSES passes, then everything). */
  #replaceSecrets(text: string, literals: RegExp, names: ReadonlyMap<string, string>): string {
    let out = text;
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      literals.lastIndex = 0;
      if (!literals.test(out)) return out;
      out = out.replace(literals, (match) => `[REDACTED:${names.get(match) ?? 'SECRET'}]`);
    }
    literals.lastIndex = 0;
    return literals.test(out) ? REDACTED_TEXT : out;
  }

  /**
   * A copy of `value` with every string redacted, keys included: strings in arrays, plain
   * objects, Maps, Sets and Errors (message, stack, `cause`, `details`), UTF-8 text in Buffers.
   * Values of sensitive keys (`password`, `token`…; see redact-patterns.ts) become `[REDACTED]`
   * unless the redactor was built with `patterns: false`; a `{secret: NAME}` reference stays.
   * Other class instances become plain objects of their own enumerable properties (through
   * `toJSON` when they have one), as JSON would see them. Cycles are kept as cycles. Deeper than
   * {@link MAX_REDACT_DEPTH} levels, a value is replaced by {@link TOO_DEEP}.
   */
  redact<T>(value: T): T {
    const { literals, shapes } = this.#compile();
    if (literals === null && shapes === null) return value;
    return this.#walk(value, 0, new Map()) as T;
  }

  /** Names only: a redactor is safe to log. */
  toJSON(): { secrets: string[] } {
    return { secrets: this.names() };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Redactor { secrets: [${this.names().join(', ')}] }`;
  }

  #walk(value: unknown, depth: number, seen: Map<object, unknown>): unknown {
    if (typeof value === 'string') return this.redactText(value);
    if (typeof value !== 'object' || value === null) return value;
    const known = seen.get(value);
    if (known !== undefined) return known;
    if (depth >= MAX_REDACT_DEPTH) return TOO_DEEP;
    const next = depth + 1;
    if (Array.isArray(value)) {
      const copy: unknown[] = [];
      seen.set(value, copy);
      for (const item of value) copy.push(this.#walk(item, next, seen));
      return copy;
    }
    if (value instanceof Uint8Array) {
      const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
      const redacted = this.redactText(text);
      if (redacted === text) return value;
      return Buffer.isBuffer(value) ? Buffer.from(redacted) : new TextEncoder().encode(redacted);
    }
    if (value instanceof Map) {
      const copy = new Map<unknown, unknown>();
      seen.set(value, copy);
      for (const [k, v] of value) copy.set(this.#walk(k, next, seen), this.#walk(v, next, seen));
      return copy;
    }
    if (value instanceof Set) {
      const copy = new Set<unknown>();
      seen.set(value, copy);
      for (const item of value) copy.add(this.#walk(item, next, seen));
      return copy;
    }
    if (value instanceof Date || value instanceof RegExp) return value;
    if (value instanceof Error) return this.#walkError(value, next, seen);
    const proto = Object.getPrototypeOf(value) as unknown;
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (proto !== Object.prototype && proto !== null && typeof toJSON === 'function') {
      const json: unknown = toJSON.call(value);
      if (json !== value) {
        seen.set(value, TOO_DEEP); // a toJSON that returns its own holder again stops here
        const copy = this.#walk(json, next, seen);
        seen.set(value, copy);
        return copy;
      }
    }
    const record = value as Record<string, unknown>;
    const copy: Record<string, unknown> = {};
    seen.set(value, copy);
    const ref = isSecretRef(record);
    for (const key of Object.keys(record)) {
      const item = record[key];
      copy[this.redactText(key)] =
        this.#patterns && !ref && typeof item === 'string' && item !== '' && this.#sensitive(key)
          ? REDACTED_TEXT
          : this.#walk(item, next, seen);
    }
    return copy;
  }

  /** Same prototype (so `instanceof`, `name`, `code` and brands survive), every field redacted. */
  #walkError(error: Error, depth: number, seen: Map<object, unknown>): Error {
    const copy = Object.create(Object.getPrototypeOf(error) as object) as Error;
    seen.set(error, copy);
    for (const key of Reflect.ownKeys(error)) {
      const descriptor = Object.getOwnPropertyDescriptor(error, key)!;
      let item: unknown;
      try {
        item = 'value' in descriptor ? descriptor.value : Reflect.get(error, key);
      } catch {
        continue; // a throwing getter: nothing to copy
      }
      Object.defineProperty(copy, key, {
        value: this.#walk(item, depth, seen),
        enumerable: descriptor.enumerable ?? false,
        writable: true,
        configurable: true,
      });
    }
    return copy;
  }

  #sensitive(key: string): boolean {
    return SENSITIVE.has(normaliseKey(key));
  }

  #compile(): Compiled {
    if (this.#compiled) return this.#compiled;
    const names = new Map<string, string>();
    for (const [value, name] of this.#secrets)
      for (const form of secretForms(value)) if (!names.has(form.text)) names.set(form.text, name);
    const forms = [...names.keys()].sort((a, b) => b.length - a.length).map(escapeRegex);
    // A shape never swallows a secret already replaced (`password=[REDACTED:PG_PASSWORD]`).
    const shapes = TOKEN_PATTERNS.map((p, i) => `(?<p${i}>${p.keep})(?!\\[REDACTED)(?:${p.body})`);
    this.#compiled = {
      literals: forms.length > 0 ? new RegExp(forms.join('|'), 'g') : null,
      shapes: this.#patterns ? new RegExp(shapes.join('|'), 'g') : null,
      names,
    };
    return this.#compiled;
  }
}
