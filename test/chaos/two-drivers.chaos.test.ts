/**
 * Chaos (issue 6): two OS processes drive runs on one database, each a kernel plus a runtime
 * Worker (test/helpers/driver-process.ts). One of them — the victim — is SIGKILLed while it
 * holds a step; the other — the survivor, never restarted and never asked to recover — must
 * take the killed step back and finish every run. Repeated with a fresh victim each round.
 *
 * Checked after every kill: the killed step is taken back (task.lease_expired) and committed
 * again by the survivor within its lease expiry + 1 s (+ one step's duration for the re-run);
 * every run of the round completes; no step is committed twice (one stage.completed per run and
 * step). At the end: the ledger verifies and the survivor is the same OS process.
 *
 * Long test: about 20-40 s on a 2-core machine.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { buildWorkflow } from '../../src/core/index.ts';
import { Kernel, verifyLedger } from '../../src/kernel/index.ts';
import { openSqliteStore, type Store, type TaskRecord } from '../../src/store/index.ts';
import { type Child, killChildren, spawnScript } from '../helpers/child.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';
import { sleep } from '../helpers/wait.ts';

const DRIVER = fileURLToPath(new URL('../helpers/driver-process.ts', import.meta.url));
const LEASE_MS = 2_000;
const STEP_MS = 400;
const KILLS = 4;
const RUNS_PER_ROUND = 6;
const STAGES = 3;
/**
 * The survivor runs at most 3 steps at once, so a victim (8) always gets some of the 6 runs of a
 * round, whichever process wakes first.
 */
const SURVIVOR_CONCURRENCY = 3;
const VICTIM_CONCURRENCY = 8;
/**
 * On top of lease expiry + 1 s, the re-run itself: its retry backoff (≤ 50 ms), waiting for one
 * of the survivor's busy slots (one step) and the step (each step ≤ STEP_MS + 20 %).
 */
const RERUN_MS = 50 + 2 * Math.ceil(STEP_MS * 1.2);

afterEach(killChildren);
afterAll(removeTempDirs);

interface Driver {
  readonly child: Child;
  readonly workerId: string;
}

async function startDriver(
  file: string,
  sink: string,
  stopFile: string,
  concurrency: number,
): Promise<Driver> {
  const child = spawnScript(DRIVER, [
    file,
    sink,
    String(LEASE_MS),
    String(STEP_MS),
    stopFile,
    String(concurrency),
  ]);
  const ready = await child.line((l) => l.startsWith('{"ready":true'), 'the driver to start');
  return { child, workerId: (JSON.parse(ready) as { worker: string }).worker };
}

async function runningOf(store: Store, owner: string): Promise<TaskRecord[]> {
  return (await store.listTasks({ states: ['running'], limit: 10_000 })).filter(
    (t) => t.lease_owner === owner,
  );
}

describe('two drivers, one database, one of them killed', () => {
  it(`the survivor finishes every run after ${KILLS} SIGKILLs, without a restart`, async () => {
    const dir = tempDir();
    const file = join(dir, 'warden.db');
    const sink = join(dir, 'executions.jsonl');
    const stopFile = join(dir, 'stop');
    writeFileSync(sink, '');
    const store = await openSqliteStore({ file });
    // This kernel only starts runs: no Worker here, so nothing is reclaimed by the test itself.
    const kernel = new Kernel({
      store,
      rateLimits: { per_minute: 100_000, per_hour: 1_000_000, per_day: 10_000_000, burst: 10_000 },
    });
    const workflow = buildWorkflow({
      name: 'two-drivers',
      bounds: { max_agent_hops: STAGES + 2 },
      stages: Array.from({ length: STAGES }, (_, i) => ({
        name: `s${i}`,
        agent: { kind: 'typescript', name: 'slow' },
        retry: { max_attempts: 10, backoff: 10, max_backoff: 50 },
        ...(i + 1 < STAGES ? { default_next: `s${i + 1}` } : {}),
      })),
    });
    const survivor = await startDriver(file, sink, stopFile, SURVIVOR_CONCURRENCY);
    const allPids: string[] = [];
    let kills = 0;
    let misses = 0;
    try {
      while (kills < KILLS) {
        expect(misses, 'kills that found the victim holding no step').toBeLessThan(5);
        const victim = await startDriver(file, sink, stopFile, VICTIM_CONCURRENCY);
        const pids: string[] = [];
        for (let i = 0; i < RUNS_PER_ROUND; i++)
          pids.push((await kernel.startRun({ workflow, sessionKey: `k${kills}-${i % 2}` })).pid);
        allPids.push(...pids);

        // Kill the victim while it holds a step (a running task under its lease).
        const deadline = Date.now() + 15_000;
        while ((await runningOf(store, victim.workerId)).length === 0) {
          if (Date.now() > deadline) throw new Error('the victim never claimed a step');
          await sleep(5);
        }
        await sleep(Math.floor(Math.random() * 200));
        const killAt = Date.now();
        await victim.child.kill();
        const killed = await runningOf(store, victim.workerId);
        if (killed.length === 0) misses += 1;
        else kills += 1;

        // The survivor finishes every run of the round.
        const roundDeadline = Date.now() + 30_000;
        for (const pid of pids) {
          for (;;) {
            const p = await kernel.getProcess(pid);
            if (p.state === 'terminated') {
              expect(p.terminal_reason, `run ${pid}`).toBe('completed');
              break;
            }
            if (Date.now() > roundDeadline)
              throw new Error(
                `run ${pid} is still ${p.state} at stage ${p.current_stage} ${Date.now() - killAt} ms after the kill`,
              );
            await sleep(20);
          }
        }

        for (const task of killed) {
          const { step } = task.payload as { step: number };
          const events = await store.readEvents({
            sessionId: task.session_id,
            processId: task.process_id!,
            limit: 10_000,
          });
          const reclaimed = events.filter(
            (e) => e.type === 'task.lease_expired' && e.task_id === task.id,
          );
          expect(reclaimed, `reclaims of killed task ${task.id}`).toHaveLength(1);
          expect((reclaimed[0]!.data as { owner: string }).owner).toBe(victim.workerId);
          const completed = events.filter(
            (e) => e.type === 'stage.completed' && (e.data as { step: number }).step === step,
          );
          expect(completed, `commits of run ${task.process_id} step ${step}`).toHaveLength(1);
          const data = completed[0]!.data as { output: { by: number } };
          expect(data.output.by, 'the survivor re-ran the killed step').toBe(survivor.child.pid);
          const expiry = task.lease_expires_at!;
          console.info(
            `kill ${kills}: step ${step} of ${task.process_id} taken back ${reclaimed[0]!.ts - killAt} ms and committed ${completed[0]!.ts - killAt} ms after the kill (lease expiry ${expiry - killAt} ms after it)`,
          );
          expect(reclaimed[0]!.ts).toBeLessThanOrEqual(expiry + 1_000);
          expect(completed[0]!.ts).toBeLessThanOrEqual(expiry + 1_000 + RERUN_MS);
        }
      }
      expect(survivor.child.process.exitCode).toBeNull();
      writeFileSync(stopFile, '');
      expect(await survivor.child.exited).toBe(0);

      // No step committed twice, none lost.
      const commits = new Map<string, number>();
      for (const session of await store.listSessions())
        for (const e of await store.readEvents({ sessionId: session.id, limit: 100_000 }))
          if (e.type === 'stage.completed') {
            const key = `${e.process_id}#${(e.data as { step: number }).step}`;
            commits.set(key, (commits.get(key) ?? 0) + 1);
          }
      expect([...commits.values()].every((n) => n === 1)).toBe(true);
      expect(commits.size).toBe(allPids.length * STAGES);
      expect((await verifyLedger(store)).ok).toBe(true);
    } finally {
      writeFileSync(stopFile, '');
      kernel.close();
      await store.close();
    }
  }, 120_000);
});
