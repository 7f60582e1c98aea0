/**
 * Effect chaos test (issue 6): a workflow whose TypeScript agent calls a tool through
 * `ctx.effect()` — the tool appends a line naming the step to a sink file, and its `reconcile`
 * looks the line up there — runs in a child process that is SIGKILLed at least 20 times, each
 * kill aimed at the effect: mostly between the effect's return and the step's commit (the agent
 * sleeps there), every third one inside the tool right after its append (before `done` is
 * recorded). After each kill a new child reclaims the dead worker's step at once and retries
 * it; a last child runs the workflow to the end. Then:
 * - every step's tool call happened exactly once (one line per step in the sink), though steps
 *   were retried after kills that followed the append — replayed from `done`, or reconciled
 *   from the sink when `done` was never recorded;
 * - every effect is `done`, nothing was superseded, and the run's tool-call usage counts each
 *   call once;
 * - the run completed with every stage's output, and the event ledger verifies.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { buildWorkflow } from '../../src/core/index.ts';
import { Kernel, verifyLedger } from '../../src/kernel/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';

const STAGES = 30;
/** Kills that land on an effect (a child killed before reaching one is not counted). */
const KILLS = 20;
/** A bound on all children, so a machine where kills keep missing fails instead of hanging. */
const MAX_CHILDREN = 80;

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const WORKER = fileURLToPath(new URL('../helpers/effect-chaos-worker.ts', import.meta.url));

interface ChildLine {
  started?: number;
  applying?: string;
  effected?: string;
  how?: 'applied' | 'reconciled' | 'replayed';
  finished?: number;
}

interface ChildRun {
  readonly lines: ChildLine[];
  readonly killed: boolean;
  readonly code: number | null;
  readonly stderr: string;
}

/**
 * Runs one child. With `aim`, it is SIGKILLed a random moment after it reports a fresh effect:
 * `after` — up to 60 ms after `ctx.effect` returned (an applied or reconciled effect; inside the
 * agent's sleep before the step commits); `inside` — up to 25 ms after the tool started
 * appending (inside its slow acknowledgement, before `done` is recorded).
 */
function runChild(
  db: string,
  sink: string,
  aim: 'after' | 'inside' | null,
  timeoutMs: number,
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [WORKER, db, sink], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: ChildLine[] = [];
    let out = '';
    let stderr = '';
    let killed = false;
    let armed: NodeJS.Timeout | undefined;
    const kill = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killed = true;
      child.kill('SIGKILL');
    };
    const arm = (maxMs: number): void => {
      armed ??= setTimeout(kill, Math.floor(Math.random() * maxMs));
    };
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const text = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (text.trim() === '') continue;
        const line = JSON.parse(text) as ChildLine;
        lines.push(line);
        if (aim === 'inside' && line.applying !== undefined) arm(25);
        if (aim === 'after' && line.effected !== undefined && line.how !== 'replayed') arm(60);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const guard = setTimeout(kill, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(armed);
      clearTimeout(guard);
      resolve({ lines, killed, code, stderr });
    });
  });
}

describe('effects under SIGKILL', () => {
  afterAll(removeTempDirs);

  it(`performs every tool call of a workflow exactly once through ${KILLS}+ SIGKILLs aimed at its effects`, async () => {
    const dir = tempDir('warden-effect-chaos-');
    const dbFile = join(dir, 'warden.db');
    const sink = join(dir, 'sink.txt');

    // 1. Start the run, then close: the children do all the work.
    let pid: string;
    {
      const store = await openSqliteStore({ file: dbFile });
      const kernel = new Kernel({ store });
      const stages = Array.from({ length: STAGES }, (_, i) => ({
        name: `s${i}`,
        agent: { kind: 'typescript' as const, name: 'append' },
        // Each kill costs the step an attempt; a short backoff keeps it claimable.
        retry: { max_attempts: 50, backoff: 5, max_backoff: 20 },
        default_next: i + 1 < STAGES ? `s${i + 1}` : 'end',
      }));
      const run = await kernel.startRun({
        workflow: buildWorkflow({
          name: 'effect-chain',
          bounds: { max_agent_hops: STAGES + 5, max_iterations: 5, timeout: '10m' },
          stages,
        }),
      });
      pid = run.pid;
      kernel.close();
      await store.close();
    }

    // 2. Kill children on their effects until KILLS kills landed; then one more runs to the end.
    const runs: ChildRun[] = [];
    let kills = 0;
    for (;;) {
      expect(runs.length, 'too many children: kills keep missing').toBeLessThan(MAX_CHILDREN);
      const killing = kills < KILLS;
      const aim = killing ? (kills % 3 === 2 ? 'inside' : 'after') : null;
      const run = await runChild(dbFile, sink, aim, killing ? 30_000 : 60_000);
      runs.push(run);
      if (run.killed) {
        if (!killing) throw new Error(`the final child had to be killed (timeout):\n${run.stderr}`);
        if (run.lines.some((l) => l.applying !== undefined || l.effected !== undefined)) kills += 1;
        continue;
      }
      if (run.code !== 0)
        throw new Error(`child exited with code ${String(run.code)}:\n${run.stderr}`);
      expect(killing, 'the workflow ended before enough kills landed').toBe(false);
      break;
    }
    expect(kills).toBeGreaterThanOrEqual(KILLS);

    // 3. Every step's tool call happened exactly once.
    const lines = existsSync(sink) ? readFileSync(sink, 'utf8').split('\n').filter(Boolean) : [];
    const perStep = new Map<string, number>();
    for (const line of lines) perStep.set(line, (perStep.get(line) ?? 0) + 1);
    const expected = Array.from({ length: STAGES }, (_, i) => `${pid}:${i + 1}`);
    expect([...perStep.keys()].sort()).toEqual([...expected].sort());
    expect([...perStep.entries()].filter(([, n]) => n !== 1)).toEqual([]);

    // Kills landed where they should: effects were replayed from `done` and reconciled.
    const all = runs.flatMap((r) => r.lines);
    const replayed = all.filter((l) => l.how === 'replayed').length;
    const reconciled = all.filter((l) => l.how === 'reconciled').length;
    expect(replayed).toBeGreaterThan(0);
    expect(reconciled).toBeGreaterThan(0);

    const store = await openSqliteStore({ file: dbFile });
    try {
      const p = (await store.getProcess(pid))!;
      expect(p).toMatchObject({ state: 'terminated', terminal_reason: 'completed' });
      for (let i = 0; i < STAGES; i++)
        expect(p.envelope.outputs[`s${i}`]).toEqual({ line: `${pid}:${i + 1}` });
      // Each tool call counted once: replays count nothing, a reconciled call counts once.
      expect(p.usage.tool_calls).toBe(STAGES);
      for (const line of expected) {
        expect(await store.getEffect(`${line}:fx:append`)).toMatchObject({
          status: 'done',
          result: line,
        });
      }
      const events = await store.readEvents({ sessionId: p.session_id, limit: 10_000 });
      expect(events.filter((e) => e.type === 'effect.superseded')).toEqual([]);
      expect(events.filter((e) => e.type === 'effect.completed')).toHaveLength(STAGES);
      const ledger = await verifyLedger(store);
      expect(ledger.ok).toBe(true);
      console.info(
        `effect chaos: ${kills} SIGKILLs in ${runs.length} children, ${replayed} effects replayed, ${reconciled} reconciled, ${STAGES} tool calls each made once`,
      );
    } finally {
      await store.close();
    }
  }, 180_000);
});
