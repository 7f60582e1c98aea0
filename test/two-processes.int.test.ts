/**
 * Two OS processes working the same database at once never corrupt it and never run the same
 * step twice concurrently (issue 2).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

import { buildWorkflow } from '../src/core/index.ts';
import { Kernel, verifyLedger } from '../src/kernel/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const WORKER = fileURLToPath(new URL('./helpers/worker-process.ts', import.meta.url));
const RUNS = 30;
const STAGES = 5;

function runWorker(db: string, sink: string, barrier: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, db, sink, barrier, '2'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('close', resolve);
  });
}

describe('two processes, one database', () => {
  afterAll(removeTempDirs);

  it('share the work without running any step twice or overlapping', async () => {
    const dir = tempDir();
    const db = join(dir, 'warden.db');
    const sink = join(dir, 'executions.jsonl');
    writeFileSync(sink, '');
    const store = await openSqliteStore({ file: db });
    const kernel = new Kernel({
      store,
      rateLimits: { per_minute: 10_000, per_hour: 100_000, per_day: 1_000_000, burst: 1_000 },
    });
    const workflow = buildWorkflow({
      name: 'shared',
      bounds: { max_agent_hops: STAGES + 1 },
      stages: Array.from({ length: STAGES }, (_, i) => ({
        name: `s${i}`,
        agent: { kind: 'typescript', name: 'record' },
        ...(i + 1 < STAGES ? { default_next: `s${i + 1}` } : {}),
      })),
    });
    const pids = new Set<string>();
    for (let i = 0; i < RUNS; i++)
      pids.add((await kernel.startRun({ workflow, sessionKey: `s${i % 3}` })).pid);
    kernel.close();
    await store.close();

    // Both workers start together (a barrier), else under load one can finish every step
    // before the other has even opened the database.
    const barrier = join(dir, 'barrier');
    mkdirSync(barrier);
    const codes = await Promise.all([runWorker(db, sink, barrier), runWorker(db, sink, barrier)]);
    expect(codes).toEqual([0, 0]);

    const executions = readFileSync(sink, 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            pid: string;
            step: number;
            os_pid: number;
            start: number;
            end: number;
          },
      );
    // No crashes happened, so every step ran exactly once, by one of the two processes.
    expect(executions).toHaveLength(RUNS * STAGES);
    const keys = executions.map((e) => `${e.pid}#${e.step}`);
    expect(new Set(keys).size).toBe(RUNS * STAGES);
    expect(new Set(executions.map((e) => e.os_pid)).size).toBe(2);
    // Steps of one run never overlap in time (each waits for its predecessor's commit).
    for (const pid of pids) {
      const steps = executions.filter((e) => e.pid === pid).sort((a, b) => a.step - b.step);
      expect(steps.map((s) => s.step)).toEqual(Array.from({ length: STAGES }, (_, i) => i + 1));
      for (let i = 1; i < steps.length; i++)
        expect(steps[i]!.start).toBeGreaterThanOrEqual(steps[i - 1]!.end);
    }

    const check = new Database(db, { readonly: true });
    try {
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
      const states = check
        .prepare('SELECT state, terminal_reason, count(*) AS n FROM processes GROUP BY 1, 2')
        .all();
      expect(states).toEqual([{ state: 'terminated', terminal_reason: 'completed', n: RUNS }]);
      const doubled = check
        .prepare(
          "SELECT json_extract(data,'$.step') AS step, process_id, count(*) AS n FROM events WHERE type='stage.completed' GROUP BY 1, 2 HAVING n > 1",
        )
        .all();
      expect(doubled).toEqual([]);
    } finally {
      check.close();
    }
    const reopened = await openSqliteStore({ file: db });
    try {
      expect((await verifyLedger(reopened)).ok).toBe(true);
    } finally {
      await reopened.close();
    }
  });
});
