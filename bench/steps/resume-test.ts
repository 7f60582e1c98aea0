/**
 * Resume-after-kill: a graph run is started in one process and SIGKILLed while node KILL_AT is
 * executing (after its side effect, before its step is recorded); a fresh process then opens the
 * same database and drives the run to completion. Measures that second process (spawn → exit,
 * and open → finished inside it) and counts node executions from the side-effect file: a node
 * that ran twice was re-executed because of the kill.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { StepsMessage } from './child.ts';
import { STAGES } from './graph.ts';

const childPath = join(dirname(fileURLToPath(import.meta.url)), 'child.ts');

export interface ResumeResult {
  readonly ok: boolean;
  readonly error?: string;
  /** Resume process: fork → exit, ms (includes Node start-up and loading the modules). */
  readonly wallMs?: number;
  /** Inside the resume process: loading the system's modules, ms (not in inProcessMs). */
  readonly loadMs?: number;
  /** Inside the resume process: opening the database → run finished, ms. */
  readonly inProcessMs?: number;
  /** Of which opening (store, kernel, recovery, worker start / checkpointer), ms. */
  readonly openMs?: number;
  /** Node executions across both processes (STAGES when nothing ran twice). */
  readonly executions: number;
  /** Executions beyond one per node. */
  readonly reexecuted: number;
  /** The nodes that ran more than once. */
  readonly reexecutedNodes: number[];
}

function messages(child: ChildProcess) {
  const seen: StepsMessage[] = [];
  const waiters: Array<() => void> = [];
  child.on('message', (m: StepsMessage) => {
    seen.push(m);
    for (const w of waiters.splice(0)) w();
  });
  child.on('exit', () => {
    for (const w of waiters.splice(0)) w();
  });
  /** Resolves with the first message of this type (rejects on fatal, exit or timeout). */
  return async <T extends StepsMessage['type']>(type: T, timeoutMs: number) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const m = seen.find((x) => x.type === type);
      if (m) return m as Extract<StepsMessage, { type: T }>;
      const fatal = seen.find((x) => x.type === 'fatal');
      if (fatal?.type === 'fatal') throw new Error(fatal.error);
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before '${type}'`);
      if (performance.now() > deadline) throw new Error(`no '${type}' within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

function countExecutions(counter: string) {
  const perNode = new Array<number>(STAGES).fill(0);
  const lines = existsSync(counter)
    ? readFileSync(counter, 'utf8').split('\n').filter(Boolean)
    : [];
  for (const line of lines) {
    const index = Number(line.split(' ')[0]);
    if (index >= 0 && index < STAGES) perNode[index]! += 1;
  }
  return { total: lines.length, perNode };
}

export async function resumeAfterKill(
  system: string,
  dir: string,
  rep: number,
): Promise<ResumeResult> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `resume-${system}-${rep}.db`);
  const counter = `${file}.nodes`;
  const cleanup = () => {
    for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-wake`, counter])
      rmSync(f, { force: true });
  };
  cleanup();
  const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc'];
  let crashProcess: ChildProcess | undefined;
  let resumeProcess: ChildProcess | undefined;
  try {
    crashProcess = fork(childPath, ['crash', system, file, counter], { stdio });
    const crashed = messages(crashProcess);
    const { id } = await crashed('begun', 60_000);
    await crashed('at-kill', 60_000);
    crashProcess.kill('SIGKILL');
    await exited(crashProcess);

    const t0 = performance.now();
    resumeProcess = fork(childPath, ['resume', system, file, counter, id], { stdio });
    const resumed = messages(resumeProcess);
    const done = await resumed('resumed', 120_000);
    await exited(resumeProcess);
    const wallMs = performance.now() - t0;

    const { total, perNode } = countExecutions(counter);
    const missing = perNode.flatMap((c, i) => (c === 0 ? [i] : []));
    return {
      ok: missing.length === 0,
      ...(missing.length ? { error: `nodes never executed: ${missing.join(', ')}` } : {}),
      wallMs,
      loadMs: done.loadMs,
      inProcessMs: done.inProcessMs,
      openMs: done.openMs,
      executions: total,
      reexecuted: total - STAGES,
      reexecutedNodes: perNode.flatMap((c, i) => (c > 1 ? [i] : [])),
    };
  } catch (error) {
    crashProcess?.kill('SIGKILL');
    resumeProcess?.kill('SIGKILL');
    const { total, perNode } = countExecutions(counter);
    return {
      ok: false,
      error: error instanceof Error ? error.message : String(error),
      executions: total,
      reexecuted: Math.max(0, total - STAGES),
      reexecutedNodes: perNode.flatMap((c, i) => (c > 1 ? [i] : [])),
    };
  } finally {
    cleanup();
  }
}
