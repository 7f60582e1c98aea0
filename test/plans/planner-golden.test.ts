/**
 * `warden plan` golden files: test/fixtures/plans/<name>.sot.md must plan to exactly the bytes
 * of <name>.plan.json, whose `generated_at` is the placeholder "<generated_at>". The expected
 * plans were derived by hand from reference/noa-kit-and-kgents.md A.3/A.4 (one fixture per rule
 * or edge), not produced by the code under test. Then what the fixtures cannot show: `source`
 * relative to the working directory, the output file (parents, no final newline, raw UTF-8,
 * timestamp), failures, warnings, and the CLI's lines and exit codes in a child process.
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseSot } from '../../src/core/plan/index.ts';
import { KitError } from '../../src/plans/kit-error.ts';
import { writePlan } from '../../src/plans/planner-command.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/plans/', import.meta.url));
const WARDEN = fileURLToPath(new URL('../../src/cli/warden.ts', import.meta.url));
const PLACEHOLDER = '<generated_at>';
const GENERATED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const GENERATED_AT_LINE = /^ {2}"generated_at": "([^"]*)",$/m;
const SECTION_G = '### G. Execution Queue & Task Hooks';

afterAll(removeTempDirs);

/** The plan text with its timestamp checked (format, and that it is now) and replaced. */
function normalise(text: string, before = Date.now() - 1000, after = Date.now() + 1000): string {
  const at = GENERATED_AT_LINE.exec(text)?.[1];
  expect(at, 'the plan has no "generated_at" line').toBeDefined();
  expect(at).toMatch(GENERATED_AT);
  const ms = Date.parse(at!);
  expect(ms).toBeGreaterThanOrEqual(before - 1);
  expect(ms).toBeLessThanOrEqual(after);
  return text.replace(GENERATED_AT_LINE, `  "generated_at": "${PLACEHOLDER}",`);
}

function dir(): string {
  return realpathSync(tempDir('warden-plan-golden-'));
}

const fixtureNames = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.sot.md'))
  .map((f) => f.slice(0, -'.sot.md'.length))
  .sort();

describe('golden fixtures', () => {
  it('has a fixture for every rule and edge of the contract', () => {
    const required = [
      'reference-example',
      'start-trailing-text',
      'start-indented',
      'start-first-only',
      'stop-h2',
      'stop-h2-bare',
      'stop-h3',
      'stop-h3-bare',
      'stop-h3-g-without-dot',
      'stop-h3-lowercase-g',
      'non-stops',
      'header-normalisation',
      'non-headers',
      'merge-trap-before-first-header',
      'ignored-task-syntax',
      'layers',
      'duplicates',
      'crlf',
      'cr-only',
      'mixed-line-ends',
      'unicode-line-breaks',
      'line-break-splits-header',
      'bom-first-line',
      'bom-then-section',
      'unicode-titles',
      'python-whitespace',
      'js-only-whitespace',
      'unicode-digits',
      'empty-section-g',
      'section-g-last-line',
      'no-section-g',
      'empty-file',
      'queue-without-tasks',
      'no-trailing-newline',
      'tabs',
    ];
    expect(fixtureNames).toEqual(expect.arrayContaining(required));
    for (const name of fixtureNames)
      expect(existsSync(join(FIXTURES, `${name}.plan.json`)), `${name}.plan.json`).toBe(true);
  });

  it.each(fixtureNames)('%s plans to the expected bytes', (name) => {
    const out = join(dir(), `${name}.plan.json`);
    const before = Date.now();
    const outcome = writePlan(join(FIXTURES, `${name}.sot.md`), out, FIXTURES);
    const written = readFileSync(out, 'utf8');
    const expected = readFileSync(join(FIXTURES, `${name}.plan.json`), 'utf8');
    expect(normalise(written, before, Date.now())).toBe(expected);
    expect(JSON.parse(written)).toEqual(outcome.plan);
  });
});

describe('the rules, spelled out on the fixtures', () => {
  const plan = (name: string) =>
    parseSot(readFileSync(join(FIXTURES, `${name}.sot.md`), 'utf8')).queues;

  it('the reference example drops TASK-901, TASK-003, TASK-7 and task-043 and merges Queue C into B', () => {
    const queues = plan('reference-example');
    expect(queues.map((q) => q.name)).toEqual([
      'Queue A \u2014 Workspace Bootstrapping',
      'Queue B \u2014 Services & Monitoring',
    ]);
    const ids = queues.flatMap((q) => q.tasks.map((t) => t.id));
    for (const dropped of ['TASK-900', 'TASK-901', 'TASK-003', 'TASK-7', 'TASK-050'])
      expect(ids).not.toContain(dropped);
    expect(queues[1]!.tasks.slice(-2).map((t) => t.id)).toEqual(['TASK-030', 'TASK-041']);
  });

  it('a BOM directly before the heading on line 1 keeps the section from starting (Python keeps U+FEFF)', () => {
    const bytes = readFileSync(join(FIXTURES, 'bom-first-line.sot.md'));
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(plan('bom-first-line')).toEqual([]);
    // Without the BOM the same document has a queue: the BOM alone makes the difference.
    const text = bytes.subarray(3).toString('utf8');
    expect(parseSot(text).queues.map((q) => q.name)).toEqual(['Queue A \u2014 Never started']);
  });

  it('a CR alone is a line break (otherwise the whole document is the heading line)', () => {
    expect(plan('cr-only').map((q) => q.tasks.map((t) => t.id))).toEqual([['TASK-001']]);
    expect(
      parseSot(`${SECTION_G}\r1. **Queue A \u2014 X**\r- Tasks: \`TASK-001\``).queues,
    ).toHaveLength(1);
  });

  it.each([
    ['\\v', '\v'],
    ['\\f', '\f'],
    ['\\x1c', '\u001c'],
    ['\\x1d', '\u001d'],
    ['\\x1e', '\u001e'],
    ['\\x85', '\u0085'],
    ['\\u2028', '\u2028'],
    ['\\u2029', '\u2029'],
    ['\\r', '\r'],
    ['\\r\\n', '\r\n'],
  ])('%s breaks a line', (_label, br) => {
    const text = [
      SECTION_G,
      '1. **Queue A \u2014 X**',
      '- Tasks: `TASK-001`',
      '## End',
      '- Tasks: `TASK-002`',
    ].join(br);
    expect(parseSot(text).queues).toEqual([
      {
        name: 'Queue A \u2014 X',
        tasks: [{ id: 'TASK-001', title: 'TASK-001', layer: 'foundation' }],
      },
    ]);
  });

  it('\\x1f is whitespace but not a line break', () => {
    const text = `${SECTION_G}\n1. **Queue A \u2014 X\u001fY**\u001f\n\u001f- Tasks: \`TASK-001\`\u001f`;
    expect(parseSot(text).queues).toEqual([
      {
        name: 'Queue A \u2014 X\u001fY',
        tasks: [{ id: 'TASK-001', title: 'TASK-001', layer: 'foundation' }],
      },
    ]);
  });
});

describe('writePlan: the output file', () => {
  it('keeps non-ASCII raw (the em dash is E2 80 94), ends without a newline, and stamps six fractional digits', () => {
    const d = dir();
    const out = join(d, 'plan.json');
    writePlan(join(FIXTURES, 'reference-example.sot.md'), out, FIXTURES);
    const bytes = readFileSync(out);
    expect(
      bytes.includes(
        Buffer.from([0x51, 0x75, 0x65, 0x75, 0x65, 0x20, 0x41, 0x20, 0xe2, 0x80, 0x94, 0x20]),
      ),
    ).toBe(true);
    expect(bytes.toString('latin1')).not.toContain('\\u2014');
    expect(bytes.at(-1)).toBe('}'.charCodeAt(0));
    expect(bytes.at(-2)).toBe('\n'.charCodeAt(0));
    const at = (JSON.parse(bytes.toString('utf8')) as { generated_at: string }).generated_at;
    expect(at).toMatch(GENERATED_AT);
    expect(Math.abs(Date.parse(at) - Date.now())).toBeLessThan(5000);
    // Emoji and CJK stay raw too; only JSON's own escapes appear.
    writePlan(join(FIXTURES, 'unicode-titles.sot.md'), out, FIXTURES);
    const titles = readFileSync(out, 'utf8');
    expect(titles).toContain('Queue A \u2014 \u5b9f\u884c\u30ad\u30e5\u30fc\uff1a\u57fa\u76e4');
    expect(titles).toContain('\u{1f680} Launch \u{1f9ea}');
    expect(titles).toContain('\\"quoted\\" \\\\ backslash / slash');
    expect(titles).not.toMatch(/\\u[0-9a-f]{4}/i);
  });

  it('two plans of the same document differ only in generated_at', () => {
    const d = dir();
    writePlan(join(FIXTURES, 'layers.sot.md'), join(d, 'a.json'), FIXTURES);
    writePlan(join(FIXTURES, 'layers.sot.md'), join(d, 'b.json'), FIXTURES);
    expect(normalise(readFileSync(join(d, 'a.json'), 'utf8'))).toBe(
      normalise(readFileSync(join(d, 'b.json'), 'utf8')),
    );
  });

  it('creates missing parent directories', () => {
    const d = dir();
    const out = join(d, 'state', 'deep', 'er', 'plan.json');
    const outcome = writePlan(join(FIXTURES, 'layers.sot.md'), out, FIXTURES);
    expect(outcome.out).toBe(out);
    expect(statSync(out).isFile()).toBe(true);
    expect(readdirSync(join(d, 'state', 'deep', 'er'))).toEqual(['plan.json']);
  });

  it('overwrites an existing plan', () => {
    const d = dir();
    const out = join(d, 'plan.json');
    writeFileSync(out, 'old content that is longer than nothing at all');
    writePlan(join(FIXTURES, 'empty-file.sot.md'), out, FIXTURES);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ version: 1, queues: [] });
  });

  it('source is os.path.relpath(sot) against the working directory', () => {
    const d = dir();
    mkdirSync(join(d, 'docs', 'sot'), { recursive: true });
    mkdirSync(join(d, 'work'));
    const sot = join(d, 'docs', 'sot', 'sot.md');
    writeFileSync(sot, `${SECTION_G}\n`);
    const source = (file: string, cwd: string) =>
      writePlan(file, join(d, 'out', 'plan.json'), cwd).plan.source;
    expect(source(sot, d)).toBe('docs/sot/sot.md');
    expect(source(sot, join(d, 'docs', 'sot'))).toBe('sot.md');
    expect(source(join(d, 'docs', 'sot', '.', 'sot.md'), join(d, 'docs', 'sot'))).toBe('sot.md');
    expect(source(join(d, 'docs', 'x', '..', 'sot', 'sot.md'), d)).toBe('docs/sot/sot.md');
    expect(source(sot, join(d, 'work'))).toBe('../docs/sot/sot.md');
    const written = JSON.parse(readFileSync(join(d, 'out', 'plan.json'), 'utf8')) as {
      source: string;
    };
    expect(written.source).toBe('../docs/sot/sot.md');
  });

  it('a missing or non-file sot is KitError "sot file not found" (exit 1), and nothing is written', () => {
    const d = dir();
    for (const sot of [join(d, 'missing.md'), d]) {
      let caught: unknown;
      try {
        writePlan(sot, join(d, 'out', 'plan.json'), d);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(KitError);
      expect((caught as KitError).exitCode).toBe(1);
      expect((caught as KitError).message).toBe(`sot file not found: ${sot}`);
    }
    expect(existsSync(join(d, 'out'))).toBe(false);
  });

  it('invalid UTF-8 is KitError (exit 1), and nothing is written', () => {
    const d = dir();
    const cases = {
      'lone-continuation.md': Buffer.from([0x23, 0x20, 0x80, 0x0a]),
      'truncated.md': Buffer.concat([Buffer.from(`${SECTION_G}\n`), Buffer.from([0xe2, 0x80])]),
      'surrogate.md': Buffer.from([0xed, 0xa0, 0x80]),
      'overlong.md': Buffer.from([0xc0, 0xaf]),
      latin1: Buffer.from(`${SECTION_G}\n1. **Queue A \u2014 Caf\u00e9**\n`, 'latin1'),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      writeFileSync(join(d, name), bytes);
      const out = join(d, 'out', `${name}.json`);
      expect(() => writePlan(join(d, name), out, d), name).toThrow(KitError);
      expect(() => writePlan(join(d, name), out, d), name).toThrow(/not valid UTF-8/);
      expect(existsSync(out), name).toBe(false);
    }
  });
});

describe('writePlan: failures and paths', () => {
  it('a failed write leaves no temporary file behind', () => {
    const d = realpathSync(tempDir());
    mkdirSync(join(d, 'existing'));
    writeFileSync(join(d, 'existing', 'x'), '');
    writeFileSync(join(d, 'sot.md'), '### G. Execution Queue & Task Hooks\n');
    expect(() => writePlan(join(d, 'sot.md'), join(d, 'existing'), d)).toThrow(KitError);
    expect(readdirSync(d).sort()).toEqual(['existing', 'sot.md']);
  });

  it('resolves relative sot and out against the cwd argument', () => {
    const d = realpathSync(tempDir());
    writeFileSync(join(d, 'sot.md'), '### G. Execution Queue & Task Hooks\n');
    expect(writePlan('sot.md', 'state/plan.json', d).plan.source).toBe('sot.md');
    expect(readdirSync(join(d, 'state'))).toEqual(['plan.json']);
  });
});

describe('warnings', () => {
  const doc = [
    '## F. Outside',
    '1. **Queue Z - not warned outside section G**',
    SECTION_G,
    '- Tasks: `TASK-901`',
    '- Tasks: no ids',
    '1. **Queue A - hyphen before any queue**',
    '- Tasks: `TASK-902`',
    '1. **Queue B \u2014 Real**',
    '- Tasks: `TASK-001`, `TASK-001`',
    '2. **Queue C \u2013 en dash**',
    '- Tasks: `TASK-002`, `TASK-001`',
    '### H. Next',
    '3. **Queue D - not warned after the section**',
    '- Tasks: `TASK-002`',
  ];

  it('names the merge trap, Tasks lines before the first header, and duplicate ids, by line', () => {
    const { queues, warnings } = parseSot(doc.join('\n'));
    expect(queues.map((q) => [q.name, q.tasks.map((t) => t.id)])).toEqual([
      ['Queue B \u2014 Real', ['TASK-001', 'TASK-001', 'TASK-002', 'TASK-001']],
    ]);
    expect(warnings.map((w) => w.line)).toEqual([4, 6, 7, 9, 10]);
    const at = (line: number) => warnings.find((w) => w.line === line)!.message;
    expect(at(4)).toContain('TASK-901');
    expect(at(6)).toMatch(/not a queue header.*dropped/);
    expect(at(7)).toContain('TASK-902');
    expect(at(9)).toContain('TASK-001');
    expect(at(10)).toMatch(/not a queue header.*Queue B \u2014 Real/);
  });

  it('counts lines the way the document is split, whatever the line breaks', () => {
    const lf = parseSot(doc.join('\n')).warnings;
    expect(parseSot(doc.join('\r\n')).warnings).toEqual(lf);
    expect(parseSot(doc.join('\r')).warnings).toEqual(lf);
    expect(parseSot(`${doc.join('\u2028')}\u2028`).warnings).toEqual(lf);
  });

  it('a clean document has none', () => {
    expect(
      parseSot(readFileSync(join(FIXTURES, 'header-normalisation.sot.md'), 'utf8')).warnings,
    ).toEqual([]);
  });
});

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node src/cli/warden.ts plan …` in `cwd`, with its own WARDEN_HOME. */
function cli(args: readonly string[], cwd: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WARDEN, 'plan', ...args], {
      cwd,
      env: { ...process.env, WARDEN_HOME: join(cwd, '.warden-home'), NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the CLI (child process)', () => {
  let root: string;
  const runs: Record<string, CliRun> = {};

  beforeAll(async () => {
    root = dir();
    const at = (name: string) => {
      mkdirSync(join(root, name));
      return join(root, name);
    };
    const ok = at('ok');
    writeFileSync(join(ok, 'sot.md'), readFileSync(join(FIXTURES, 'reference-example.sot.md')));
    const bare = at('bare');
    writeFileSync(join(bare, 'sot.md'), readFileSync(join(FIXTURES, 'reference-example.sot.md')));
    const missing = at('missing');
    const badUtf8 = at('bad-utf8');
    writeFileSync(join(badUtf8, 'sot.md'), Buffer.from([0x23, 0xff, 0x0a]));
    const warn = at('warn');
    writeFileSync(
      join(warn, 'sot.md'),
      `${SECTION_G}\n- Tasks: \`TASK-901\`\n1. **Queue A \u2014 X**\n- Tasks: \`TASK-001\`\n2. **Queue B - hyphen**\n- Tasks: \`TASK-001\`\n`,
    );
    const usage = at('usage');
    const entries = await Promise.all([
      cli(['--sot', './sot.md', '--out', 'state/plan.json'], ok).then((r) => ['ok', r] as const),
      cli(['--sot=sot.md', '--out=plan.json'], bare).then((r) => ['bare', r] as const),
      cli(['--sot', 'nope.md', '--out', 'state/plan.json'], missing).then(
        (r) => ['missing', r] as const,
      ),
      cli(['--sot', 'sot.md', '--out', 'state/plan.json'], badUtf8).then(
        (r) => ['bad-utf8', r] as const,
      ),
      cli(['--sot', 'sot.md', '--out', 'plan.json'], warn).then((r) => ['warn', r] as const),
      cli(['--sot', 'sot.md'], usage).then((r) => ['usage', r] as const),
    ]);
    for (const [name, r] of entries) runs[name] = r;
  }, 60_000);

  it('prints "[ok] plan written: <out>", exits 0, creates the parent, and source drops "./"', () => {
    const r = runs.ok!;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('[ok] plan written: state/plan.json\n');
    // The reference example's three oddities: TASK-901 before any header (line 6), TASK-001
    // twice (line 10), Queue C's hyphen (line 13). The document is named as given.
    expect(
      r.stderr
        .trimEnd()
        .split('\n')
        .map((l) => /^\[warn\] \.\/sot\.md:(\d+): /.exec(l)?.[1]),
    ).toEqual(['6', '10', '13']);
    const written = readFileSync(join(root, 'ok', 'state', 'plan.json'), 'utf8');
    const expected = readFileSync(join(FIXTURES, 'reference-example.plan.json'), 'utf8').replace(
      '"source": "reference-example.sot.md"',
      '"source": "sot.md"',
    );
    expect(normalise(written, Date.now() - 60_000)).toBe(expected);
  });

  it('--out with no directory part writes into the working directory (the kit crashes there)', () => {
    const r = runs.bare!;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('[ok] plan written: plan.json\n');
    expect(readdirSync(join(root, 'bare')).sort()).toEqual(['plan.json', 'sot.md']);
  });

  it('a missing sot: "[error] sot file not found: <sot>" on stderr, exit 1, nothing written', () => {
    const r = runs.missing!;
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('[error] sot file not found: nope.md\n');
    expect(existsSync(join(root, 'missing', 'state'))).toBe(false);
  });

  it('invalid UTF-8: one [error] line, exit 1, nothing written', () => {
    const r = runs['bad-utf8']!;
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^\[error\] .*sot\.md.*not valid UTF-8.*\n$/);
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(existsSync(join(root, 'bad-utf8', 'state', 'plan.json'))).toBe(false);
  });

  it('warns on stderr (merge trap, Tasks before a header, duplicates) and still writes the plan', () => {
    const r = runs.warn!;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('[ok] plan written: plan.json\n');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^\[warn\] sot\.md:2: .*TASK-901/);
    expect(lines[1]).toMatch(/^\[warn\] sot\.md:5: not a queue header/);
    expect(lines[2]).toMatch(/^\[warn\] sot\.md:6: TASK-001 /);
    const plan = JSON.parse(readFileSync(join(root, 'warn', 'plan.json'), 'utf8')) as {
      queues: { name: string; tasks: { id: string }[] }[];
    };
    expect(plan.queues.map((q) => [q.name, q.tasks.map((t) => t.id)])).toEqual([
      ['Queue A \u2014 X', ['TASK-001', 'TASK-001']],
    ]);
  });

  it('without --out it is a usage error (exit 2)', () => {
    const r = runs.usage!;
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^\[error\] .*--out/);
  });
});
