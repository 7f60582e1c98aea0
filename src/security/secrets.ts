/**
 * Secrets (DESIGN.md §8): values that tools need (API keys, passwords) and that Warden must
 * never write anywhere (§2.10). They come from two places, read once at start:
 *
 * - environment variables `WARDEN_SECRET_<NAME>` (an empty variable counts as unset), and
 * - `WARDEN_HOME/secrets.yaml`, a flat YAML map `NAME: value`. The file must be a regular file
 *   (not a symbolic link) owned by the user running Warden with mode 0600 or stricter; anything
 *   else is refused with SECRET_MISSING and the `chmod`/`chown` that fixes it. Values are read
 *   as strings exactly as written (YAML failsafe schema: `0123` stays `0123`, `true` stays `true`).
 *
 * The environment wins over the file. Names match {@link SECRET_NAME_PATTERN}. Workflows and
 * policies name secrets, never hold them: a tool argument `{secret: NAME}` is replaced by the
 * value just before the tool runs ({@link SecretStore.resolveRefs}), and every record of the
 * call goes through the store's {@link SecretStore.redactor}. The store itself prints as names
 * only (`JSON.stringify`, `util.inspect`, template strings).
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { isMap, isNode, isScalar, parseDocument } from 'yaml';

import { invalidParams, WardenError } from '../core/index.ts';
import { Redactor } from './redact.ts';
import { MIN_SECRET_CHARS, SECRET_NAME_PATTERN } from './secret-forms.ts';

/** The prefix of the environment variables that hold secrets. */
export const SECRET_ENV_PREFIX = 'WARDEN_SECRET_';

/** The secrets file's name inside WARDEN_HOME. */
export const SECRETS_FILE = 'secrets.yaml';

/** Largest secrets file read. @default 1 MiB */
export const MAX_SECRETS_FILE_BYTES = 1024 * 1024;

/** Objects nested deeper than this in {@link SecretStore.resolveRefs} input are refused. */
const MAX_REF_DEPTH = 64;

export interface SecretStoreLoadOptions {
  /** WARDEN_HOME: the file is `<home>/secrets.yaml`. */
  readonly home: string;
  /** Where `WARDEN_SECRET_<NAME>` variables are read. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The user who must own the file. @default process.getuid() (not checked where there is none) */
  readonly uid?: number;
}

/** Where a secret's value came from. */
export type SecretSource = 'env' | 'file' | 'given';

interface Entry {
  readonly value: string;
  readonly source: SecretSource;
}

/** What to set, for messages: `WARDEN_SECRET_X` or `X` in the file. */
function howToSet(name: string, file: string): string {
  return `set the environment variable ${SECRET_ENV_PREFIX}${name}, or add '${name}: <value>' to ${file} (mode 0600)`;
}

/** `readable by its group and others, writable by its group` for the unsafe bits of a mode. */
function unsafeBits(mode: number): string {
  const phrase = (bit: number, adjective: string): string[] => {
    const who = [mode & (bit << 3) ? 'its group' : '', mode & bit ? 'others' : ''].filter(Boolean);
    return who.length ? [`${adjective} by ${who.join(' and ')}`] : [];
  };
  return [...phrase(4, 'readable'), ...phrase(2, 'writable'), ...phrase(1, 'executable')].join(
    ', ',
  );
}

const unsafe = (file: string, message: string, details: Record<string, unknown> = {}) =>
  new WardenError('SECRET_MISSING', message, { details: { file, ...details } });

const invalid = (file: string, message: string, details: Record<string, unknown> = {}) =>
  new WardenError('CONFIG_INVALID', message, { details: { file, ...details } });

/** Reads the file's bytes after checking what it is, on the opened descriptor (no race). */
function readSecretsFile(file: string, uid: number | undefined): string | null {
  let fd: number;
  try {
    fd = openSync(
      file,
      constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0),
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP' || lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink())
      throw unsafe(
        file,
        `${file} is a symbolic link; Warden reads secrets only from a regular file: replace the link with the file itself (mode 0600)`,
      );
    throw unsafe(file, `cannot read ${file} (${code ?? String(error)}); make it readable by you`, {
      reason: code,
    });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile())
      throw unsafe(file, `${file} is not a regular file; make it a file (mode 0600)`);
    if (uid !== undefined && stat.uid !== uid)
      throw unsafe(
        file,
        `${file} is owned by uid ${stat.uid}, not by the user running Warden (uid ${uid}); run chown ${uid} ${file}`,
        { owner: stat.uid },
      );
    const mode = stat.mode & 0o777;
    const modeText = `0${mode.toString(8).padStart(3, '0')}`;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0)
      throw unsafe(
        file,
        `${file} is ${unsafeBits(mode)} (mode ${modeText}): run chmod 600 ${file}`,
        { mode: modeText },
      );
    if (stat.size > MAX_SECRETS_FILE_BYTES)
      throw invalid(
        file,
        `${file} is ${stat.size} bytes, more than the ${MAX_SECRETS_FILE_BYTES} allowed; keep only secrets in it`,
      );
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** The line of a character offset, 1-based. */
const lineOf = (text: string, offset: number): number => text.slice(0, offset).split('\n').length;

function checkValue(name: string, value: string, where: string, file: string): void {
  if (value.length < MIN_SECRET_CHARS)
    throw invalid(
      file,
      `secret ${name} (${where}) is ${value.length === 0 ? 'empty' : `${value.length} characters long`}; secrets must have at least ${MIN_SECRET_CHARS} characters, because shorter ones cannot be told apart from ordinary text when redacting`,
      { name },
    );
}

/** Parses the file's text: a flat map of NAME to string. CONFIG_INVALID without quoting content. */
function parseSecrets(text: string, file: string): Map<string, string> {
  const doc = parseDocument(text, { schema: 'failsafe', prettyErrors: false, uniqueKeys: true });
  const [error] = doc.errors;
  if (error)
    // Only the code and line: yaml's own message may quote a line of the file, i.e. a secret.
    throw invalid(
      file,
      `${file} is not valid YAML (line ${lineOf(text, error.pos[0])}: ${error.code}); write one 'NAME: value' per line, quoting values that contain ': ' or ' #'`,
      { line: lineOf(text, error.pos[0]), yaml_code: error.code },
    );
  const out = new Map<string, string>();
  const root = doc.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return out;
  if (!isMap(root)) throw invalid(file, `${file} must be a map of 'NAME: value' lines`);
  for (const pair of root.items) {
    const line = lineOf(text, (isNode(pair.key) ? pair.key.range?.[0] : undefined) ?? 0);
    // Keys are reported by line only: a mistyped line may hold a value where a name should be.
    const name = isScalar(pair.key) && typeof pair.key.value === 'string' ? pair.key.value : null;
    if (name === null || !SECRET_NAME_PATTERN.test(name))
      throw invalid(
        file,
        `${file} line ${line}: the key is not a secret name; use upper-case letters, digits and _ (like GITHUB_TOKEN), starting with a letter, 64 at most`,
        { line },
      );
    if (!isScalar(pair.value) && pair.value !== null)
      throw invalid(
        file,
        `${file} line ${line}: ${name} must be a single text value, not a list, a map or an alias; quote it`,
        { name, line },
      );
    const raw: unknown = isScalar(pair.value) ? pair.value.value : null;
    const value = typeof raw === 'string' ? raw : ''; // the failsafe schema reads only strings
    checkValue(name, value, `in ${file} line ${line}`, file);
    out.set(name, value);
  }
  return out;
}

/** Secret values by name. Values leave only through {@link get} and {@link resolveRefs}. */
export class SecretStore {
  readonly #entries: ReadonlyMap<string, Entry>;
  readonly #file: string;
  #redactor: Redactor | null = null;

  private constructor(entries: ReadonlyMap<string, Entry>, file: string) {
    this.#entries = entries;
    this.#file = file;
  }

  /**
   * Reads `WARDEN_SECRET_<NAME>` variables from `env` and `<home>/secrets.yaml` (when present);
   * the environment wins.
   * @throws SECRET_MISSING when the file is unsafe (a symbolic link, not a regular file, owned
   *   by someone else, or readable or writable by group or others): the message names the fix.
   * @throws CONFIG_INVALID for bad YAML, a bad name, a value that is not text, or a value shorter
   *   than {@link MIN_SECRET_CHARS} characters. No message ever contains a value.
   */
  static load(options: SecretStoreLoadOptions): SecretStore {
    if (typeof options?.home !== 'string' || options.home === '')
      throw invalidParams('SecretStore.load', [
        { path: 'home', message: 'expected the WARDEN_HOME directory path' },
      ]);
    const file = join(options.home, SECRETS_FILE);
    const entries = new Map<string, Entry>();
    const text = readSecretsFile(file, options.uid ?? process.getuid?.());
    if (text !== null)
      for (const [name, value] of parseSecrets(text, file))
        entries.set(name, { value, source: 'file' });
    const env = options.env ?? process.env;
    for (const [key, value] of Object.entries(env)) {
      if (!key.startsWith(SECRET_ENV_PREFIX) || value === undefined || value === '') continue;
      const name = key.slice(SECRET_ENV_PREFIX.length);
      if (!SECRET_NAME_PATTERN.test(name))
        throw invalid(
          file,
          `environment variable ${key}: '${name}' is not a secret name; use upper-case letters, digits and _ after ${SECRET_ENV_PREFIX} (like ${SECRET_ENV_PREFIX}GITHUB_TOKEN)`,
          { variable: key },
        );
      checkValue(name, value, `from ${key}`, file);
      entries.set(name, { value, source: 'env' });
    }
    return new SecretStore(entries, file);
  }

  /**
   * A store holding exactly `values` (for embedding and tests; nothing is read).
   * @throws INVALID_PARAMS for a bad name; CONFIG_INVALID for a value that is too short.
   */
  static of(values: Readonly<Record<string, string>>, file = SECRETS_FILE): SecretStore {
    const entries = new Map<string, Entry>();
    for (const [name, value] of Object.entries(values)) {
      checkName('SecretStore.of', name);
      if (typeof value !== 'string')
        throw invalidParams('SecretStore.of', [{ path: name, message: 'expected a string' }]);
      checkValue(name, value, 'given to SecretStore.of', file);
      entries.set(name, { value, source: 'given' });
    }
    return new SecretStore(entries, file);
  }

  /**
   * The value of secret `name`.
   * @throws SECRET_MISSING naming the variable and the file to set; INVALID_PARAMS for a bad name.
   */
  get(name: string): string {
    checkName('SecretStore.get', name);
    const entry = this.#entries.get(name);
    if (entry) return entry.value;
    throw new WardenError(
      'SECRET_MISSING',
      `secret ${name} is not set: ${howToSet(name, this.#file)}`,
      { details: { name, env: `${SECRET_ENV_PREFIX}${name}`, file: this.#file } },
    );
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** Names of the secrets, sorted. Never the values. */
  names(): string[] {
    return [...this.#entries.keys()].sort();
  }

  /** Where secret `name` came from, or undefined when it is not set. */
  source(name: string): SecretSource | undefined {
    return this.#entries.get(name)?.source;
  }

  /**
   * A copy of `value` with every `{secret: NAME}` object (exactly one key, `secret`) replaced by
   * the secret's value, at any depth of arrays and plain objects. Other values are returned as
   * they are. Call it at the last moment (just before a tool runs) and never store the result.
   * @throws SECRET_MISSING for an unset name; INVALID_PARAMS for `{secret: x}` where x is not a
   *   name (the message does not repeat x: it may be a secret pasted in by mistake), or nesting
   *   deeper than 64 levels.
   */
  resolveRefs(value: unknown): unknown {
    return this.#resolve(value, 0, '$');
  }

  /** A redactor for every secret of this store, plus the credential shapes. Built once. */
  redactor(): Redactor {
    this.#redactor ??= new Redactor({
      secrets: [...this.#entries].map(([name, entry]) => [name, entry.value] as const),
    });
    return this.#redactor;
  }

  toJSON(): { secrets: string[] } {
    return { secrets: this.names() };
  }

  toString(): string {
    return `SecretStore(${this.names().join(', ')})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SecretStore { secrets: [${this.names().join(', ')}] }`;
  }

  #resolve(value: unknown, depth: number, path: string): unknown {
    if (typeof value !== 'object' || value === null) return value;
    if (depth >= MAX_REF_DEPTH)
      throw invalidParams('SecretStore.resolveRefs', [
        { path, message: `nested deeper than ${MAX_REF_DEPTH} levels` },
      ]);
    if (Array.isArray(value))
      return value.map((item, i) => this.#resolve(item, depth + 1, `${path}[${i}]`));
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return value;
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (keys.length === 1 && keys[0] === 'secret' && typeof record.secret === 'string') {
      const name = record.secret;
      if (!SECRET_NAME_PATTERN.test(name))
        throw invalidParams('SecretStore.resolveRefs', [
          {
            path: `${path}.secret`,
            message: `expected a secret's NAME (A-Z, 0-9, _, like GITHUB_TOKEN), not its value (got a string of ${name.length} characters)`,
          },
        ]);
      return this.get(name);
    }
    const copy: Record<string, unknown> = {};
    for (const key of keys) copy[key] = this.#resolve(record[key], depth + 1, `${path}.${key}`);
    return copy;
  }
}

function checkName(where: string, name: unknown): void {
  if (typeof name !== 'string' || !SECRET_NAME_PATTERN.test(name))
    throw invalidParams(where, [
      {
        path: 'name',
        message: `expected a secret name like GITHUB_TOKEN (upper-case letters, digits, _; 64 at most)${typeof name === 'string' ? ` (got a string of ${name.length} characters)` : ` (got ${typeof name})`}`,
      },
    ]);
}

/** The secret names a value references as `{secret: NAME}`, anywhere inside it. */
export function secretNames(value: unknown): string[] {
  const found = new Set<string>();
  const walk = (v: unknown, depth: number): void => {
    if (depth > 32 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const item of v) walk(item, depth + 1);
      return;
    }
    const entries = Object.entries(v);
    if (entries.length === 1 && entries[0]![0] === 'secret' && typeof entries[0]![1] === 'string') {
      found.add(entries[0]![1]);
      return;
    }
    for (const [, item] of entries) walk(item, depth + 1);
  };
  walk(value, 0);
  return [...found];
}
