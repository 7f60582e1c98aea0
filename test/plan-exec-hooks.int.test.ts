/**
 * `warden exec` running hook commands (reference A.5, A.6, A.8 #1, #12) with real processes:
 * failing, skipped and unstartable commands and their records and logs; hook precedence;
 * `--dry-run`; the default-deny policy and its audit trail; `--timeout` and `--retries`.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import {
  allowCommands,
  planOf,
  readMarkerOf,
  readSummary,
  sessionEvents,
  summaryPath,
  warden,
  workspace,
  writeJson,
} from './helpers/plan-exec.ts';
import { removeTempDirs } from './helpers/tmp.ts';

afterAll(removeTempDirs);

const runDirOf = (path: string): string => path.slice(0, -'/run.json'.length);

describe('warden exec: hook commands', () => {
  it('a failing command makes the task and the run an error; the rest still run, as the kit records them', async () => {
    const ws = workspace();
    allowCommands(ws, ['*']);
    writeJson(
      ws,
      'state/plan.json',
      planOf({ 'Queue A — Build': ['TASK-001', 'TASK-002', 'TASK-003'] }),
    );
    writeJson(ws, 'config/hooks.json', {
      'TASK-001': {
        commands: [
          { cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'] },
          { cmd: [] }, // skipped: uses up cmd2
          { cwd: '.' }, // skipped: uses up cmd3
          { cmd: ['sh', '-c', 'echo only-out'] },
          { cmd: ['no-such-executable-x'] },
          { cmd: ['echo', 'x'], cwd: 'no/such/dir' },
          { cmd: ['sh', '-c', 'pwd > here.txt'], cwd: 'sub' },
        ],
      },
      // Only skipped specs: a shell task with nothing run is ok.
      'TASK-003': { commands: [{ cmd: [] }] },
    });
    mkdirSync(join(ws.cwd, 'sub'));

    const result = await warden(ws, ['exec', '--plan', 'state/plan.json', '--quiet']);
    expect(result.code, result.stderr).toBe(2);
    const path = summaryPath(result);
    expect(result.stdout).toBe(`[ok] run summary written: ${path}\n`);
    const runDir = runDirOf(path);
    const logs = `${runDir}/logs`;
    const summary = readSummary(ws, path);
    expect(summary.status).toBe('error');
    expect(summary.results).toHaveLength(3);
    const [failed, noop, skipped] = summary.results;

    expect(failed).toEqual({
      task: 'TASK-001',
      queue: 'Queue A — Build',
      agent: 'shell',
      status: 'error',
      evidence: null,
      error: null,
      commands: [
        {
          cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'],
          cwd: null,
          rc: 3,
          log: `${logs}/TASK-001_cmd1.log`,
          error: null,
        },
        {
          cmd: ['sh', '-c', 'echo only-out'],
          cwd: null,
          rc: 0,
          log: `${logs}/TASK-001_cmd4.log`,
          error: null,
        },
        {
          cmd: ['no-such-executable-x'],
          cwd: null,
          rc: null,
          log: null,
          error: "[Errno 2] No such file or directory: 'no-such-executable-x'",
        },
        {
          cmd: ['echo', 'x'],
          cwd: 'no/such/dir',
          rc: null,
          log: null,
          error: "[Errno 2] No such file or directory: 'no/such/dir'",
        },
        {
          cmd: ['sh', '-c', 'pwd > here.txt'],
          cwd: 'sub',
          rc: 0,
          log: `${logs}/TASK-001_cmd7.log`,
          error: null,
        },
      ],
    });
    expect(noop).toMatchObject({ task: 'TASK-002', agent: 'noop', status: 'noop' });
    expect(skipped).toEqual({
      task: 'TASK-003',
      queue: 'Queue A — Build',
      agent: 'shell',
      status: 'ok',
      evidence: null,
      error: null,
      commands: [],
    });

    // The logs: `$ <argv joined>\n<stdout>` and `\n[stderr]\n<stderr>` only when there is some.
    const read = (name: string): string => readFileSync(join(ws.cwd, logs, name), 'utf8');
    expect(read('TASK-001_cmd1.log')).toBe(
      '$ sh -c echo out; echo err >&2; exit 3\nout\n\n[stderr]\nerr\n',
    );
    expect(read('TASK-001_cmd4.log')).toBe('$ sh -c echo only-out\nonly-out\n');
    expect(read('TASK-001_cmd7.log')).toBe('$ sh -c pwd > here.txt\n');
    // cwd is relative to the directory warden exec runs in.
    expect(readFileSync(join(ws.cwd, 'sub', 'here.txt'), 'utf8').trim()).toMatch(/\/sub$/);
    // No log for skipped or unstartable commands, nor any stray file.
    expect(
      readdirSync(join(ws.cwd, logs))
        .filter((n) => !n.startsWith('TASK-002_noop_'))
        .sort(),
    ).toEqual(['TASK-001_cmd1.log', 'TASK-001_cmd4.log', 'TASK-001_cmd7.log']);
  });
});

describe('warden exec: hook precedence (A.5) and --dry-run', () => {
  const plan = planOf({
    'Queue A — Shared': ['TASK-001', 'TASK-002', 'TASK-003', 'TASK-004'],
    'Queue B — Bare': ['TASK-005'],
  });
  const hooks = {
    'Queue A — Shared': {
      commands: [{ cmd: ['echo', 'from-queue'] }, { cmd: ['touch', 'queue-ran'] }],
    },
    'TASK-001': { commands: [{ cmd: ['echo', 'from-task'] }] }, // replaces the queue entry
    'TASK-002': {}, // falsy: falls back to the queue entry
    'TASK-003': { commands: [] }, // truthy: disables the queue's commands
  };

  it('a task entry replaces the queue entry, {} falls back, {"commands": []} disables', async () => {
    const ws = workspace();
    allowCommands(ws, ['echo', 'touch']);
    writeJson(ws, 'state/plan.json', plan);
    writeJson(ws, 'hooks.json', hooks);
    const result = await warden(ws, [
      'exec',
      '--plan',
      'state/plan.json',
      '--hooks',
      'hooks.json',
      '--quiet',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = readSummary(ws, summaryPath(result));
    expect(summary.status).toBe('ok');
    const ran = summary.results.map((r) => [
      r.task,
      r.agent,
      r.status,
      r.commands?.map((c) => c.cmd.join(' ')) ?? null,
    ]);
    expect(ran).toEqual([
      ['TASK-001', 'shell', 'ok', ['echo from-task']],
      ['TASK-002', 'shell', 'ok', ['echo from-queue', 'touch queue-ran']],
      ['TASK-003', 'noop', 'noop', null],
      ['TASK-004', 'shell', 'ok', ['echo from-queue', 'touch queue-ran']],
      ['TASK-005', 'noop', 'noop', null],
    ]);
    expect(readFileSync(join(ws.cwd, summary.results[0]!.commands![0]!.log!), 'utf8')).toBe(
      '$ echo from-task\nfrom-task\n',
    );
    expect(existsSync(join(ws.cwd, 'queue-ran'))).toBe(true);
  });

  it('--dry-run writes noop evidence for every task and runs nothing', async () => {
    const ws = workspace();
    allowCommands(ws, ['echo', 'touch']);
    writeJson(ws, 'state/plan.json', plan);
    writeJson(ws, 'hooks.json', hooks);
    const result = await warden(ws, [
      'exec',
      '--plan',
      'state/plan.json',
      '--hooks=hooks.json',
      '--dry-run',
      '--quiet',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const path = summaryPath(result);
    const summary = readSummary(ws, path);
    expect(summary.status).toBe('ok');
    expect(summary.results.map((r) => [r.task, r.agent, r.status, r.commands])).toEqual(
      ['TASK-001', 'TASK-002', 'TASK-003', 'TASK-004', 'TASK-005'].map((t) => [
        t,
        'noop',
        'noop',
        null,
      ]),
    );
    expect(existsSync(join(ws.cwd, 'queue-ran'))).toBe(false);
    const logs = readdirSync(join(ws.cwd, runDirOf(path), 'logs'));
    expect(logs).toHaveLength(5);
    expect(logs.every((n) => /_noop_\d{8}_\d{6}Z\.txt$/.test(n))).toBe(true);
    // No command effect in the event log, and no policy decision was needed.
    const events = await sessionEvents(ws, readMarkerOf(ws, runDirOf(path)).session);
    expect(events.filter((e) => e.type === 'effect.completed')).toHaveLength(0);
    expect(events.filter((e) => e.type === 'task.succeeded' && e.data.sha256)).toHaveLength(5);
    expect(events.some((e) => e.data.tool === 'plan.command')).toBe(false);
  });

  it('without a policy every hook command is denied, recorded with the reason, and audited', async () => {
    const ws = workspace();
    writeJson(ws, 'plan.json', planOf({ 'Queue A — Shared': ['TASK-001', 'TASK-002'] }));
    writeJson(ws, 'config/hooks.json', {
      'TASK-001': { commands: [{ cmd: ['touch', 'denied-marker'] }, { cmd: ['echo', 'hi'] }] },
    });
    const result = await warden(ws, ['exec', '--plan', 'plan.json', '--quiet']);
    expect(result.code, result.stderr).toBe(2);
    const summary = readSummary(ws, summaryPath(result));
    expect(summary.status).toBe('error');
    const task = summary.results[0]!;
    expect(task).toMatchObject({ task: 'TASK-001', agent: 'shell', status: 'error' });
    expect(task.commands).toHaveLength(2);
    for (const c of task.commands!) {
      expect(c.rc).toBeNull();
      expect(c.log).toBeNull();
      expect(c.error).toMatch(/denied by policy/);
    }
    expect(summary.results[1]).toMatchObject({ task: 'TASK-002', status: 'noop' });
    expect(existsSync(join(ws.cwd, 'denied-marker'))).toBe(false);

    const audit = await warden(ws, ['audit', '--json', '--decision', 'deny']);
    expect(audit.code, audit.stderr).toBe(0);
    const records = JSON.parse(audit.stdout) as {
      principal: string;
      action: string;
      resource: string;
      decision: string;
    }[];
    expect(records).toContainEqual(
      expect.objectContaining({
        principal: 'agent:plan/TASK-001',
        action: 'shell.exec',
        resource: 'command:touch denied-marker',
        decision: 'deny',
      }),
    );
    expect(records).toContainEqual(
      expect.objectContaining({
        principal: 'agent:plan/TASK-001',
        action: 'tool.call',
        resource: 'tool:shell.exec',
        decision: 'deny',
      }),
    );
  });
});

describe('warden exec: --timeout and --retries', () => {
  it('a command past its timeout is stopped; a failing command is tried 1 + retries times', async () => {
    const ws = workspace();
    allowCommands(ws, ['*']);
    writeJson(ws, 'plan.json', planOf({ 'Queue A — Slow': ['TASK-001', 'TASK-002', 'TASK-003'] }));
    writeJson(ws, 'config/hooks.json', {
      // retries: 0 in the entry overrides --retries for this task.
      'TASK-001': { commands: [{ cmd: ['sleep', '5'] }, { cmd: ['echo', 'after'] }], retries: 0 },
      'TASK-002': { commands: [{ cmd: ['sh', '-c', 'echo try >> attempts.txt; exit 1'] }] },
      'TASK-003': { commands: [{ cmd: ['true'] }] },
    });
    const result = await warden(ws, [
      'exec',
      '--plan',
      'plan.json',
      '--timeout',
      '1s',
      '--retries',
      '2',
      '--quiet',
    ]);
    expect(result.code, result.stderr).toBe(2);
    const path = summaryPath(result);
    const summary = readSummary(ws, path);
    const [slow, failing, fine] = summary.results;

    expect(slow!.status).toBe('error');
    const [timed, after] = slow!.commands!;
    expect(timed!.rc).toBeLessThan(0); // ended by a signal
    expect(timed!.error).toBe('timed out after 1 s');
    expect(readFileSync(join(ws.cwd, timed!.log!), 'utf8')).toBe('$ sleep 5\n');
    expect(after).toMatchObject({ cmd: ['echo', 'after'], rc: 0, error: null });

    expect(failing!.status).toBe('error');
    expect(failing!.commands).toEqual([
      {
        cmd: ['sh', '-c', 'echo try >> attempts.txt; exit 1'],
        cwd: null,
        rc: 1,
        log: `${runDirOf(path)}/logs/TASK-002_cmd1.log`,
        error: null,
      },
    ]);
    expect(readFileSync(join(ws.cwd, 'attempts.txt'), 'utf8')).toBe('try\ntry\ntry\n');
    expect(fine).toMatchObject({ status: 'ok', commands: [{ cmd: ['true'], rc: 0 }] });

    // Each try is its own effect in the event log.
    const marker = readMarkerOf(ws, runDirOf(path));
    const keys = (await sessionEvents(ws, marker.session))
      .filter((e) => e.type === 'effect.completed')
      .map((e) => String(e.data.key).slice(`plan/${marker.exec_id}/`.length))
      .sort();
    expect(keys).toEqual([
      'TASK-001/cmd1',
      'TASK-001/cmd2',
      'TASK-002/cmd1',
      'TASK-002/try2/cmd1',
      'TASK-002/try3/cmd1',
      'TASK-003/cmd1',
    ]);
  });
});
