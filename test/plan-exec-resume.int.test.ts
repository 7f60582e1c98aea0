/**
 * `warden exec` refusing bad input before it creates anything (reference A.2, A.8 #8, #11):
 * every case exits with the kit's code and one `[error]` line, and leaves no run directory and
 * an unchanged store. Then Ctrl-C (exit 130, no run.json) and `--resume`, which finishes the
 * same run directory without running a finished task again.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  allowCommands,
  collect,
  type EventLine,
  planOf,
  readMarkerOf,
  readSummary,
  runDirs,
  sessionEvents,
  spawnWarden,
  storeFingerprint,
  summaryPath,
  warden,
  workspace,
  writeFile,
  writeJson,
} from './helpers/plan-exec.ts';
import { removeTempDirs } from './helpers/tmp.ts';
import { waitFor } from './helpers/wait.ts';

afterAll(removeTempDirs);

describe('warden exec: bad input leaves nothing behind', () => {
  const ws = workspace();
  let fingerprint = '';
  let dirs: string[] = [];

  beforeAll(async () => {
    writeJson(ws, 'plan.json', planOf({ 'Queue A — One': ['TASK-001', 'TASK-002'] }));
    writeFile(ws, 'bad.json', 'nope\n');
    writeJson(ws, 'noid.json', { version: 1, queues: [{ name: 'Q', tasks: [{ title: 'x' }] }] });
    writeFile(ws, 'badhooks.json', '{\n');
    writeJson(ws, 'listhooks.json', { 'Queue A — One': [{ cmd: ['true'] }] });
    writeJson(ws, 'bogus.json', { 'Queue A — One': { agent: 'bogus' } });
    writeFile(ws, 'badmanifest.json', '[1,');
    // The kit's layout: <plan dir>/../config/hooks.json is found without --hooks.
    writeJson(ws, 'kit/state/plan.json', planOf({ 'Queue A — One': ['TASK-001'] }));
    writeFile(ws, 'kit/config/hooks.json', '{"TASK-001": ');

    // A finished run first (with the = form of --max-workers): the store exists, and --resume
    // has nothing unfinished to continue.
    const first = await warden(ws, ['exec', '--plan', 'plan.json', '--max-workers=3', '--quiet']);
    expect(first.code, first.stderr).toBe(0);
    const path = summaryPath(first);
    expect(readSummary(ws, path).status).toBe('ok');
    expect(
      (readMarkerOf(ws, path.slice(0, -'/run.json'.length)) as { max_workers?: number })
        .max_workers,
    ).toBe(3);
    fingerprint = await storeFingerprint(ws);
    expect(fingerprint).not.toBe('no store');
    dirs = runDirs(ws);
    expect(dirs).toHaveLength(1);
  });

  const cases: { name: string; args: string[]; code: number; stderr: RegExp }[] = [
    {
      name: 'a missing plan',
      args: ['--plan', 'missing.json'],
      code: 1,
      stderr: /^\[error\] plan not found: missing\.json\n$/,
    },
    {
      name: 'a plan that is not JSON',
      args: ['--plan', 'bad.json'],
      code: 1,
      stderr: /^\[error\] invalid plan bad\.json: not JSON/,
    },
    {
      name: 'a task without an id',
      args: ['--plan', 'noid.json'],
      code: 1,
      stderr: /^\[error\] invalid plan noid\.json: queues\[0\]\.tasks\[0\]\.id: /,
    },
    {
      name: 'hooks that are not JSON',
      args: ['--plan', 'plan.json', '--hooks', 'badhooks.json'],
      code: 1,
      stderr: /^\[error\] invalid hooks file badhooks\.json: not JSON/,
    },
    {
      name: "hooks found in the kit's layout that are not JSON",
      args: ['--plan', 'kit/state/plan.json'],
      code: 1,
      stderr: /^\[error\] invalid hooks file kit\/state\/\.\.\/config\/hooks\.json: not JSON/,
    },
    {
      name: 'a hooks entry that is a list',
      args: ['--plan', 'plan.json', '--hooks', 'listhooks.json'],
      code: 1,
      stderr: /^\[error\] invalid hooks file listhooks\.json: Queue A — One: .*expected object/,
    },
    {
      name: 'a manifest that is not JSON',
      args: ['--plan', 'plan.json', '--manifest', 'badmanifest.json'],
      code: 1,
      stderr: /^\[error\] invalid manifest badmanifest\.json: not JSON/,
    },
    ...['0', '-1', 'abc', '1.5'].map((n) => ({
      name: `--max-workers ${n}`,
      args: ['--plan', 'plan.json', '--max-workers', n],
      code: 2,
      stderr: new RegExp(
        `^\\[error\\] --max-workers must be an integer .*\\(got '${n.replace('.', '\\.')}'\\)\\n$`,
      ),
    })),
    {
      name: '--max-workers 0 in the = form',
      args: ['--plan', 'plan.json', '--max-workers=0'],
      code: 2,
      stderr: /^\[error\] --max-workers must be an integer/,
    },
    {
      name: 'a bad --timeout',
      args: ['--plan', 'plan.json', '--timeout', 'soon'],
      code: 2,
      stderr: /^\[error\] --timeout must be a duration/,
    },
    {
      name: 'an unknown agent',
      args: ['--plan', 'plan.json', '--hooks', 'bogus.json'],
      code: 1,
      stderr: /^\[error\] agent not registered: bogus /,
    },
    {
      name: '--resume with nothing unfinished',
      args: ['--plan', 'plan.json', '--resume'],
      code: 1,
      stderr: /^\[error\] no unfinished run of plan\.json to resume under runs\n$/,
    },
    {
      name: 'no --plan',
      args: ['--max-workers', '2'],
      code: 2,
      stderr: /^\[error\] .*--plan/,
    },
  ];

  it.each(cases)('$name', async ({ args, code, stderr }) => {
    const result = await warden(ws, ['exec', ...args]);
    expect(result.code, result.stderr).toBe(code);
    expect(result.stderr).toMatch(stderr);
    expect(result.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(result.stdout).toBe('');
    expect(runDirs(ws)).toEqual(dirs);
    expect(runDirs(ws, 'kit/state')).toEqual([]);
    expect(await storeFingerprint(ws)).toBe(fingerprint);
  });

  it('a missing plan does not even create the Warden home', async () => {
    const fresh = workspace();
    const result = await warden(fresh, ['exec', '--plan', 'plan.json']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('[error] plan not found: plan.json\n');
    expect(existsSync(fresh.home)).toBe(false);
    expect(runDirs(fresh)).toEqual([]);
  });
});

describe('warden exec: Ctrl-C and --resume', () => {
  it('exits 130 with no run.json; --resume finishes the same run without re-running finished tasks', async () => {
    const ws = workspace();
    allowCommands(ws, ['*']);
    const ids = Array.from({ length: 40 }, (_, i) => `TASK-${String(i + 1).padStart(3, '0')}`);
    writeJson(
      ws,
      'plan.json',
      planOf({ 'Queue A — Slow': ids.slice(0, 20), 'Queue B — Slow': ids.slice(20) }),
    );
    // Each task appends its id to ran.txt when its command starts: the file counts the runs.
    writeJson(
      ws,
      'config/hooks.json',
      Object.fromEntries(
        ids.map((id) => [
          id,
          { commands: [{ cmd: ['sh', '-c', 'echo "$0" >> ran.txt; sleep 0.3', id] }] },
        ]),
      ),
    );
    const ranFile = join(ws.cwd, 'ran.txt');
    const ranLines = (): string[] =>
      existsSync(ranFile)
        ? readFileSync(ranFile, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
        : [];

    const child = spawnWarden(ws, ['exec', '--plan', 'plan.json', '--max-workers', '2']);
    const exited = collect(child);
    await waitFor(() => ranLines().length >= 8, 30_000, 'eight tasks to start');
    child.kill('SIGINT');
    const stopped = await exited;
    expect(stopped.signal, stopped.stderr).toBeNull();
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stdout).toBe('');
    expect(stopped.stderr).toContain('[warn] interrupted\n');
    const [runName] = runDirs(ws);
    expect(runDirs(ws)).toEqual([runName]);
    const runDir = `runs/${runName!}`;
    expect(stopped.stderr).toContain(
      `[warn] finished tasks are kept; continue with: warden exec --plan plan.json --resume ${runDir}\n`,
    );
    expect(existsSync(join(ws.cwd, runDir, 'run.json'))).toBe(false);

    const marker = readMarkerOf(ws, runDir);
    const cmdKey = (id: string): string => `plan/${marker.exec_id}/${id}/cmd1`;
    const completedBefore = new Set(
      (await sessionEvents(ws, marker.session))
        .filter((e) => e.type === 'effect.completed')
        .map((e) => String(e.data.key)),
    );
    const finishedBefore = ids.filter((id) => completedBefore.has(cmdKey(id)));
    expect(finishedBefore.length).toBeGreaterThanOrEqual(6);
    expect(finishedBefore.length).toBeLessThan(40);

    const resumed = await warden(ws, ['exec', '--plan', 'plan.json', '--resume', '--quiet']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toBe(`[ok] run summary written: ${runDir}/run.json\n`);
    expect(runDirs(ws)).toEqual([runName]);
    const summary = readSummary(ws, `${runDir}/run.json`);
    expect(summary.status).toBe('ok');
    expect(summary.results.map((r) => r.task)).toEqual(ids);
    for (const r of summary.results) {
      expect(r.agent).toBe('shell');
      expect(r.commands).toHaveLength(1);
      expect(r.commands![0]!.rc).toBe(0);
      expect(r.commands![0]!.log).toBe(`${runDir}/logs/${r.task}_cmd1.log`);
    }

    // Every task's command completed exactly once in the journal; finished tasks never ran again.
    const events = await sessionEvents(ws, marker.session);
    const count = (type: string, key: string): number =>
      events.filter((e: EventLine) => e.type === type && e.data.key === key).length;
    for (const id of ids) expect(count('effect.completed', cmdKey(id)), id).toBe(1);
    const ran = ranLines();
    for (const id of finishedBefore) {
      expect(count('effect.started', cmdKey(id)), id).toBe(1);
      expect(
        ran.filter((l) => l === id),
        id,
      ).toHaveLength(1);
    }
    for (const id of ids) expect(ran.filter((l) => l === id).length, id).toBeGreaterThanOrEqual(1);
    // One successful settle per task.
    expect(events.filter((e) => e.type === 'task.succeeded')).toHaveLength(40);
  });
});
