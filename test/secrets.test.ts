/** The secret store: file rules on real files, environment, names, references, printing. */
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format, inspect } from 'node:util';

import { afterAll, describe, expect, it } from 'vitest';

import { isWardenError, type WardenError } from '../src/core/index.ts';
import { SecretStore } from '../src/security/secrets.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

afterAll(removeTempDirs);

const GH = 'ghp_planted_value_0001';
const PG = 'pg-planted-value-0002';

/** A WARDEN_HOME whose secrets.yaml holds `text` with `mode`. */
function home(text: string, mode = 0o600): { dir: string; file: string } {
  const dir = tempDir('warden-secrets-');
  const file = join(dir, 'secrets.yaml');
  writeFileSync(file, text, { mode });
  chmodSync(file, mode); // the umask may have dropped bits
  return { dir, file };
}

function thrown(fn: () => unknown): WardenError {
  try {
    fn();
  } catch (error) {
    if (isWardenError(error)) return error;
    throw error;
  }
  throw new Error('expected a WardenError');
}

describe('SecretStore.load: the file', () => {
  it('reads a 0600 file of NAME: value lines, values as written', () => {
    const { dir } = home(
      `GITHUB_TOKEN: ${GH}\nPG_PASSWORD: "${PG}"\nPIN_CODE: 0012345\nFLAG_X: true-ish\n`,
    );
    const store = SecretStore.load({ home: dir, env: {} });
    expect(store.names()).toEqual(['FLAG_X', 'GITHUB_TOKEN', 'PG_PASSWORD', 'PIN_CODE']);
    expect(store.get('GITHUB_TOKEN')).toBe(GH);
    expect(store.get('PG_PASSWORD')).toBe(PG);
    expect(store.get('PIN_CODE')).toBe('0012345'); // not the number 12345
    expect(store.source('PIN_CODE')).toBe('file');
    expect(store.has('NOPE')).toBe(false);
  });

  it('accepts a stricter mode (0400) and a missing or empty file', () => {
    expect(SecretStore.load({ home: home(`A_KEY: ${GH}\n`, 0o400).dir, env: {} }).names()).toEqual([
      'A_KEY',
    ]);
    expect(SecretStore.load({ home: tempDir(), env: {} }).names()).toEqual([]);
    expect(SecretStore.load({ home: home('# nothing yet\n').dir, env: {} }).names()).toEqual([]);
  });

  it.each([
    [0o644, 'readable by its group and others (mode 0644)'],
    [0o640, 'readable by its group (mode 0640)'],
    [0o604, 'readable by others (mode 0604)'],
    [0o620, 'writable by its group (mode 0620)'],
    [0o666, 'readable by its group and others, writable by its group and others (mode 0666)'],
    [0o610, 'executable by its group (mode 0610)'],
  ])('refuses mode %o with SECRET_MISSING naming the chmod', (mode, words) => {
    const { dir, file } = home(`A_KEY: ${GH}\n`, mode);
    const error = thrown(() => SecretStore.load({ home: dir, env: {} }));
    expect(error.code).toBe('SECRET_MISSING');
    expect(error.message).toBe(`${file} is ${words}: run chmod 600 ${file}`);
    expect(error.message).not.toContain(GH);
  });

  it('refuses a symbolic link, even to a 0600 file', () => {
    const { file: target } = home(`A_KEY: ${GH}\n`);
    const dir = tempDir();
    const link = join(dir, 'secrets.yaml');
    symlinkSync(target, link);
    const error = thrown(() => SecretStore.load({ home: dir, env: {} }));
    expect(error.code).toBe('SECRET_MISSING');
    expect(error.message).toBe(
      `${link} is a symbolic link; Warden reads secrets only from a regular file: replace the link with the file itself (mode 0600)`,
    );
  });

  it('refuses a directory and a file owned by another user', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'secrets.yaml'), { mode: 0o700 });
    expect(thrown(() => SecretStore.load({ home: dir, env: {} })).message).toContain(
      'is not a regular file',
    );
    const { dir: other, file } = home(`A_KEY: ${GH}\n`);
    const me = process.getuid!();
    const error = thrown(() => SecretStore.load({ home: other, env: {}, uid: me + 1 }));
    expect(error.code).toBe('SECRET_MISSING');
    expect(error.message).toBe(
      `${file} is owned by uid ${me}, not by the user running Warden (uid ${me + 1}); run chown ${me + 1} ${file}`,
    );
  });

  it('refuses bad content with CONFIG_INVALID, never quoting a value', () => {
    const cases: [string, RegExp][] = [
      [`lower_name: ${GH}\n`, /line 1: the key is not a secret name/],
      [`GOOD: ${PG}\n${GH}: x\n`, /line 2: the key is not a secret name/],
      [`LIST_KEY: [${GH}]\n`, /line 1: LIST_KEY must be a single text value/],
      [`A_KEY: "${GH}\n`, /is not valid YAML \(line 2: MISSING_CHAR\)/],
      [`A_KEY: ${GH}\nA_KEY: ${PG}\n`, /is not valid YAML \(line 2: DUPLICATE_KEY\)/],
      [
        'SHORT: abc\n',
        /secret SHORT \(in .* line 1\) is 3 characters long; secrets must have at least 6/,
      ],
      ['EMPTY:\n', /secret EMPTY \(in .* line 1\) is empty/],
      [`- ${GH}\n`, /must be a map of 'NAME: value' lines/],
      [
        `A_KEY: &x ${GH}\nB_KEY: *x\n`,
        /line 2: B_KEY must be a single text value, not a list, a map or an alias/,
      ],
    ];
    for (const [text, message] of cases) {
      const error = thrown(() => SecretStore.load({ home: home(text).dir, env: {} }));
      expect(error.code, text).toBe('CONFIG_INVALID');
      expect(error.message, text).toMatch(message);
      for (const value of [GH, PG])
        expect(JSON.stringify(error.toJSON()), text).not.toContain(value);
    }
  });
});

describe('SecretStore.load: the environment', () => {
  it('reads WARDEN_SECRET_<NAME>, overrides the file, ignores empty variables', () => {
    const { dir } = home(`A_KEY: file-value-1\nB_KEY: file-value-2\n`);
    const store = SecretStore.load({
      home: dir,
      env: {
        WARDEN_SECRET_A_KEY: 'env-value-1',
        WARDEN_SECRET_B_KEY: '',
        WARDEN_SECRET_C_KEY: PG,
        OTHER: 'x',
      },
    });
    expect(store.get('A_KEY')).toBe('env-value-1');
    expect(store.source('A_KEY')).toBe('env');
    expect(store.get('B_KEY')).toBe('file-value-2');
    expect(store.get('C_KEY')).toBe(PG);
    expect(store.names()).toEqual(['A_KEY', 'B_KEY', 'C_KEY']);
  });

  it('reads process.env by default', () => {
    process.env.WARDEN_SECRET_FROM_PROCESS = 'process-value-1';
    try {
      expect(SecretStore.load({ home: tempDir() }).get('FROM_PROCESS')).toBe('process-value-1');
    } finally {
      delete process.env.WARDEN_SECRET_FROM_PROCESS;
    }
  });

  it('refuses bad names and short values, naming the variable, not the value', () => {
    const bad = thrown(() =>
      SecretStore.load({ home: tempDir(), env: { WARDEN_SECRET_lower: PG } }),
    );
    expect(bad.code).toBe('CONFIG_INVALID');
    expect(bad.message).toContain(
      "environment variable WARDEN_SECRET_lower: 'lower' is not a secret name",
    );
    const short = thrown(() =>
      SecretStore.load({ home: tempDir(), env: { WARDEN_SECRET_PIN: '1234' } }),
    );
    expect(short.message).toMatch(/^secret PIN \(from WARDEN_SECRET_PIN\) is 4 characters long/);
    expect(short.message).not.toContain('1234');
    expect(thrown(() => SecretStore.load({ home: '' })).code).toBe('INVALID_PARAMS');
  });
});

describe('SecretStore: get, references, printing', () => {
  const { dir, file } = home(`GITHUB_TOKEN: ${GH}\n`);
  const store = SecretStore.load({ home: dir, env: { WARDEN_SECRET_PG_PASSWORD: PG } });

  it('get of a missing secret names the variable and the file to set', () => {
    const error = thrown(() => store.get('SLACK_TOKEN'));
    expect(error.code).toBe('SECRET_MISSING');
    expect(error.message).toBe(
      `secret SLACK_TOKEN is not set: set the environment variable WARDEN_SECRET_SLACK_TOKEN, or add 'SLACK_TOKEN: <value>' to ${file} (mode 0600)`,
    );
    expect(error.details).toEqual({ name: 'SLACK_TOKEN', env: 'WARDEN_SECRET_SLACK_TOKEN', file });
    expect(thrown(() => store.get('not a name')).code).toBe('INVALID_PARAMS');
  });

  it('resolveRefs replaces {secret: NAME} at any depth and nothing else', () => {
    const input = {
      url: 'https://api',
      headers: [{ authorization: { secret: 'GITHUB_TOKEN' } }],
      nested: { deeper: [[{ secret: 'PG_PASSWORD' }]] },
      two_keys: { secret: 'GITHUB_TOKEN', note: 1 },
      not_text: { secret: 42 },
      n: 1,
      nil: null,
    };
    expect(store.resolveRefs(input)).toEqual({
      url: 'https://api',
      headers: [{ authorization: GH }],
      nested: { deeper: [[PG]] },
      two_keys: { secret: 'GITHUB_TOKEN', note: 1 },
      not_text: { secret: 42 },
      n: 1,
      nil: null,
    });
    expect(input.headers[0]).toEqual({ authorization: { secret: 'GITHUB_TOKEN' } }); // unchanged
    expect(store.resolveRefs({ secret: 'PG_PASSWORD' })).toBe(PG);
    expect(store.resolveRefs('plain')).toBe('plain');
  });

  it('resolveRefs: unset → SECRET_MISSING; a value where a name belongs → INVALID_PARAMS, unquoted', () => {
    expect(thrown(() => store.resolveRefs({ a: [{ secret: 'MISSING_ONE' }] })).code).toBe(
      'SECRET_MISSING',
    );
    const error = thrown(() => store.resolveRefs({ a: { secret: 'sk-pasted-by-mistake' } }));
    expect(error.code).toBe('INVALID_PARAMS');
    expect(error.message).toBe(
      "SecretStore.resolveRefs: $.a.secret: expected a secret's NAME (A-Z, 0-9, _, like GITHUB_TOKEN), not its value (got a string of 20 characters)",
    );
    let deep: unknown = { secret: 'GITHUB_TOKEN' };
    for (let i = 0; i < 70; i++) deep = { d: deep };
    expect(thrown(() => store.resolveRefs(deep)).code).toBe('INVALID_PARAMS');
  });

  it('never prints a value: JSON, inspect, format, String, error details', () => {
    const printed = [
      JSON.stringify(store),
      JSON.stringify({ nested: store }),
      inspect(store, { depth: null, showHidden: true }),
      inspect({ store }, { depth: null }),
      format('%o %O %s %j', store, store, store, store),
      String(store),
      // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- what is tested
      `${store}`,
      JSON.stringify(store.redactor()),
      inspect(store.redactor(), { showHidden: true }),
    ];
    for (const text of printed) {
      expect(text).not.toContain(GH);
      expect(text).not.toContain(PG);
    }
    expect(JSON.stringify(store)).toBe('{"secrets":["GITHUB_TOKEN","PG_PASSWORD"]}');
    expect(printed[2]).toBe('SecretStore { secrets: [GITHUB_TOKEN, PG_PASSWORD] }');
  });

  it('redactor() knows every secret and is built once', () => {
    const redactor = store.redactor();
    expect(store.redactor()).toBe(redactor);
    expect(redactor.names()).toEqual(['GITHUB_TOKEN', 'PG_PASSWORD']);
    expect(redactor.redactText(`a ${GH} b ${Buffer.from(PG).toString('base64')}`)).toBe(
      'a [REDACTED:GITHUB_TOKEN] b [REDACTED:PG_PASSWORD]',
    );
  });

  it('SecretStore.of holds given values with the same checks', () => {
    const given = SecretStore.of({ API_KEY: 'given-value-1' });
    expect(given.get('API_KEY')).toBe('given-value-1');
    expect(given.source('API_KEY')).toBe('given');
    expect(thrown(() => SecretStore.of({ bad: 'given-value-1' })).code).toBe('INVALID_PARAMS');
    expect(thrown(() => SecretStore.of({ TINY: 'abc' })).code).toBe('CONFIG_INVALID');
  });
});
