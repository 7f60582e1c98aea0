/**
 * `warden exec` (the NOA task kit's `run`, reference A.2, A.6–A.8) with real child processes
 * and real files: a 500-task plan end to end (stdout, run.json, evidence files, the event log),
 * run directories that are never reused, duplicate task ids, `warden run --plan` as an alias,
 * and `warden plan` / `warden plan --check`.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import {
  type EventLine,
  MICROS_TIMESTAMP,
  planOf,
  readMarkerOf,
  readSummary,
  runDirs,
  sessionEvents,
  sha256Of,
  stampOf,
  summaryPath,
  warden,
  workspace,
  writeFile,
  writeJson,
} from './helpers/plan-exec.ts';
import { removeTempDirs } from './helpers/tmp.ts';

afterAll(removeTempDirs);

const RESULT_KEYS = ['agent', 'commands', 'error', 'evidence', 'queue', 'status', 'task'];

describe('warden exec: a 500-task plan', () => {
  it('runs every task once, in plan order, with evidence the event log vouches for', async () => {
    const ws = workspace();
    const queues: Record<string, string[]> = {};
    const order: { id: string; queue: string }[] = [];
    for (let q = 0; q < 5; q++) {
      const name = `Queue ${'ABCDE'[q]} — Stage ${q + 1}`;
      queues[name] = [];
      for (let t = 1; t <= 100; t++) {
        const id = `TASK-${String(q * 100 + t).padStart(3, '0')}`;
        queues[name].push(id);
        order.push({ id, queue: name });
      }
    }
    writeJson(ws, 'state/plan.json', planOf(queues));

    const result = await warden(ws, ['exec', '--plan', 'state/plan.json', '--max-workers', '8']);
    expect(result.code, result.stderr).toBe(0);
    const path = summaryPath(result);
    // Joined like os.path.join from the plan path as given: state/plan.json → state/runs/<ts>.
    expect(path).toMatch(/^state\/runs\/\d{8}_\d{6}Z\/run\.json$/);
    expect(result.stdout).toBe(`[ok] run summary written: ${path}\n`);
    const runDir = path.slice(0, -'/run.json'.length);
    const stamp = runDir.slice('state/runs/'.length);

    const summary = readSummary(ws, path);
    expect(summary.status).toBe('ok');
    expect(summary.started).toMatch(MICROS_TIMESTAMP);
    expect(summary.ended).toMatch(MICROS_TIMESTAMP);
    expect(summary.started <= summary.ended).toBe(true);
    expect(stampOf(summary.started)).toBe(stamp);

    // Plan order, every key present (the Rust shape), registry keys as agents.
    expect(summary.results.map((r) => [r.task, r.queue])).toEqual(
      order.map((o) => [o.id, o.queue]),
    );
    const raw = JSON.parse(readFileSync(join(ws.cwd, path), 'utf8')) as {
      results: Record<string, unknown>[];
    };
    for (const r of raw.results) expect(Object.keys(r).sort()).toEqual(RESULT_KEYS);

    const evidenceName = /^(TASK-\d{3})_noop_(\d{8}_\d{6}Z)\.txt$/;
    for (const [i, r] of summary.results.entries()) {
      const { id, queue } = order[i]!;
      expect(r).toMatchObject({ agent: 'noop', status: 'noop', error: null, commands: null });
      const evidence = r.evidence!;
      expect(evidence.startsWith(`${runDir}/logs/`), evidence).toBe(true);
      const m = evidenceName.exec(evidence.slice(`${runDir}/logs/`.length));
      expect(m, evidence).not.toBeNull();
      expect(m![1]).toBe(id);
      const taskStamp = m![2]!;
      expect(taskStamp >= stamp && taskStamp <= stampOf(summary.ended)).toBe(true);
      expect(readFileSync(join(ws.cwd, evidence), 'utf8')).toBe(
        `NOOP: ${id} in ${queue} at ${taskStamp}\n`,
      );
    }
    // One evidence file per task and nothing else.
    expect(readdirSync(join(ws.cwd, runDir, 'logs')).sort()).toEqual(
      summary.results.map((r) => r.evidence!.slice(`${runDir}/logs/`.length)).sort(),
    );

    // The event log agrees: one task.succeeded per task, naming its evidence file and that
    // file's sha256 (noop evidence is recorded with the result, not as an effect).
    const marker = readMarkerOf(ws, runDir);
    const events = await sessionEvents(ws, marker.session);
    expect(events.filter((e) => e.type === 'effect.completed')).toHaveLength(0);
    const byEvidence = new Map<string, EventLine[]>();
    for (const e of events.filter((x) => x.type === 'task.succeeded')) {
      const key = String(e.data.evidence);
      byEvidence.set(key, [...(byEvidence.get(key) ?? []), e]);
    }
    for (const r of summary.results) {
      const found = byEvidence.get(r.evidence!) ?? [];
      expect(found, r.task).toHaveLength(1);
      expect(found[0]!.data.sha256).toBe(sha256Of(join(ws.cwd, r.evidence!)));
    }
    const succeeded = events.filter((e) => e.type === 'task.succeeded');
    expect(succeeded).toHaveLength(500);
    expect(new Set(succeeded.map((e) => e.task_id)).size).toBe(500);
    expect(events.filter((e) => e.type === 'task.failed')).toHaveLength(0);

    // --max-workers 8 bounds the tasks running at once (in commit order), and they did overlap.
    let running = 0;
    let most = 0;
    for (const e of events) {
      if (e.type === 'task.claimed') running += 1;
      if (e.type === 'task.succeeded' || e.type === 'task.failed') running -= 1;
      most = Math.max(most, running);
    }
    expect(most).toBeLessThanOrEqual(8);
    expect(most).toBeGreaterThan(1);
  });
});

describe('warden exec: run directories', () => {
  it('two runs started together get distinct directories, each with its own run.json', async () => {
    const ws = workspace();
    writeJson(ws, 'plan.json', planOf({ 'Queue A — Tiny': ['TASK-001', 'TASK-002'] }));
    const [a, b] = await Promise.all([
      warden(ws, ['exec', '--plan', 'plan.json', '--quiet']),
      warden(ws, ['exec', '--plan', 'plan.json', '--quiet']),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const paths = [summaryPath(a), summaryPath(b)];
    expect(new Set(paths).size).toBe(2);
    const names = paths.map((p) => p.split('/')[1]!);
    expect(runDirs(ws).sort()).toEqual([...names].sort());
    const stamps = names.map((n) => /^(\d{8}_\d{6}Z)(?:-(\d+))?$/.exec(n));
    for (const m of stamps) expect(m).not.toBeNull();
    if (stamps[0]![1] === stamps[1]![1]) {
      // The same second: one gets runs/<ts>, the other runs/<ts>-2.
      expect(names.map((n) => n.slice(stamps[0]![1]!.length)).sort()).toEqual(['', '-2']);
    } else {
      expect(stamps.map((m) => m![2])).toEqual([undefined, undefined]);
    }
    for (const p of paths) {
      const runDir = p.slice(0, -'/run.json'.length);
      const summary = readSummary(ws, p);
      expect(summary.results).toHaveLength(2);
      for (const r of summary.results) expect(r.evidence!.startsWith(`${runDir}/logs/`)).toBe(true);
    }
  });

  it('a second that already has a run directory gets <ts>-2, -3…; the old one is untouched', async () => {
    const ws = workspace();
    writeJson(ws, 'plan.json', planOf({ 'Queue A — Tiny': ['TASK-001'] }));
    // Earlier runs in every second of the next minute (each with its run.json).
    const taken = new Map<string, string>();
    for (let s = -1; s < 60; s++) {
      const iso = new Date(Date.now() + s * 1000).toISOString();
      const stamp = stampOf(iso);
      const dir = join(ws.cwd, 'runs', stamp);
      mkdirSync(join(dir, 'logs'), { recursive: true });
      const body = JSON.stringify({ status: 'ok', started: iso, ended: iso, results: [] });
      writeFileSync(join(dir, 'run.json'), body);
      taken.set(stamp, body);
    }
    const runs = await Promise.all([
      warden(ws, ['exec', '--plan', 'plan.json', '--quiet']),
      warden(ws, ['exec', '--plan', 'plan.json', '--quiet']),
    ]);
    const names = runs.map((r) => {
      expect(r.code, r.stderr).toBe(0);
      return summaryPath(r).split('/')[1]!;
    });
    expect(new Set(names).size).toBe(2);
    const parsed = names.map((n) => /^(\d{8}_\d{6}Z)-(\d+)$/.exec(n));
    for (const [i, m] of parsed.entries()) {
      expect(m, names[i]).not.toBeNull();
      expect(taken.has(m![1]!)).toBe(true);
      expect(Number(m![2])).toBeGreaterThanOrEqual(2);
      expect(readSummary(ws, `runs/${names[i]!}/run.json`).results).toHaveLength(1);
    }
    if (parsed[0]![1] === parsed[1]![1])
      expect(parsed.map((m) => m![2]).sort()).toEqual(['2', '3']);
    for (const [stamp, body] of taken)
      expect(readFileSync(join(ws.cwd, 'runs', stamp, 'run.json'), 'utf8')).toBe(body);
  });
});

describe('warden exec: duplicate task ids', () => {
  it('runs every occurrence; the second one names its files <id>-2', async () => {
    const ws = workspace();
    writeJson(
      ws,
      'plan.json',
      planOf({ 'Queue A — One': ['TASK-001', 'TASK-002'], 'Queue B — Two': ['TASK-001'] }),
    );
    const result = await warden(ws, ['exec', '--plan', 'plan.json', '--quiet']);
    expect(result.code, result.stderr).toBe(0);
    const path = summaryPath(result);
    // A bare plan.json: runs/<ts>/… (no leading directory).
    expect(path).toMatch(/^runs\/\d{8}_\d{6}Z\/run\.json$/);
    const runDir = path.slice(0, -'/run.json'.length);
    const summary = readSummary(ws, path);
    expect(summary.results.map((r) => [r.task, r.queue])).toEqual([
      ['TASK-001', 'Queue A — One'],
      ['TASK-002', 'Queue A — One'],
      ['TASK-001', 'Queue B — Two'],
    ]);
    const first = summary.results[0]!.evidence!;
    const second = summary.results[2]!.evidence!;
    expect(first).toMatch(new RegExp(`^${runDir}/logs/TASK-001_noop_\\d{8}_\\d{6}Z\\.txt$`));
    expect(second).toMatch(new RegExp(`^${runDir}/logs/TASK-001-2_noop_\\d{8}_\\d{6}Z\\.txt$`));
    // Each occurrence keeps its own evidence: the file text names the real id and its queue.
    expect(readFileSync(join(ws.cwd, first), 'utf8')).toMatch(/^NOOP: TASK-001 in Queue A — One /);
    expect(readFileSync(join(ws.cwd, second), 'utf8')).toMatch(/^NOOP: TASK-001 in Queue B — Two /);
    expect(readdirSync(join(ws.cwd, runDir, 'logs'))).toHaveLength(3);
  });
});

const SOT = [
  '# Example SoT',
  '### G. Execution Queue & Task Hooks',
  '1. **Queue A — Workspace Bootstrapping**',
  '   - Tasks: `TASK-001`, `TASK-022`',
  '2. **Queue B — Services & Monitoring**',
  '   - Tasks: `TASK-042`, `TASK-001`',
  '### H. Next section',
  '',
].join('\n');

describe('warden run --plan and warden plan', () => {
  it('plan → run --plan: the alias behaves like exec (output, files, flags)', async () => {
    const ws = workspace();
    writeFile(ws, 'sot.md', SOT);
    const planned = await warden(ws, ['plan', '--sot', 'sot.md', '--out', 'state/plan.json']);
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toBe('[ok] plan written: state/plan.json\n');

    const ran = await warden(ws, ['run', '--plan', 'state/plan.json', '--quiet']);
    expect(ran.code, ran.stderr).toBe(0);
    const path = summaryPath(ran);
    expect(path).toMatch(/^state\/runs\/\d{8}_\d{6}Z\/run\.json$/);
    const summary = readSummary(ws, path);
    expect(summary.status).toBe('ok');
    expect(summary.results.map((r) => `${r.task}|${r.queue}|${r.status}`)).toEqual([
      'TASK-001|Queue A — Workspace Bootstrapping|noop',
      'TASK-022|Queue A — Workspace Bootstrapping|noop',
      'TASK-042|Queue B — Services & Monitoring|noop',
      'TASK-001|Queue B — Services & Monitoring|noop',
    ]);
    expect(summary.results[3]!.evidence).toMatch(/\/logs\/TASK-001-2_noop_/);

    // The exec flags come with the alias: the same validation, before anything exists.
    const bad = await warden(ws, ['run', '--plan', 'state/plan.json', '--max-workers', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^\[error\] --max-workers must be an integer/);
    const missing = await warden(ws, ['run', '--plan', 'nope.json']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('[error] plan not found: nope.json\n');
    expect(runDirs(ws, 'state')).toEqual([path.split('/')[2]]);

    // --dry-run through the alias too.
    const dry = await warden(ws, ['run', '--plan=state/plan.json', '--dry-run', '--quiet']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(readSummary(ws, summaryPath(dry)).results.every((r) => r.status === 'noop')).toBe(true);
  });

  it('plan --check accepts a good plan and reports a bad one', async () => {
    const ws = workspace();
    writeJson(ws, 'good.json', planOf({ 'Queue A — One': ['TASK-001', 'TASK-002'], Q2: ['T-3'] }));
    const good = await warden(ws, ['plan', '--check', 'good.json']);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toBe('[ok] plan valid: good.json (2 queues, 3 tasks)\n');

    writeJson(ws, 'noid.json', { version: 1, queues: [{ name: 'Q', tasks: [{ title: 'x' }] }] });
    const noId = await warden(ws, ['plan', '--check', 'noid.json']);
    expect(noId.code).toBe(1);
    expect(noId.stdout).toBe('');
    expect(noId.stderr).toMatch(/^\[error\] invalid plan noid\.json: queues\[0\]\.tasks\[0\]\.id/);

    writeJson(ws, 'v2.json', { version: 2, queues: [] });
    const v2 = await warden(ws, ['plan', '--check', 'v2.json']);
    expect(v2.code).toBe(1);
    expect(v2.stderr).toMatch(/^\[error\] invalid plan v2\.json: version/);

    writeJson(ws, 'hooks.json', { 'Queue A — One': [{ cmd: ['true'] }] });
    const hooks = await warden(ws, ['plan', '--check', 'good.json', '--hooks', 'hooks.json']);
    expect(hooks.code).toBe(1);
    expect(hooks.stderr).toMatch(/^\[error\] invalid hooks file hooks\.json: Queue A — One/);

    const missing = await warden(ws, ['plan', '--check', 'missing.json']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('[error] plan not found: missing.json\n');
  });
});
