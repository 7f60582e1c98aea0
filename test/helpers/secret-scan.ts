/**
 * Looks for planted secrets in everything Warden wrote: raw bytes of files (SQLite database,
 * -wal and -shm files, logs, exports), texts (captured output), the rows of a SQLite database
 * (a long value is split across overflow pages, so a raw byte search can miss it) and every
 * row of every table of a PostgreSQL schema.
 *
 * Each secret is searched in the forms a careless write would give it: plain UTF-8, base64 and
 * base64url at the 3 byte alignments, hex (both cases), URL-encoded (both `%xx` cases),
 * JSON-escaped and UTF-16LE. The encodings are derived here independently of the redactor
 * (src/security/secret-forms.ts), so a mistake there cannot hide itself: a base64 core is the
 * run of characters that two encodings of the secret between different neighbours share.
 */
import { Buffer } from 'node:buffer';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

export type ScanForm = 'plain' | 'base64' | 'base64url' | 'hex' | 'url' | 'json' | 'utf16le';

export interface SecretHit {
  readonly secret: string;
  /** A file path, `text:<key>`, `sqlite:<file>#<table>` or `pg:<schema>.<table>`. */
  readonly where: string;
  readonly form: ScanForm;
}

export interface ScanTargets {
  readonly files?: readonly string[];
  /** Searched recursively (regular files only). */
  readonly dirs?: readonly string[];
  /** Texts by label, e.g. `{stdout: output}`. */
  readonly texts?: Readonly<Record<string, string>>;
}

/** Anything with pg's `query` (a Pool or a Client). */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

interface Needle {
  readonly form: ScanForm;
  readonly bytes: Buffer;
}

/** The base64 characters of `secret` that do not depend on its neighbours, at `align` 0..2. */
export function base64Core(secret: Buffer, align: number): string {
  const a = Buffer.concat([Buffer.alloc(align, 0x00), secret, Buffer.alloc(3, 0x00)]);
  const b = Buffer.concat([Buffer.alloc(align, 0xff), secret, Buffer.alloc(3, 0xff)]);
  const ea = a.toString('base64');
  const eb = b.toString('base64');
  let start = 0;
  while (start < ea.length && ea[start] !== eb[start]) start++;
  let end = start;
  while (end < ea.length && ea[end] === eb[end]) end++;
  return ea.slice(start, end);
}

/** Every form of `secret` searched for, without duplicates. */
export function needlesOf(secret: string): Needle[] {
  const raw = Buffer.from(secret, 'utf8');
  const texts: [ScanForm, string][] = [['plain', secret]];
  for (const align of [0, 1, 2]) {
    const core = base64Core(raw, align);
    texts.push(['base64', core], ['base64url', core.replace(/\+/g, '-').replace(/\//g, '_')]);
  }
  const hex = raw.toString('hex');
  const uri = encodeURIComponent(secret);
  texts.push(
    ['hex', hex],
    ['hex', hex.toUpperCase()],
    ['url', uri],
    ['url', uri.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())],
    ['json', JSON.stringify(secret).slice(1, -1)],
  );
  const out: Needle[] = [];
  const seen = new Set<string>();
  const add = (form: ScanForm, bytes: Buffer) => {
    const key = bytes.toString('hex');
    if (bytes.length < 4 || seen.has(key)) return;
    seen.add(key);
    out.push({ form, bytes });
  };
  for (const [form, text] of texts) add(form, Buffer.from(text, 'utf8'));
  add('utf16le', Buffer.from(secret, 'utf16le'));
  return out;
}

function search(secrets: readonly string[], where: string, data: Buffer, hits: SecretHit[]): void {
  for (const secret of secrets)
    for (const needle of needlesOf(secret))
      if (data.includes(needle.bytes)) hits.push({ secret, where, form: needle.form });
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Every form of every secret found in the raw bytes of the targets, one hit per place and form. */
export function scanForSecrets(secrets: readonly string[], targets: ScanTargets): SecretHit[] {
  const hits: SecretHit[] = [];
  const files = [...(targets.files ?? []), ...(targets.dirs ?? []).flatMap(filesUnder)];
  for (const file of new Set(files)) {
    if (!lstatSync(file, { throwIfNoEntry: false })?.isFile()) continue;
    search(secrets, file, readFileSync(file), hits);
  }
  for (const [label, text] of Object.entries(targets.texts ?? {}))
    search(secrets, `text:${label}`, Buffer.from(text, 'utf8'), hits);
  return hits;
}

/** The bytes of a cell as stored: text as UTF-8, blobs as they are, numbers as digits. */
function cellBytes(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value === null || value === undefined) return Buffer.alloc(0);
  const text =
    typeof value === 'string'
      ? value
      : typeof value === 'number' || typeof value === 'bigint'
        ? value.toString()
        : JSON.stringify(value);
  return Buffer.from(text, 'utf8');
}

/** Every form of every secret in any row of any table of the SQLite database at `file`. */
export function scanSqliteForSecrets(file: string, secrets: readonly string[]): SecretHit[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  const hits: SecretHit[] = [];
  try {
    const tables = db
      .prepare(`SELECT name FROM sqlite_schema WHERE type = 'table'`)
      .pluck()
      .all() as string[];
    for (const table of tables) {
      const rows = db
        .prepare(`SELECT * FROM "${table.replace(/"/g, '""')}"`)
        .raw()
        .all() as unknown[][];
      const cells = rows.flatMap((row) =>
        row.flatMap((cell) => [cellBytes(cell), Buffer.from('\n')]),
      );
      search(secrets, `sqlite:${file}#${table}`, Buffer.concat(cells), hits);
    }
  } finally {
    db.close();
  }
  return hits;
}

/** Every form of every secret in any row (as `row_to_json` text) of any table of `schema`. */
export async function scanPgForSecrets(
  pool: PgQueryable,
  schema: string,
  secrets: readonly string[],
): Promise<SecretHit[]> {
  const { rows: tables } = await pool.query(
    `SELECT table_name FROM information_schema.tables
      WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name`,
    [schema],
  );
  const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
  const hits: SecretHit[] = [];
  for (const { table_name } of tables) {
    const table = String(table_name);
    const { rows } = await pool.query(
      `SELECT row_to_json(t)::text AS j FROM ${quote(schema)}.${quote(table)} t`,
    );
    const text = rows.map((r) => String(r.j)).join('\n');
    search(secrets, `pg:${schema}.${table}`, Buffer.from(text, 'utf8'), hits);
  }
  return hits;
}
