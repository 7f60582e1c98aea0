/**
 * Crash test (issue 2): a child `warden run` working through a long workflow is SIGKILLed at
 * random points, at least 20 times; after each kill `warden resume` continues it (and is killed
 * again) until the run completes. Then: no committed step was lost (steps 1..N each completed
 * exactly once, in order), no stage's output was recorded twice, and the ledger verifies.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

import { json, runCli, spawnCli } from '../helpers/cli.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';

const STAGES = 40;
const KILLS = 24;

function longWorkflow(): string {
  const stages = Array.from({ length: STAGES }, (_, i) => {
    const next = i + 1 < STAGES ? `s${i + 1}` : 'end';
    return `  - name: s${i}
    agent: { kind: noop, delay: 80, output: { index: ${i} } }
    retry: { max_attempts: 50, backoff: 10, max_backoff: 50 }
    default_next: ${next}`;
  });
  return `name: long-chain
bounds: { max_agent_hops: ${STAGES + 5}, max_iterations: 5, timeout: 10m }
stages:
${stages.join('\n')}
`;
}

/**
 * Runs the CLI and SIGKILLs it at a random point: usually a random 0-400 ms after its first step
 * started (mid-work), sometimes a random 100-900 ms after spawn (mid start-up or recovery).
 * `ms` null lets it finish.
 */
function runAndMaybeKill(
  args: string[],
  home: string,
  kill: boolean,
): Promise<{ killed: boolean; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawnCli(args, { home });
    child.stderr!.resume();
    let exited = false;
    let timer: NodeJS.Timeout | undefined;
    const killLater = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, ms);
    };
    const midWork = Math.random() < 0.75;
    if (kill && !midWork) killLater(100 + Math.floor(Math.random() * 800));
    let armed = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      if (kill && midWork && !armed && chunk.toString().includes('▸')) {
        armed = true;
        killLater(Math.floor(Math.random() * 400));
      }
    });
    child.on('close', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL', code });
    });
  });
}

describe('crash and resume', () => {
  afterAll(removeTempDirs);

  it(`survives ${KILLS}+ SIGKILLs without losing or repeating a committed step`, async () => {
    const home = tempDir();
    const file = join(home, 'long.yaml');
    writeFileSync(file, longWorkflow());
    expect((await runCli(['init'], { home })).code).toBe(0);

    let kills = 0;
    let first = true;
    let finished = false;
    while (kills < KILLS || !finished) {
      const args = first ? ['run', file, '--no-interactive'] : ['resume', '--no-interactive'];
      const result = await runAndMaybeKill(args, home, kills < KILLS);
      if (result.killed) kills += 1;
      else finished = true;
      const ps = json<Array<{ state: string }>>(await runCli(['ps', '--json'], { home }));
      if (ps.length > 0) first = false;
      if (ps.length > 0 && ps.every((p) => p.state === 'terminated')) finished = true;
      if (kills >= KILLS && !finished) continue;
    }
    expect(kills).toBeGreaterThanOrEqual(KILLS);

    const runs = json<
      Array<{
        pid: string;
        state: string;
        terminal_reason: string;
        outputs: Record<string, { index: number }>;
      }>
    >(await runCli(['ps', '--json'], { home }));
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    expect(run.state).toBe('terminated');
    expect(run.terminal_reason).toBe('completed');
    for (let i = 0; i < STAGES; i++) expect(run.outputs[`s${i}`]).toEqual({ index: i });

    const db = new Database(join(home, 'warden.db'), { readonly: true });
    try {
      const completed = db
        .prepare(
          "SELECT json_extract(data, '$.step') AS step, json_extract(data, '$.stage') AS stage FROM events WHERE type = 'stage.completed' ORDER BY seq",
        )
        .all() as Array<{ step: number; stage: string }>;
      // Every step committed exactly once, in order: nothing lost, nothing recorded twice.
      expect(completed.map((c) => c.step)).toEqual(Array.from({ length: STAGES }, (_, i) => i + 1));
      expect(completed.map((c) => c.stage)).toEqual(
        Array.from({ length: STAGES }, (_, i) => `s${i}`),
      );
      const succeeded = db
        .prepare("SELECT count(*) AS n FROM tasks WHERE state = 'succeeded'")
        .get() as { n: number };
      expect(succeeded.n).toBe(STAGES);
      const stale = db
        .prepare("SELECT count(*) AS n FROM tasks WHERE state NOT IN ('succeeded')")
        .get() as { n: number };
      expect(stale.n).toBe(0);
      // Each task succeeded through exactly one attempt outcome 'succeeded'.
      const doubled = db
        .prepare(
          "SELECT task_id, count(*) AS n FROM attempts WHERE outcome = 'succeeded' GROUP BY task_id HAVING n > 1",
        )
        .all();
      expect(doubled).toEqual([]);
      // Some kills landed mid-step: their leases were reclaimed from the dead worker on resume.
      const reclaimed = db
        .prepare("SELECT count(*) AS n FROM events WHERE type = 'task.lease_expired'")
        .get() as { n: number };
      expect(reclaimed.n).toBeGreaterThan(0);
      console.info(
        `crash test: ${kills} SIGKILLs, ${reclaimed.n} mid-step leases reclaimed, ${STAGES} steps each committed once`,
      );
    } finally {
      db.close();
    }
    const ledger = await runCli(['ledger', 'verify', '--json'], { home });
    expect(ledger.code).toBe(0);
    expect(json<{ ok: boolean }>(ledger).ok).toBe(true);
  }, 600_000);
});
