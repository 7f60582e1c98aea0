/**
 * Crash test of parallel stages: a worker process running several branches of a parallel run
 * at once is SIGKILLed while they run (mid-fork), several times; a new worker process reclaims
 * the dead worker's branches and the run completes. Then: every branch's stage.completed was
 * written exactly once, no finished branch ever started again, each branch counted one hop,
 * and the ledger verifies.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { buildWorkflow } from '../../src/core/index.ts';
import { Kernel, verifyLedger } from '../../src/kernel/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { killChildren, spawnScript } from '../helpers/child.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const WORKER = fileURLToPath(new URL('../helpers/worker-process.ts', import.meta.url));
const KILLS = 4;

const branch = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  agent: { kind: 'noop', delay: 400, output: { from: name } },
  retry: { max_attempts: 20, backoff: 10, max_backoff: 50 },
  ...extra,
});

/** Two fan-outs and three joins: 13 stages, at most 6 ready at once. */
const workflow = buildWorkflow({
  name: 'parallel-kill',
  mode: 'parallel',
  bounds: { max_agent_hops: 20, timeout: '10m' },
  stages: [
    ...['b0', 'b1', 'b2', 'b3', 'b4', 'b5'].map((name) => branch(name)),
    branch('j1', { requires: ['b0', 'b1', 'b2'] }),
    branch('j2', { requires: ['b3', 'b4', 'b5'] }),
    ...['c0', 'c1', 'c2', 'c3'].map((name) => branch(name, { after: ['j1'] })),
    branch('final', { requires: ['j2', 'c0', 'c1', 'c2', 'c3'] }),
  ],
});
const STAGES = workflow.workflow.stages.map((s) => s.name);

afterEach(killChildren);
afterAll(removeTempDirs);

describe('parallel stages survive SIGKILL', () => {
  it(`a worker killed ${KILLS} times mid-fork: every branch completes exactly once`, async () => {
    const dir = tempDir();
    const db = join(dir, 'warden.db');
    const store = await openSqliteStore({ file: db });
    const kernel = new Kernel({ store });
    const run = await kernel.startRun({ workflow });
    kernel.close();
    await store.close();

    const check = new Database(db, { readonly: true });
    const count = (sql: string) => (check.prepare(sql).get() as { n: number }).n;
    try {
      let kills = 0;
      while (kills < KILLS) {
        const before = count("SELECT count(*) AS n FROM events WHERE type = 'stage.completed'");
        if (before >= STAGES.length - 1) break; // too little left to kill mid-fork
        const child = spawnScript(WORKER, [db, join(dir, 'sink.jsonl')]);
        // Kill while two or more branches run in this child (it holds their leases).
        const held = check.prepare(
          "SELECT count(*) AS n FROM tasks WHERE state = 'running' AND lease_owner LIKE ?",
        );
        await waitFor(
          () => (held.get(`%/${child.pid}/%`) as { n: number }).n >= 2,
          20_000,
          'two branches running in the worker',
        );
        await sleep(Math.floor(Math.random() * 250));
        await child.kill();
        kills += 1;
      }
      expect(kills).toBeGreaterThanOrEqual(2);

      const last = spawnScript(WORKER, [db, join(dir, 'sink.jsonl')]);
      expect(await last.exited).toBe(0);

      const p = check.prepare('SELECT state, terminal_reason, usage FROM processes').get() as {
        state: string;
        terminal_reason: string;
        usage: string;
      };
      expect([p.state, p.terminal_reason]).toEqual(['terminated', 'completed']);
      // One hop per branch, however often a branch was run again after a kill.
      expect((JSON.parse(p.usage) as { agent_hops: number }).agent_hops).toBe(STAGES.length);

      const events = check
        .prepare(
          "SELECT seq, type, json_extract(data, '$.stage') AS stage FROM events WHERE process_id = ? AND type IN ('stage.started', 'stage.completed', 'stage.forked') ORDER BY seq",
        )
        .all(run.pid) as Array<{ seq: number; type: string; stage: string }>;
      for (const stage of STAGES) {
        const of = events.filter((e) => e.stage === stage);
        const completed = of.filter((e) => e.type === 'stage.completed');
        expect(completed, stage).toHaveLength(1);
        expect(
          of.filter((e) => e.type === 'stage.forked'),
          stage,
        ).toHaveLength(1);
        // A finished branch never started again.
        expect(
          of.filter((e) => e.type === 'stage.started' && e.seq > completed[0]!.seq),
          stage,
        ).toEqual([]);
      }
      // Kills landed mid-branch: the dead worker's leases were reclaimed and run again.
      expect(
        count("SELECT count(*) AS n FROM events WHERE type = 'task.lease_expired'"),
      ).toBeGreaterThan(0);
      const reruns = count(
        "SELECT count(*) AS n FROM events WHERE type = 'stage.started' AND json_extract(data, '$.attempt') > 1",
      );
      expect(reruns).toBeGreaterThan(0);
      expect(count("SELECT count(*) AS n FROM tasks WHERE state = 'succeeded'")).toBe(
        STAGES.length,
      );
      expect(count("SELECT count(*) AS n FROM tasks WHERE state <> 'succeeded'")).toBe(0);
      expect(
        check
          .prepare(
            "SELECT task_id, count(*) AS n FROM attempts WHERE outcome = 'succeeded' GROUP BY task_id HAVING n > 1",
          )
          .all(),
      ).toEqual([]);
      // Branches ran at the same time: some branch started before another one completed.
      const starts = events.filter((e) => e.type === 'stage.started').map((e) => e.seq);
      const ends = events.filter((e) => e.type === 'stage.completed').map((e) => e.seq);
      expect(starts.filter((s) => s < Math.min(...ends)).length).toBeGreaterThanOrEqual(2);
      console.info(`parallel crash test: ${kills} SIGKILLs, ${reruns} branch attempts run again`);
    } finally {
      check.close();
    }
    const reopened = await openSqliteStore({ file: db });
    try {
      expect((await verifyLedger(reopened)).ok).toBe(true);
    } finally {
      await reopened.close();
    }
  }, 180_000);
});
