/**
 * The secret scanner finds what it is meant to find: each form of a planted secret in files,
 * directories, texts, SQLite rows and PostgreSQL rows, and nothing in clean data. A scanner
 * that always answered "no hits" would make every leak test pass; these tests stop that.
 */
import { Buffer } from 'node:buffer';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

import { dropSchemas, freshSchema, PG_URL } from './helpers/postgres.ts';
import {
  base64Core,
  needlesOf,
  scanForSecrets,
  scanPgForSecrets,
  scanSqliteForSecrets,
} from './helpers/secret-scan.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const SECRET = 'pl4nted/Secret+"quote"é???>>>'; // ?? and >> give / and + in base64
const OTHER = 'another-planted-2';

afterAll(async () => {
  removeTempDirs();
  await dropSchemas();
});

/** Where `secret` was found, as `form@where` strings. */
/** An alignment at which the secret's base64 has `+` or `/`, so base64url differs. */
const URL_ALIGN = [0, 1, 2].find((a) => /[+/]/.test(base64Core(Buffer.from(SECRET), a)))!;

const found = (hits: { secret: string; where: string; form: string }[], secret = SECRET) =>
  hits.filter((h) => h.secret === secret).map((h) => `${h.form}@${h.where}`);

describe('scanForSecrets', () => {
  it('finds each form in files, and nothing in a clean file', () => {
    const dir = tempDir('warden-scan-');
    const raw = Buffer.from(SECRET);
    const plants: Record<string, Buffer> = {
      plain: Buffer.from(`log line ${SECRET} end`),
      'base64-0': Buffer.from(Buffer.concat([raw, Buffer.from('tail')]).toString('base64')),
      'base64-1': Buffer.from(Buffer.concat([Buffer.from('h'), raw]).toString('base64')),
      'base64-2': Buffer.from(
        Buffer.concat([Buffer.from('hh'), raw, Buffer.from('t')]).toString('base64'),
      ),
      base64url: Buffer.from(
        Buffer.concat([Buffer.from('h'.repeat(URL_ALIGN)), raw]).toString('base64url'),
      ),
      hex: Buffer.from(`x${raw.toString('hex')}x`),
      HEX: Buffer.from(raw.toString('hex').toUpperCase()),
      url: Buffer.from(`https://h/?q=${encodeURIComponent(SECRET)}`),
      json: Buffer.from(JSON.stringify({ v: SECRET })),
      utf16le: Buffer.concat([Buffer.from([0, 1]), Buffer.from(SECRET, 'utf16le')]),
      clean: Buffer.from(`nothing here but ${OTHER.slice(0, 8)} and pl4nted/Secret`),
    };
    for (const [name, bytes] of Object.entries(plants)) writeFileSync(join(dir, name), bytes);
    const hits = scanForSecrets([SECRET], {
      files: Object.keys(plants).map((name) => join(dir, name)),
    });
    const forms = Object.fromEntries(
      Object.keys(plants).map((name) => [
        name,
        hits.filter((h) => h.where === join(dir, name)).map((h) => h.form),
      ]),
    );
    expect(forms).toEqual({
      plain: ['plain'],
      'base64-0': ['base64'],
      'base64-1': ['base64'],
      'base64-2': ['base64'],
      base64url: ['base64url'],
      hex: ['hex'],
      HEX: ['hex'],
      url: ['url'],
      json: ['json'],
      utf16le: ['utf16le'],
      clean: [],
    });
  });

  it('searches directories recursively and texts, for several secrets', () => {
    const dir = tempDir('warden-scan-');
    mkdirSync(join(dir, 'logs', 'old'), { recursive: true });
    writeFileSync(join(dir, 'logs', 'old', 'warden.log'), `{"msg":"${OTHER}"}\n`);
    writeFileSync(join(dir, 'config.yaml'), 'clean: true\n');
    const hits = scanForSecrets([SECRET, OTHER], {
      dirs: [dir],
      texts: { stdout: `printed ${SECRET}`, stderr: 'clean' },
    });
    expect(found(hits)).toEqual(['plain@text:stdout']);
    expect(found(hits, OTHER)).toEqual([`plain@${join(dir, 'logs', 'old', 'warden.log')}`]);
  });

  it('each needle is distinct and the base64 cores are the neighbour-independent part', () => {
    const needles = needlesOf(SECRET);
    expect(new Set(needles.map((n) => n.bytes.toString('hex'))).size).toBe(needles.length);
    expect(needles.filter((n) => n.form === 'base64')).toHaveLength(3);
    expect(URL_ALIGN).toBeGreaterThanOrEqual(0);
  });
});

describe('scanSqliteForSecrets', () => {
  it('finds a secret in any table, also inside a value spread over overflow pages', () => {
    const file = join(tempDir('warden-scan-'), 'warden.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE events (data TEXT); CREATE TABLE blobs (b BLOB); CREATE TABLE clean (x)');
    // ~20 KB of text: SQLite splits it over several 4 KB pages, each with a 4-byte link.
    const long = `${'z'.repeat(4080)}${SECRET}`.repeat(5);
    db.prepare('INSERT INTO events VALUES (?)').run(JSON.stringify({ long }));
    db.prepare('INSERT INTO blobs VALUES (?)').run(
      Buffer.from(Buffer.from(OTHER).toString('base64')),
    );
    db.prepare('INSERT INTO clean VALUES (?)').run('nothing');
    const hits = scanSqliteForSecrets(file, [SECRET, OTHER]);
    db.close();
    expect(found(hits)).toEqual([`json@sqlite:${file}#events`]);
    expect(found(hits, OTHER)).toEqual([`base64@sqlite:${file}#blobs`]);
    // The raw files see it too (at least one copy is not split by a page boundary).
    expect(scanForSecrets([SECRET], { files: [file, `${file}-wal`] }).length).toBeGreaterThan(0);
  });
});

describe('scanPgForSecrets', () => {
  it('finds secrets in text, jsonb and bytea columns of every table, nothing in clean ones', async () => {
    const schema = freshSchema('scan');
    const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
    try {
      await pool.query(`CREATE SCHEMA "${schema}"`);
      await pool.query(`CREATE TABLE "${schema}".events (id int, data jsonb, note text)`);
      await pool.query(`CREATE TABLE "${schema}".effects (id int, result bytea)`);
      await pool.query(`CREATE TABLE "${schema}".clean (id int, note text)`);
      await pool.query(`INSERT INTO "${schema}".events VALUES (1, $1, 'ok')`, [
        JSON.stringify({ arg: SECRET }),
      ]);
      await pool.query(`INSERT INTO "${schema}".effects VALUES (1, $1)`, [Buffer.from(OTHER)]);
      await pool.query(`INSERT INTO "${schema}".clean VALUES (1, 'nothing')`);
      const hits = await scanPgForSecrets(pool, schema, [SECRET, OTHER]);
      expect(found(hits)).toEqual([`json@pg:${schema}.events`]);
      expect(found(hits, OTHER)).toEqual([`hex@pg:${schema}.effects`]);
      expect(hits.some((h) => h.where.endsWith('.clean'))).toBe(false);
    } finally {
      await pool.end();
    }
  });
});
