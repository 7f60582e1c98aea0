/** The redactor: secrets in every encoded form, credential shapes, deep values, cycles, size. */
import { Buffer } from 'node:buffer';
import { inspect } from 'node:util';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError, WardenError } from '../src/core/index.ts';
import { MAX_REDACT_DEPTH, REDACTED_TEXT, Redactor, TOO_DEEP } from '../src/security/redact.ts';
import { base64Cores, MIN_SECRET_CHARS, secretForms } from '../src/security/secret-forms.ts';
import { base64Core, scanForSecrets } from './helpers/secret-scan.ts';

const SECRET = 'hunter2-Xq9!vL/+z"\\é';
const r = new Redactor({ secrets: { DB_PASSWORD: SECRET } });

/** What the independent scanner still finds of `secrets` in `text`. */
const leaks = (secrets: string[], text: string) =>
  scanForSecrets(secrets, { texts: { out: text } }).map((h) => h.form);

describe('Redactor: forms of a known secret', () => {
  it('replaces the plain value with [REDACTED:NAME]', () => {
    expect(r.redactText(`connect with ${SECRET} now`)).toBe(
      'connect with [REDACTED:DB_PASSWORD] now',
    );
  });

  it('replaces base64 and base64url of the secret at every offset inside a larger blob', () => {
    for (let before = 0; before < 6; before++)
      for (const after of [0, 1, 2, 5]) {
        const blob = Buffer.concat([
          Buffer.from('x'.repeat(before)),
          Buffer.from(SECRET),
          Buffer.from('y'.repeat(after)),
        ]);
        for (const text of [blob.toString('base64'), blob.toString('base64url')]) {
          const out = r.redactText(`data:${text};`);
          expect(out, `offset ${before}, ${after} after`).toContain('[REDACTED:DB_PASSWORD]');
          expect(leaks([SECRET], out)).toEqual([]);
        }
      }
  });

  it('finds a Basic credential (user:password in base64) by its password', () => {
    const header = `Basic ${Buffer.from(`admin:${SECRET}`).toString('base64')}`;
    const out = new Redactor({ secrets: { DB_PASSWORD: SECRET }, patterns: false }).redactText(
      header,
    );
    expect(out).toContain('[REDACTED:DB_PASSWORD]');
    expect(leaks([SECRET], out)).toEqual([]);
  });

  it('base64 cores match an independent derivation and sit inside any encoding', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 6, maxLength: 40 }),
        fc.uint8Array({ maxLength: 8 }),
        fc.uint8Array({ maxLength: 8 }),
        (secret, head, tail) => {
          const cores = base64Cores(secret);
          const s = Buffer.from(secret);
          expect(cores).toEqual([0, 1, 2].map((a) => base64Core(s, a)));
          const blob = Buffer.concat([head, secret, tail]).toString('base64');
          expect(blob).toContain(cores[head.length % 3]);
        },
      ),
    );
  });

  it('replaces hex (both cases), URL-encoded and JSON-escaped forms', () => {
    const hex = Buffer.from(SECRET).toString('hex');
    const uri = encodeURIComponent(SECRET);
    const json = JSON.stringify(SECRET).slice(1, -1);
    const inputs = [
      hex,
      hex.toUpperCase(),
      uri,
      uri.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
      json,
      JSON.stringify(json).slice(1, -1), // a JSON string inside a JSON string
      json.replace(/é/g, '\\u00e9'), // ASCII-only JSON (Python's default)
      json.replace(/\//g, '\\/'),
    ];
    for (const input of inputs) {
      const out = r.redactText(`before ${input} after`);
      expect(out, input).toContain('[REDACTED:DB_PASSWORD]');
      expect(out).not.toContain(input);
    }
    expect(leaks([SECRET], r.redactText(JSON.stringify({ note: `pw=${SECRET}` })))).toEqual([]);
  });

  it('forms are distinct and none is shorter than the minimum', () => {
    const forms = secretForms('~~~???>>> "x'); // base64 with + and /; a quote to escape
    expect(new Set(forms.map((f) => f.text)).size).toBe(forms.length);
    expect(forms.every((f) => f.text.length >= MIN_SECRET_CHARS)).toBe(true);
    expect(new Set(forms.map((f) => f.kind))).toEqual(
      new Set(['plain', 'base64', 'base64url', 'hex', 'url', 'json']),
    );
  });

  it('a secret containing another is replaced whole, under its own name', () => {
    const both = new Redactor({ secrets: { SHORT: 'abcdef12', LONG: 'xxabcdef12yy' } });
    expect(both.redactText('1 xxabcdef12yy 2 abcdef12')).toBe(
      '1 [REDACTED:LONG] 2 [REDACTED:SHORT]',
    );
  });

  it('a shape never takes half a secret: secrets are replaced first', () => {
    const red = new Redactor({ secrets: { PG_PASSWORD: 'abc,def"ghi' } });
    expect(red.redactText('psql password=abc,def"ghi -h db')).toBe(
      'psql password=[REDACTED:PG_PASSWORD] -h db',
    );
    expect(red.redactText('{"password": "abc,def\\"ghi"}')).toBe(
      '{"password": "[REDACTED:PG_PASSWORD]"}',
    );
  });

  it('a replacement that joins its neighbours into the secret is redacted again', () => {
    const odd = new Redactor({ secrets: { ODD: ']]]]]]' }, patterns: false });
    const out = odd.redactText(']]]]]]]]]]]');
    expect(out).not.toContain(']]]]]]');
  });

  it('ignores values shorter than the minimum and rebuilds after addSecret', () => {
    const red = new Redactor({ patterns: false });
    expect(red.addSecret('abc', 'TINY')).toBe(false);
    expect(red.redactText('abc later-secret-1')).toBe('abc later-secret-1');
    expect(red.addSecret('later-secret-1', 'LATER')).toBe(true);
    expect(red.redactText('abc later-secret-1')).toBe('abc [REDACTED:LATER]');
    expect(red.names()).toEqual(['LATER']);
  });

  it('refuses bad names and non-string values without echoing the value', () => {
    const red = new Redactor();
    for (const call of [
      () => red.addSecret('value-123456', 'lower'),
      () => red.addSecret(123456789 as unknown as string, 'NUM'),
    ]) {
      let caught: unknown;
      try {
        call();
      } catch (error) {
        caught = error;
      }
      expect(isWardenError(caught, 'INVALID_PARAMS')).toBe(true);
      expect((caught as Error).message).not.toContain('value-123456');
      expect((caught as Error).message).not.toContain('123456789');
    }
  });
});

describe('Redactor: credential shapes', () => {
  const cases: [string, string, string][] = [
    ['bearer', 'Authorization: Bearer abc.DEF-123_xyz~+/==', 'Authorization: Bearer [REDACTED]'],
    ['basic', 'authorization: Basic dXNlcjpwYXNzd29yZA==', 'authorization: Basic [REDACTED]'],
    ['openai', 'key sk-proj-AbCdEfGhIjKlMnOpQrStUv12 end', 'key [REDACTED] end'],
    ['anthropic', 'sk-ant-api03-AbCdEfGhIjKlMnOpQrSt-uv', '[REDACTED]'],
    ['stripe', 'sk_live_AbCdEfGhIjKlMnOp12', '[REDACTED]'],
    ['github', `token ghp_${'a1B2'.repeat(9)} used`, 'token [REDACTED] used'],
    ['github fine-grained', `github_pat_${'A1_b'.repeat(15)}`, '[REDACTED]'],
    ['slack', 'xoxb-123456789012-abcdefABCDEF', '[REDACTED]'],
    ['slack user', 'xoxp-1234-5678-abcdef', '[REDACTED]'],
    ['aws', 'id=AKIAIOSFODNN7EXAMPLE,', 'id=[REDACTED],'],
    ['jwt', 'jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sIgNaTuRe_-x ok', 'jwt [REDACTED] ok'],
    [
      'pem',
      'a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK==\n-----END RSA PRIVATE KEY-----\nb',
      'a\n[REDACTED]\nb',
    ],
    [
      'pem in JSON, truncated',
      '{"k":"-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNz',
      '{"k":"[REDACTED]',
    ],
    [
      'warden token keeps its id',
      `wdn_tok_${'0'.repeat(32)}_${'A'.repeat(43)}`,
      `wdn_tok_${'0'.repeat(32)}_[REDACTED]`,
    ],
    ['url password', 'postgres://app:s3cr%40t@db:5432/x', 'postgres://app:[REDACTED]@db:5432/x'],
    [
      'query password',
      'https://h/p?user=a&password=pa55&x=1',
      'https://h/p?user=a&password=[REDACTED]&x=1',
    ],
    [
      'key=value',
      'run --api_key=abc123 PASSWORD=hunter22',
      'run --api_key=[REDACTED] PASSWORD=[REDACTED]',
    ],
    ['json key', '{"password": "p\\"w", "ok": 1}', '{"password": "[REDACTED]", "ok": 1}'],
  ];
  for (const [label, input, expected] of cases)
    it(label, () => {
      expect(new Redactor().redactText(input)).toBe(expected);
    });

  it('leaves ordinary text alone', () => {
    const text =
      'The bearer of this note, a skeptic (sk-1), asked for 12 tokens; see https://example.com/a?b=c.';
    expect(new Redactor().redactText(text)).toBe(text);
  });

  it('Redactor.none() is shared, changes nothing and refuses secrets', () => {
    const none = Redactor.none();
    expect(Redactor.none()).toBe(none);
    const value = { password: 'x-y-z-1-2-3', text: 'Bearer abcdefghijkl' };
    expect(none.redact(value)).toBe(value);
    expect(none.redactText('Bearer abcdefghijkl')).toBe('Bearer abcdefghijkl');
    expect(() => none.addSecret('abcdefgh', 'X')).toThrow(WardenError);
  });
});

describe('Redactor.redact: values of any shape', () => {
  it('redacts strings deep inside objects, arrays, Maps, Sets, Buffers and keys', () => {
    const input = {
      a: [1, true, null, { b: `x${SECRET}x` }],
      map: new Map([['k', SECRET]]),
      set: new Set([SECRET]),
      buf: Buffer.from(`raw ${SECRET}`),
      [`key-${SECRET}`]: 1,
      date: new Date(0),
    };
    const out = r.redact(input);
    const text = inspect(out, { depth: null });
    expect(text).not.toContain('hunter2');
    expect(out.a[3]).toEqual({ b: 'x[REDACTED:DB_PASSWORD]x' });
    expect(out.map.get('k')).toBe('[REDACTED:DB_PASSWORD]');
    expect(Buffer.isBuffer(out.buf)).toBe(true);
    expect(out.buf.toString()).toBe('raw [REDACTED:DB_PASSWORD]');
    expect(Object.keys(out)).toContain('key-[REDACTED:DB_PASSWORD]');
    expect(out.date).toBe(input.date);
    expect(input.a[3]).toEqual({ b: `x${SECRET}x` }); // the input is not changed
  });

  it('replaces values of sensitive keys but keeps {secret: NAME} references', () => {
    const out = new Redactor().redact({
      headers: { Authorization: 'whatever', 'X-Api-Key': 'k' },
      password: 'pw',
      api_key: 'kk',
      args: { token: { secret: 'GITHUB_TOKEN' } },
      tokens: 12,
      empty: { password: '' },
    });
    expect(out).toEqual({
      headers: { Authorization: REDACTED_TEXT, 'X-Api-Key': REDACTED_TEXT },
      password: REDACTED_TEXT,
      api_key: REDACTED_TEXT,
      args: { token: { secret: 'GITHUB_TOKEN' } },
      tokens: 12,
      empty: { password: '' },
    });
  });

  it('keeps the class, code and brand of errors while redacting message, stack, details, cause', () => {
    const cause = new Error(`inner ${SECRET}`);
    const error = new WardenError('TOOL_ERROR', `failed with ${SECRET}`, {
      details: { url: `https://u:${SECRET}@h/` },
      cause,
    });
    const out = r.redact(error);
    expect(isWardenError(out, 'TOOL_ERROR')).toBe(true);
    expect(out).toBeInstanceOf(WardenError);
    expect(out.message).toBe('failed with [REDACTED:DB_PASSWORD]');
    expect(out.stack).not.toContain('hunter2');
    expect(JSON.stringify(out)).not.toContain('hunter2');
    expect(inspect(out, { depth: null })).not.toContain('hunter2');
    expect((out.cause as Error).message).toBe('inner [REDACTED:DB_PASSWORD]');
  });

  it('keeps cycles as cycles and stops at the depth bound', () => {
    const a: Record<string, unknown> = { s: SECRET };
    a.self = a;
    a.list = [a];
    const out = r.redact(a);
    expect(out.self).toBe(out);
    expect((out.list as unknown[])[0]).toBe(out);
    expect(out.s).toBe('[REDACTED:DB_PASSWORD]');

    let deep: Record<string, unknown> = { s: SECRET };
    for (let i = 0; i < MAX_REDACT_DEPTH + 5; i++) deep = { d: deep };
    const text = JSON.stringify(r.redact(deep));
    expect(text).toContain(TOO_DEEP);
    expect(text).not.toContain('hunter2');
  });

  it('goes through toJSON of class instances', () => {
    class Holder {
      toJSON() {
        return { inner: SECRET };
      }
    }
    expect(r.redact({ h: new Holder() })).toEqual({ h: { inner: '[REDACTED:DB_PASSWORD]' } });
  });

  it('prints only names', () => {
    expect(JSON.stringify(r)).toBe('{"secrets":["DB_PASSWORD"]}');
    expect(inspect(r)).not.toContain('hunter2');
  });
});

describe('Redactor: size and adversarial input', () => {
  it('redacts a large input against many secrets in one pass', () => {
    const secrets = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`S${i}`, `secret-value-${i}-${'q'.repeat(i % 7)}`]),
    );
    const red = new Redactor({ secrets });
    const filler = Buffer.alloc(600_000, 'abcXYZ019+/').toString('base64');
    const text = `${filler}${secrets.S42}${filler}${Buffer.from(secrets.S7!).toString('hex')}`;
    const out = red.redactText(text);
    expect(out).toContain('[REDACTED:S42]');
    expect(out).toContain('[REDACTED:S7]');
    expect(out.length).toBeGreaterThan(1_600_000);
  });

  it('completes on inputs built to make patterns backtrack', () => {
    const red = new Redactor();
    const inputs = [
      'sk-'.repeat(100_000),
      'eyJ'.repeat(100_000),
      `${'eyJabcd.'.repeat(50_000)}`,
      '-----BEGIN PRIVATE KEY-----'.repeat(20_000),
      'a://'.repeat(100_000),
      `${' '.repeat(300_000)}Bearer`,
      'Bearer '.repeat(100_000),
      'password='.repeat(100_000),
      `"password": "${'\\'.repeat(200_001)}`,
      'AKIA'.repeat(100_000),
      `x://${'u'.repeat(300_000)}:`,
    ];
    for (const input of inputs) expect(typeof red.redactText(input)).toBe('string');
  });
});

describe('Redactor: property', () => {
  const secretArb = fc.string({ minLength: MIN_SECRET_CHARS, maxLength: 40, unit: 'grapheme' });
  const textArb = fc.string({ maxLength: 60, unit: 'grapheme' });

  it('the output never contains the secret, however it is surrounded', () => {
    fc.assert(
      fc.property(secretArb, fc.array(textArb, { minLength: 1, maxLength: 5 }), (secret, parts) => {
        const red = new Redactor({ secrets: { S: secret } });
        const out = red.redactText(parts.join(secret));
        expect(out.includes(secret)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('holds for secrets made of the replacement text’s own characters', () => {
    // A small alphabet sharing the replacement's brackets, and text made of the secret's own
    // prefixes and suffixes, so a replacement joins its neighbours into the secret often.
    const chars = fc.constantFrom('[', ']', 'S', 'x');
    const arb = (min: number) => fc.string({ unit: chars, minLength: min, maxLength: 12 });
    const case_ = arb(MIN_SECRET_CHARS).chain((secret) =>
      fc.tuple(
        fc.constant(secret),
        fc.array(
          fc.oneof(
            arb(0),
            fc.nat({ max: secret.length }).map((k) => secret.slice(k)),
            fc.nat({ max: secret.length }).map((k) => secret.slice(0, k)),
          ),
          { minLength: 1, maxLength: 6 },
        ),
      ),
    );
    fc.assert(
      fc.property(case_, ([secret, parts]) => {
        const out = new Redactor({ secrets: { S: secret } }).redactText(parts.join(secret));
        expect(out.includes(secret)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('no encoded form survives in text around a base64, hex or JSON copy', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: MIN_SECRET_CHARS, maxLength: 30, unit: 'grapheme-ascii' }),
        fc.string({ maxLength: 10, unit: 'grapheme-ascii' }),
        fc.constantFrom('base64', 'base64url', 'hex', 'json', 'url'),
        (secret, around, how) => {
          const blob = `${around}${secret}${around}`;
          const encoded =
            how === 'json'
              ? JSON.stringify(blob)
              : how === 'url'
                ? encodeURIComponent(blob)
                : Buffer.from(blob).toString(how);
          const out = new Redactor({ secrets: { S: secret }, patterns: false }).redactText(encoded);
          expect(leaks([secret], out)).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });
});
