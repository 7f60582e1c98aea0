/**
 * Differential test: `warden plan` against an independent Python planner written from the
 * contract (test/helpers/noa-planner-reference.py: Python's own `re`, `splitlines`, `strip`,
 * `os.path.relpath`, `json.dumps`). Hundreds of random documents from the grammar
 * (test/helpers/sot-grammar.ts), some with edge characters sprinkled anywhere, plus every golden
 * fixture; the two plans must be byte-identical once `generated_at` is set aside.
 *
 * The seed is random per run and printed on failure; PLAN_DIFF_SEED=<n> replays it, and
 * PLAN_DIFF_RUNS=<n> scales the number of documents (default 450 plus the fixtures).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { writePlan } from '../../src/plans/planner-command.ts';
import { mutatedDoc, sotDoc, tokenSoup } from '../helpers/sot-grammar.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';

const REFERENCE = fileURLToPath(new URL('../helpers/noa-planner-reference.py', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/plans/', import.meta.url));
const FIXED_AT = '1999-12-31T23:59:59.999999Z';
const GENERATED_AT_LINE = /^ {2}"generated_at": "(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)",$/m;

afterAll(removeTempDirs);

function python3Version(): string | null {
  const r = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || r.stderr.trim() : null;
}

/** Runs the reference planner on `files` (absolute paths) from `cwd`; one plan per file. */
function referencePlans(files: readonly string[], cwd: string): Buffer[] {
  const r = spawnSync('python3', [REFERENCE, '--generated-at', FIXED_AT, ...files], {
    cwd,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0)
    throw new Error(`reference planner failed (exit ${r.status}):\n${r.stderr.toString()}`);
  const out = r.stdout;
  const plans: Buffer[] = [];
  let from = 0;
  for (let i = out.indexOf(0); i >= 0; i = out.indexOf(0, from)) {
    plans.push(out.subarray(from, i));
    from = i + 1;
  }
  return plans;
}

/** Warden's plan file with its real timestamp checked and replaced by the reference's. */
function wardenPlan(sot: string, out: string, cwd: string): Buffer {
  writePlan(sot, out, cwd);
  const text = readFileSync(out, 'utf8');
  expect(text).toMatch(GENERATED_AT_LINE);
  return Buffer.from(text.replace(GENERATED_AT_LINE, `  "generated_at": "${FIXED_AT}",`), 'utf8');
}

describe('warden plan against the Python reference planner', () => {
  it('python3 is installed (the differential test needs it)', () => {
    expect(
      python3Version(),
      'python3 was not found on PATH: the differential test of warden plan runs the Python reference planner; install Python 3',
    ).not.toBeNull();
  });

  it('plans hundreds of random documents byte for byte like Python', () => {
    if (python3Version() === null)
      throw new Error('python3 was not found on PATH: cannot run the differential test');
    const seed = Number(process.env.PLAN_DIFF_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const fixtures = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.sot.md'))
      .map((f) => readFileSync(join(FIXTURES, f), 'utf8'));
    const runs = Number(process.env.PLAN_DIFF_RUNS ?? 450);
    const docs = [
      ...fc.sample(mutatedDoc, { numRuns: Math.ceil(runs * 0.55), seed }),
      ...fc.sample(
        sotDoc.map((d) => d.text),
        { numRuns: Math.ceil(runs * 0.225), seed: seed + 1 },
      ),
      ...fc.sample(tokenSoup, { numRuns: Math.ceil(runs * 0.225), seed: seed + 2 }),
      ...fixtures,
    ];
    const dir = realpathSync(tempDir('warden-plan-diff-'));
    mkdirSync(join(dir, 'docs'));
    const files = docs.map((text, i) => {
      const file = join(dir, 'docs', `doc-${i}.sot.md`);
      writeFileSync(file, text);
      return file;
    });
    const theirs = referencePlans(files, dir);
    expect(theirs).toHaveLength(docs.length);
    const mismatches: { text: string; ours: string; theirs: string }[] = [];
    files.forEach((file, i) => {
      const ours = wardenPlan(file, join(dir, 'out', `doc-${i}.plan.json`), dir);
      if (!ours.equals(theirs[i]!))
        mismatches.push({
          text: docs[i]!,
          ours: ours.toString('utf8'),
          theirs: theirs[i]!.toString('utf8'),
        });
    });
    mismatches.sort((a, b) => a.text.length - b.text.length);
    const first = mismatches[0];
    expect(
      mismatches.length,
      first &&
        `seed ${seed} (replay with PLAN_DIFF_SEED=${seed}): ${mismatches.length} of ${docs.length} documents differ; the shortest:\n` +
          `document: ${JSON.stringify(first.text)}\nwarden:\n${first.ours}\npython:\n${first.theirs}`,
    ).toBe(0);
  });
});
