/**
 * Bad input gets a clear error, a non-zero exit code, and changes nothing (issue 2): malformed
 * YAML, schema violations, unknown files, corrupted and too-new databases, bad flags and config.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { json, runCli } from './helpers/cli.ts';
import { editEventData, eventDataText } from './helpers/event-tamper.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('bad input', () => {
  let home: string;
  let db: string;
  let eventsBefore: number;

  beforeAll(async () => {
    home = tempDir();
    db = join(home, 'warden.db');
    await runCli(['init'], { home });
    await runCli(['run', 'examples/budget-exhausted.yaml'], { home });
    eventsBefore = countEvents(db);
  });
  afterAll(removeTempDirs);

  function countEvents(file: string): number {
    const d = new Database(file, { readonly: true });
    try {
      return (d.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    } finally {
      d.close();
    }
  }

  async function expectUnchanged(
    args: string[],
    code: number,
    ...messages: Array<string | RegExp>
  ) {
    const result = await runCli(args, { home });
    expect(result.code).toBe(code);
    for (const m of messages) expect(result.stderr).toMatch(m);
    expect(result.stderr).not.toMatch(/at .*\.ts:\d+/); // a message, not a stack trace
    expect(countEvents(db)).toBe(eventsBefore);
    return result;
  }

  it('malformed YAML names the file, line and column', async () => {
    const file = join(home, 'broken.yaml');
    writeFileSync(file, 'name: broken\nstages:\n  - name: a\n    agent: { kind: noop\n');
    await expectUnchanged(['run', file], 2, 'WORKFLOW_INVALID', file, /line \d+, column \d+/);
  });

  it('schema violations name the file, the path and what was expected', async () => {
    const file = join(home, 'invalid.yaml');
    writeFileSync(
      file,
      [
        'name: invalid',
        'bounds: { max_llm_calls: 0 }',
        'stages:',
        '  - name: a',
        '    agent: { kind: noop }',
        '    routing: [{ when: { field: output.x, eq: 1 }, next: revew }]',
        '  - name: b',
        '    agent: { kind: teleport }',
        '    default_next: b',
      ].join('\n'),
    );
    const result = await expectUnchanged(
      ['run', file],
      2,
      'WORKFLOW_INVALID',
      file,
      'bounds.max_llm_calls',
      /expected number to be >0|Too small/i,
      'stages[1].agent',
    );
    // A second pass reports semantic errors once the schema is satisfied.
    writeFileSync(
      file,
      [
        'name: invalid',
        'stages:',
        '  - name: a',
        '    agent: { kind: noop }',
        '    routing: [{ when: { field: output.x, eq: 1 }, next: revew }]',
        '  - name: b',
        '    agent: { kind: noop }',
        '    default_next: b',
      ].join('\n'),
    );
    const semantic = await expectUnchanged(
      ['run', file],
      2,
      "stages[0].routing[0].next: unknown stage 'revew' (expected one of: a, b, end)",
      'stages[1].max_visits',
    );
    expect(result.stdout).toBe('');
    expect(semantic.stdout).toBe('');
  });

  it('an unknown workflow file is NOT_FOUND (exit 5)', async () => {
    await expectUnchanged(['run', join(home, 'nope.yaml')], 5, 'NOT_FOUND', 'nope.yaml');
  });

  it('bad flags and input are rejected before anything runs', async () => {
    await expectUnchanged(
      ['run', 'examples/review-loop.yaml', '--input', '{oops'],
      2,
      'INVALID_PARAMS',
      '--input is not valid JSON',
    );
    await expectUnchanged(
      ['run', 'examples/review-loop.yaml', '--priority', 'urgent'],
      2,
      /Allowed choices are realtime, high, normal, low, idle/,
    );
    await expectUnchanged(
      ['run', 'examples/review-loop.yaml', '--concurrency', '0'],
      2,
      '--concurrency must be an integer',
    );
    await expectUnchanged(['events', '--from', '-3'], 2, '--from must be a non-negative integer');
    await expectUnchanged(['frobnicate'], 2, /unknown command/);
  });

  it('unknown ids are NOT_FOUND', async () => {
    await expectUnchanged(['inspect', 'p_nope'], 5, "process 'p_nope' does not exist");
    await expectUnchanged(['approve', 'int_nope'], 5, "interrupt 'int_nope' does not exist");
    await expectUnchanged(['answer', 'int_nope', 'hello'], 5, 'NOT_FOUND');
    await expectUnchanged(['cancel', 'p_nope'], 5, 'NOT_FOUND');
  });

  it('an invalid config key names the file and the key', async () => {
    const other = tempDir();
    writeFileSync(join(other, 'config.yaml'), 'durability: fast\nworker:\n  concurrency: many\n');
    const result = await runCli(['ps'], { home: other });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('CONFIG_INVALID');
    expect(result.stderr).toContain(join(other, 'config.yaml'));
    expect(result.stderr).toContain('worker.concurrency');
    expect(existsSync(join(other, 'warden.db'))).toBe(false);
    writeFileSync(join(other, 'config.yaml'), 'durabilty: fast\n');
    const typo = await runCli(['ps'], { home: other });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/durabilty/);
    writeFileSync(
      join(other, 'config.yaml'),
      'server:\n  openclaw:\n    exec_approvals:\n      no_approver_clients: sometimes\n',
    );
    const choice = await runCli(['ps'], { home: other });
    expect(choice.code).toBe(2);
    expect(choice.stderr).toContain('server.openclaw.exec_approvals.no_approver_clients');
    expect(choice.stderr).toMatch(/wait.*deny|deny.*wait/);
  });

  it('a corrupted database is refused with STORE_CORRUPT and left as it was', async () => {
    const other = tempDir();
    await runCli(['init'], { home: other });
    await runCli(['run', 'examples/budget-exhausted.yaml'], { home: other });
    const file = join(other, 'warden.db');
    const bytes = readFileSync(file);
    bytes.fill(0x5a, 0, 100); // destroy the SQLite header
    writeFileSync(file, bytes);
    const before = sha(file);
    for (const args of [['ps'], ['run', 'examples/review-loop.yaml'], ['ledger', 'verify']]) {
      const result = await runCli(args, { home: other });
      expect(result.code).toBe(6);
      expect(result.stderr).toContain('STORE_CORRUPT');
      expect(result.stderr).toContain('restore it from a backup');
    }
    expect(sha(file)).toBe(before);
    const doctor = await runCli(['doctor', '--json'], { home: other });
    expect(doctor.code).toBe(1);
    expect(
      json<{ checks: Array<{ name: string; ok: boolean }> }>(doctor).checks.find(
        (c) => c.name === 'database',
      )!.ok,
    ).toBe(false);
  });

  it('a database from a newer Warden is refused with STORE_TOO_NEW and left as it was', async () => {
    const other = tempDir();
    await runCli(['init'], { home: other });
    const file = join(other, 'warden.db');
    const d = new Database(file);
    d.pragma('user_version = 42');
    d.close();
    const before = sha(file);
    const result = await runCli(['run', 'examples/review-loop.yaml'], { home: other });
    expect(result.code).toBe(6);
    expect(result.stderr).toContain('STORE_TOO_NEW');
    expect(result.stderr).toContain('upgrade Warden');
    expect(sha(file)).toBe(before);
  });

  it('a tampered event log fails ledger verify with exit 7', async () => {
    const other = tempDir();
    await runCli(['run', 'examples/budget-exhausted.yaml'], { home: other });
    const d = new Database(join(other, 'warden.db'));
    // The first step's task.succeeded event (its data names the stage `research`).
    const { seq } = d
      .prepare("SELECT min(seq) AS seq FROM events WHERE type = 'task.succeeded'")
      .get() as { seq: number };
    expect(seq).toBeGreaterThan(1);
    const { session_id } = d
      .prepare("SELECT session_id FROM events WHERE type = 'task.succeeded' AND seq = ?")
      .get(seq) as { session_id: string };
    const data = eventDataText(d, session_id, seq);
    expect(data).toContain('research');
    editEventData(d, session_id, seq, data.replace('research', 'resaerch'));
    d.close();
    const result = await runCli(['ledger', 'verify', '--json'], { home: other });
    expect(result.code).toBe(7);
    const report = json<{
      ok: boolean;
      sessions: Array<{ break: { seq: number; reason: string } }>;
    }>(result);
    expect(report.ok).toBe(false);
    expect(report.sessions[0]!.break).toMatchObject({ seq, reason: 'hash_mismatch' });
  });
});
