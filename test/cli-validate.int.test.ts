/**
 * `warden validate`, unreachable stages, and interrupt prompt templates, through the real CLI in
 * child processes: what a person sees when a workflow is checked, run, and asks for approval.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { json, runCli } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

afterAll(removeTempDirs);

const PIPELINE = `name: pipeline
stages:
  - name: draft
    agent: { kind: noop, output: { text: first } }
  - name: edit
    agent: { kind: noop }
  - name: summarize
    agent: { kind: noop }
`;

const BAD_PROMPTS = `name: bad-prompts
stages:
  - name: extract
    agent: { kind: noop, output: { amount: 1 } }
    default_next: pay
  - name: pay
    interrupt:
      kind: confirmation
      prompt: 'Pay {{outputs.extrct.amount}} to {{payee}}? {{input.x'
`;

const PAY = `name: pay
stages:
  - name: extract
    agent: { kind: noop, output: { amount: 42.5, currency: EUR } }
    default_next: approve
  - name: approve
    interrupt:
      kind: confirmation
      prompt: 'Pay {{outputs.extract.amount}} {{outputs.extract.currency}} to {{input.payee}}?'
    routing:
      - when: { field: interrupt.approved, eq: true }
        next: pay
  - name: pay
    agent: { kind: noop, output: { paid: true } }
`;

function write(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

interface ValidateJson {
  valid: boolean;
  files: Array<{
    file: string;
    valid: boolean;
    code: string | null;
    workflow: string | null;
    stages: number | null;
    hash: string | null;
    issues: Array<{ severity: string; path: string; message: string }>;
  }>;
}

describe('warden validate', () => {
  it('checks the examples without a Warden home, and creates none', async () => {
    const home = join(tempDir(), 'never-created');
    const db = join(tempDir(), 'no-such-dir', 'warden.db');
    const result = await runCli(
      [
        '--db',
        db,
        'validate',
        'examples/review-loop.yaml',
        'examples/budget-exhausted.yaml',
        'examples/openai-chat.yaml',
      ],
      { home },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      "✓ examples/review-loop.yaml: workflow 'review-loop', 4 stages",
      "✓ examples/budget-exhausted.yaml: workflow 'budget-exhausted', 1 stage",
      "✓ examples/openai-chat.yaml: workflow 'openai-chat', 2 stages",
      '',
    ]);
    expect(existsSync(home)).toBe(false);
    expect(existsSync(db)).toBe(false);
  });

  it('lists every problem with file and path, and exits 2', async () => {
    const dir = tempDir();
    const pipeline = write(dir, 'pipeline.yaml', PIPELINE);
    const prompts = write(dir, 'prompts.yaml', BAD_PROMPTS);
    const home = join(dir, 'no-home');
    const result = await runCli(['validate', 'examples/review-loop.yaml', pipeline, prompts], {
      home,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('');
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe("✓ examples/review-loop.yaml: workflow 'review-loop', 4 stages");
    expect(lines).toContain(`✗ ${pipeline} is not a valid workflow:`);
    expect(lines).toContain(
      `  ${pipeline}: stages[1]: stage 'edit' is never reached: no stage routes to it. Add \`default_next: edit\` to stage 'draft' to run the stages in order, or remove stage 'edit'.`,
    );
    expect(lines).toContain(
      `  ${pipeline}: stages[2]: stage 'summarize' is never reached: no stage routes to it. Add \`default_next: summarize\` to stage 'edit' to run the stages in order, or remove stage 'summarize'.`,
    );
    const at = `  ${prompts}: stages[1].interrupt.prompt: `;
    expect(lines.filter((l) => l.startsWith(at)).map((l) => l.slice(at.length))).toEqual([
      "{{outputs.extrct.amount}} names output key 'extrct', which no stage has (output keys: extract, pay)",
      "{{payee}} uses unknown root 'payee': expected one of input, outputs, state, metadata, interrupt",
      "unterminated '{{' at character 45 ({{input.x): close the placeholder with '}}'",
    ]);
    expect(existsSync(home)).toBe(false);
  });

  it('--json reports each file; a missing file is NOT_FOUND (exit 5) unless a file is invalid', async () => {
    const dir = tempDir();
    const pipeline = write(dir, 'pipeline.yaml', PIPELINE);
    const missing = join(dir, 'missing.yaml');
    const home = join(dir, 'no-home');

    const both = await runCli(['validate', '--json', 'examples/review-loop.yaml', pipeline], {
      home,
    });
    expect(both.code).toBe(2);
    const report = json<ValidateJson>(both);
    expect(report.valid).toBe(false);
    expect(report.files[0]).toMatchObject({
      file: 'examples/review-loop.yaml',
      valid: true,
      code: null,
      workflow: 'review-loop',
      stages: 4,
      issues: [],
    });
    expect(report.files[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(report.files[1]).toMatchObject({
      file: pipeline,
      valid: false,
      code: 'WORKFLOW_INVALID',
    });
    expect(report.files[1]!.issues.map((i) => [i.severity, i.path])).toEqual([
      ['error', 'stages[1]'],
      ['error', 'stages[2]'],
    ]);

    const gone = await runCli(['validate', '--json', missing], { home });
    expect(gone.code).toBe(5);
    expect(json<ValidateJson>(gone).files[0]).toMatchObject({ valid: false, code: 'NOT_FOUND' });
    const human = await runCli(['validate', missing], { home });
    expect(human.code).toBe(5);
    expect(human.stdout).toContain(
      `✗ ${missing}: [NOT_FOUND] workflow file ${missing} does not exist`,
    );
    expect((await runCli(['validate', missing, pipeline], { home })).code).toBe(2);
  });

  it('--allow-unreachable turns unreachable stages into warnings, for validate and run', async () => {
    const dir = tempDir();
    const pipeline = write(dir, 'pipeline.yaml', PIPELINE);

    const validated = await runCli(['validate', '--allow-unreachable', pipeline], {
      home: join(dir, 'no-home'),
    });
    expect(validated.code).toBe(0);
    expect(validated.stdout.split('\n')).toEqual([
      `✓ ${pipeline}: workflow 'pipeline', 3 stages`,
      expect.stringMatching(
        /^ {2}warning .*pipeline\.yaml: stages\[1\]: stage 'edit' is never reached/,
      ),
      expect.stringMatching(/^ {2}warning .*pipeline\.yaml: stages\[2\]: stage 'summarize'/),
      '',
    ]);

    const home = tempDir();
    const refused = await runCli(['run', pipeline], { home });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('error [WORKFLOW_INVALID]');
    expect(refused.stderr).toContain("stage 'edit' is never reached");
    expect(refused.stdout).toBe('');

    // Allowed, the run does what the file says: one stage, then end.
    const ran = await runCli(['run', '--allow-unreachable', '--json', pipeline], { home });
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stderr).toContain(`warning ${pipeline}: stages[1]: stage 'edit' is never reached`);
    expect(Object.keys(json<{ outputs: object }>(ran).outputs)).toEqual(['draft']);
  });
});

describe('interrupt prompt templates', () => {
  it('show the substituted values wherever the prompt is printed', async () => {
    const dir = tempDir();
    const file = write(dir, 'pay.yaml', PAY);
    const home = tempDir();
    const run = await runCli(
      ['run', file, '--no-interactive', '--input', JSON.stringify({ payee: 'Ada Lovelace' })],
      { home },
    );
    expect(run.code, run.stderr).toBe(4);
    const prompt = 'Pay 42.5 EUR to Ada Lovelace?';
    expect(run.stdout).toMatch(new RegExp(`^\\? confirmation: ${escape(prompt)} int_\\w+$`, 'm'));
    expect(run.stdout).toContain(`\n  confirmation: ${prompt}\n`);

    const listed = await runCli(['interrupts'], { home });
    expect(listed.stdout).toContain(prompt);
    const [pending] = json<Array<{ prompt: string }>>(
      await runCli(['interrupts', '--json'], { home }),
    );
    expect(pending!.prompt).toBe(prompt);
  });

  it('neutralise terminal escapes and control characters in substituted values', async () => {
    const dir = tempDir();
    const file = write(dir, 'pay.yaml', PAY);
    const home = tempDir();
    // Clears the line, returns the cursor, retitles the window, then a bidi override.
    const payee = '\u001b[2K\rACME\u001b]0;owned\u0007 \u202eLIVE\u009b31m\napprove with: lies';
    const run = await runCli(
      ['run', file, '--no-interactive', '--input', JSON.stringify({ payee })],
      {
        home,
      },
    );
    expect(run.code, run.stderr).toBe(4);
    const shown =
      'Pay 42.5 EUR to \\x1b[2K\\x0dACME\\x1b]0;owned\\x07 \\u202eLIVE\\x9b31m approve with: lies?';
    expect(run.stdout).toContain(`? confirmation: ${shown} int_`);
    expect(run.stdout).toContain(`\n  confirmation: ${shown}\n`);

    const listed = await runCli(['interrupts'], { home });
    const pid = /p_\w+/.exec(run.stdout)![0];
    const inspected = await runCli(['inspect', pid], { home });
    for (const out of [run.stdout, listed.stdout, inspected.stdout]) {
      expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
      expect(out).toContain('\\x1b[2K\\x0dACME');
    }
    // JSON carries the real text (JSON escapes it).
    const [pending] = json<Array<{ prompt: string }>>(
      await runCli(['interrupts', '--json'], { home }),
    );
    expect(pending!.prompt).toBe(`Pay 42.5 EUR to ${payee}?`);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
