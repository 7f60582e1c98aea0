/**
 * Crash test (issue 12): `warden exec` on a 500-task plan (--max-workers 8; 400 noop tasks
 * and 100 hook commands that take a moment) is SIGKILLed at random points at least 10 times,
 * each time continued with `warden exec --resume`, until it finishes. Then every task ran to
 * completion exactly once, and the evidence files, the event log and run.json agree:
 *
 * - run.json: 500 results in plan order, each ok/noop;
 * - one evidence file per noop task, whose sha256 is the one recorded in the task's single
 *   `task.succeeded` event; one `effect.completed` per hook command (a command the kill
 *   interrupted before its outcome was recorded runs again: that is `effect.started` > 1,
 *   never a second completion);
 * - exactly one `task.succeeded` per task, and `warden ledger verify` passes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

import { CLI, runCli } from '../helpers/cli.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';

const QUEUES = 5;
const PER_QUEUE = 100;
const KILLS = 10;

function writePlan(dir: string): string[] {
  const ids: string[] = [];
  const queues = Array.from({ length: QUEUES }, (_, q) => ({
    name: `Queue ${String.fromCharCode(65 + q)} \u2014 Part ${q}`,
    tasks: Array.from({ length: PER_QUEUE }, (_, i) => {
      const id = `TASK-${String(100 + q * PER_QUEUE + i).padStart(3, '0')}`;
      ids.push(id);
      return { id, title: id, layer: 'execution' };
    }),
  }));
  mkdirSync(join(dir, 'state'), { recursive: true });
  writeFileSync(
    join(dir, 'state', 'plan.json'),
    JSON.stringify(
      { version: 1, source: 'sot.md', generated_at: '2026-01-01T00:00:00.000000Z', queues },
      null,
      2,
    ),
  );
  // Queue B's tasks run a command that takes a moment: kills land mid-command too.
  mkdirSync(join(dir, 'config'), { recursive: true });
  writeFileSync(
    join(dir, 'config', 'hooks.json'),
    JSON.stringify({ [queues[1]!.name]: { commands: [{ cmd: ['sleep', '0.15'] }] } }),
  );
  return ids;
}

function spawnExec(dir: string, home: string, args: string[]): ChildProcess {
  return spawn(process.execPath, [CLI, 'exec', '--plan', 'state/plan.json', '--quiet', ...args], {
    cwd: dir,
    env: { ...process.env, WARDEN_HOME: home, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

interface Outcome {
  readonly code: number | null;
  readonly killed: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs exec; kills it `killAfterMs` after its run directory has a marker (null: let it end). */
function runOnce(
  dir: string,
  home: string,
  args: string[],
  killAfterMs: number | null,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawnExec(dir, home, args);
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let poll: NodeJS.Timeout | undefined;
    if (killAfterMs !== null) {
      // Wait until the run is resumable (its marker exists), then let it work a while.
      poll = setInterval(() => {
        const runs = join(dir, 'state', 'runs');
        const marked =
          existsSync(runs) &&
          readdirSync(runs).some((r) => existsSync(join(runs, r, '.warden-exec.json')));
        if (!marked) return;
        clearInterval(poll);
        setTimeout(() => {
          killed = child.kill('SIGKILL');
        }, killAfterMs);
      }, 20);
    }
    child.once('error', reject);
    child.once('exit', (code) => {
      clearInterval(poll);
      resolve({ code, killed: killed && code === null, stdout, stderr });
    });
  });
}

afterAll(removeTempDirs);

describe('warden exec killed and resumed', () => {
  it('runs every task of a 500-task plan to completion exactly once across 10+ SIGKILLs', async () => {
    const dir = tempDir('warden-plan-kill-');
    const home = join(dir, 'home');
    const ids = writePlan(dir);
    writeFileSync(
      join(dir, 'policy.yaml'),
      'version: 1\nagents:\n  plan:\n    tools: [shell.exec]\n    commands: ["sleep"]\n',
    );
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'policy.yaml'), readFileSync(join(dir, 'policy.yaml')));

    let kills = 0;
    let outcome: Outcome | null = null;
    for (let round = 0; round < 60; round++) {
      const args = round === 0 ? ['--max-workers', '8'] : ['--resume'];
      // Kill within the first 150-600 ms of work, until enough kills landed; then let it end.
      const killAfter = kills < KILLS ? 150 + Math.floor(Math.random() * 450) : null;
      const o = await runOnce(dir, home, args, killAfter);
      if (o.killed) {
        kills += 1;
        continue;
      }
      outcome = o;
      break;
    }
    expect(kills).toBeGreaterThanOrEqual(KILLS);
    expect(outcome, 'the run never finished').not.toBeNull();
    expect(outcome!.stderr).toBe('');
    expect(outcome!.code).toBe(0);
    const runs = readdirSync(join(dir, 'state', 'runs'));
    expect(runs).toHaveLength(1); // every resume continued the same run directory
    const runDir = `state/runs/${runs[0]!}`;
    expect(outcome!.stdout).toBe(`[ok] run summary written: ${runDir}/run.json\n`);

    // run.json: one result per task, in plan order.
    const summary = JSON.parse(readFileSync(join(dir, runDir, 'run.json'), 'utf8')) as {
      status: string;
      results: Array<{
        task: string;
        status: string;
        evidence: string | null;
        commands: Array<{ rc: number }> | null;
      }>;
    };
    expect(summary.status).toBe('ok');
    expect(summary.results.map((r) => r.task)).toEqual(ids);

    // Evidence on disk: exactly one file per noop task, one log per command task.
    const logs = readdirSync(join(dir, runDir, 'logs'));
    const shellIds = new Set(ids.slice(PER_QUEUE, 2 * PER_QUEUE));
    for (const id of ids) {
      const mine = logs.filter((f) => f.startsWith(`${id}_`));
      expect(mine, id).toEqual(
        shellIds.has(id) ? [`${id}_cmd1.log`] : [expect.stringMatching(/_noop_\d{8}_\d{6}Z\.txt$/)],
      );
    }

    // The event log agrees.
    const marker = JSON.parse(readFileSync(join(dir, runDir, '.warden-exec.json'), 'utf8')) as {
      session: string;
      exec_id: string;
    };
    const db = new Database(join(home, 'warden.db'), { readonly: true });
    try {
      const session = db.prepare('SELECT id FROM sessions WHERE key = ?').get(marker.session) as {
        id: string;
      };
      const events = db
        .prepare('SELECT type, data FROM events WHERE session_id = ? ORDER BY seq')
        .all(session.id) as Array<{ type: string; data: string }>;
      const count = (type: string, key?: string): Map<string, number> => {
        const m = new Map<string, number>();
        for (const e of events) {
          if (e.type !== type) continue;
          const data = JSON.parse(e.data) as { key?: string };
          if (key !== undefined && !data.key?.endsWith(key)) continue;
          const k = data.key ?? '';
          m.set(k, (m.get(k) ?? 0) + 1);
        }
        return m;
      };
      const succeeded = events.filter((e) => e.type === 'task.succeeded').length;
      expect(succeeded).toBe(ids.length);
      const commands = count('effect.completed', '/cmd1');
      expect(commands.size).toBe(shellIds.size);
      expect([...commands.values()].every((n) => n === 1)).toBe(true);
      // Each noop task's success event names its one evidence file and that file's hash; each
      // command's completion names its log and the log's hash.
      const evidence = new Set<string>();
      for (const e of events) {
        const data = JSON.parse(e.data) as { evidence?: string; sha256?: string; log?: string };
        const file =
          e.type === 'task.succeeded'
            ? data.evidence
            : e.type === 'effect.completed'
              ? data.log
              : undefined;
        if (file === undefined) continue;
        if (e.type === 'task.succeeded') evidence.add(file);
        const bytes = readFileSync(join(dir, file));
        expect(createHash('sha256').update(bytes).digest('hex'), file).toBe(data.sha256);
      }
      expect(evidence.size).toBe(ids.length - shellIds.size);
    } finally {
      db.close();
    }

    const verify = await runCli(['ledger', 'verify'], { home });
    expect(verify.code, verify.stderr).toBe(0);
  }, 240_000);
});
