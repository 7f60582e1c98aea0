/**
 * `warden exec`'s engine: every planned task is a durable task in the run's own lane (its
 * concurrency is `--max-workers`, enforced by the store), claimed in plan order by an
 * in-process worker. Each task's side effects go through the effect journal — a noop's evidence
 * file, each hook command — so a run killed at any point and resumed never repeats a finished
 * effect, and every evidence file's sha256 is recorded in the event log (`effect.completed`).
 * Results come back from the store in plan order: exactly one per planned task (A.8 #2, #8).
 */
import {
  coerceError,
  isWardenError,
  type LoadedWorkflow,
  type TaskState,
  WardenError,
} from '../core/index.ts';
import {
  commandLogPath,
  type CommandRecord,
  errorResult,
  noopResult,
  type PlanItem,
  shellResult,
  type TaskResult,
  TimeBudget,
} from '../core/plan/index.ts';
import type { Kernel } from '../kernel/index.ts';
import { type JobContext, JobQueue, JobWorker } from '../queue/index.ts';
import type { Store, TaskRecord } from '../store/index.ts';
import type { CommandGate } from './command-gate.ts';
import { type HookCommandOutcome, runHookCommand } from './hook-command.ts';
import { noopEvidence } from './noop-agent.ts';
import type { ExecMarker } from './run-dir.ts';
import { runWorkflowItem } from './workflow-agent.ts';

export const PLAN_JOB = 'plan.task';

export interface TaskPayload {
  readonly exec: string;
  readonly index: number;
  readonly task: string;
  readonly queue: string;
}

export interface ExecProgress {
  readonly total: number;
  readonly done: number;
  readonly running: number;
  readonly failed: number;
  /** Tasks finished by this process (for the rate). */
  readonly doneHere: number;
  readonly elapsedMs: number;
}

export interface ExecuteOptions {
  readonly kernel: Kernel;
  readonly marker: ExecMarker;
  readonly runDir: string;
  readonly items: readonly PlanItem[];
  /** Decides hook commands; required when any item routes to `shell`. */
  readonly gate: CommandGate | null;
  /** The workflows `workflow` items run (a runtime worker must be running their steps). */
  readonly workflows?: ReadonlyMap<string, LoadedWorkflow>;
  readonly workspace: string;
  readonly signal: AbortSignal;
  readonly onProgress?: (progress: ExecProgress) => void;
  /** Called once the plan's tasks exist in the store (from then on the run is resumable). */
  readonly onSubmitted?: () => void;
  /** Called once per task this process finishes (tests count them). */
  readonly onTask?: (item: PlanItem, result: TaskResult) => void;
  /** Worker lease; short leases make a crashed run's tasks come back sooner on another host. */
  readonly leaseMs?: number;
}

/** Attempts the queue allows a task: crashes and Ctrl-C cost one each; the kit's retries are the handler's. */
const INFRA_ATTEMPTS = 1_000;
const ACTIVE: readonly TaskState[] = ['queued', 'running'];

export async function executePlan(options: ExecuteOptions): Promise<TaskResult[] | 'interrupted'> {
  const { kernel, marker, items } = options;
  const store = kernel.store;
  const queue = new JobQueue({
    store,
    clock: kernel.clock,
    sessions: kernel.sessions,
    lanes: { [marker.lane]: { concurrency: marker.max_workers } },
  });
  await queue.ready();
  const session = await kernel.sessions.ensure(marker.session);
  let tasks = await store.listTasks({ lane: marker.lane, limit: items.length + 1 });
  if (tasks.length === 0 && items.length > 0) {
    // One transaction: all of the plan's tasks exist, or none do.
    await queue.submitMany(
      items.map((item) => ({
        name: PLAN_JOB,
        payload: {
          exec: marker.exec_id,
          index: item.index,
          task: item.id,
          queue: item.queue,
        } satisfies TaskPayload,
        options: {
          lane: marker.lane,
          session: marker.session,
          idempotencyKey: `${marker.exec_id}/${item.index}`,
          attempts: INFRA_ATTEMPTS,
          backoff: { baseMs: 50, maxMs: 1_000 },
          poisonThreshold: 0,
        },
      })),
    );
    tasks = await store.listTasks({ lane: marker.lane, limit: items.length + 1 });
  }
  if (tasks.length !== items.length)
    throw new WardenError(
      'CONFLICT',
      `the store holds ${tasks.length} tasks for run ${marker.exec_id}, the plan has ${items.length}: the run cannot be resumed`,
    );
  options.onSubmitted?.();

  const budget =
    marker.budget_ms === null
      ? null
      : new BudgetBroker(new TimeBudget(marker.budget_ms, await spentSoFar(store, session.id)));
  const started = Date.now();
  let done = tasks.filter((t) => !ACTIVE.includes(t.state)).length;
  let failed = tasks.filter((t) => isFailed(t)).length;
  let running = 0;
  let doneHere = 0;
  const report = (): void =>
    options.onProgress?.({
      total: items.length,
      done,
      running,
      failed,
      doneHere,
      elapsedMs: Date.now() - started,
    });
  report();
  if (done === items.length) return collect(await readTasks(options), items);

  // A wake that comes while the loop below is busy is kept (`pending`), not lost.
  let pending = false;
  let resolveNext: (() => void) | null = null;
  const wake = (): void => {
    pending = true;
    resolveNext?.();
  };
  const worker = new JobWorker({
    queue,
    lanes: [marker.lane],
    concurrency: marker.max_workers,
    ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
  });
  worker.handle<TaskPayload, TaskResult>(PLAN_JOB, async (job) => {
    const item = items[job.payload.index];
    if (!item || item.id !== job.payload.task)
      throw new WardenError('CONFLICT', `task ${job.payload.task} is not in this plan`);
    running += 1;
    report();
    let result: TaskResult;
    try {
      result = await runItem(options, session.id, budget, job, item);
    } catch (error) {
      running -= 1;
      // Stopped (Ctrl-C, lost lease), or a passing condition (a rate limit, a busy store): the
      // task goes back to the queue and runs again.
      if (job.signal.aborted || isWardenError(error, 'LEASE_LOST') || coerceError(error).retryable)
        throw error;
      result = errorResult(item, coerceError(error).message);
      running += 1;
    }
    running -= 1;
    done += 1;
    doneHere += 1;
    if (result.status === 'error') failed += 1;
    options.onTask?.(item, result);
    report();
    wake();
    return result;
  });
  await worker.start();
  const interrupted = new Promise<void>((resolve) => {
    if (options.signal.aborted) resolve();
    options.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  // A finished task wakes the loop before the worker has settled it in the store; the settle's
  // commit wakes it again (without this, every run waited out the 1 s timer at its end).
  const unwatch = store.watchChanges(wake);
  try {
    for (;;) {
      // Wakes on each finished task and store commit, and once a second regardless.
      let ticked = false;
      if (!pending) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => {
            resolveNext = resolve;
            timer = setTimeout(() => {
              ticked = true;
              resolve();
            }, 1_000);
          }),
          interrupted,
        ]);
        clearTimeout(timer);
      }
      pending = false;
      resolveNext = null;
      if (options.signal.aborted) break;
      // The store is asked only when every task has come back here, or once a second (a task
      // may be waiting for a retry, or finished by another process): asking on every finished
      // task would scan the lane each time.
      if (done < items.length && !ticked) continue;
      const active = await store.listTasks({ lane: marker.lane, states: ACTIVE, limit: 1 });
      if (active.length === 0) break;
    }
  } finally {
    unwatch();
    await worker.stop({ abort: options.signal.aborted });
  }
  if (options.signal.aborted) return 'interrupted';
  const final = await readTasks(options);
  return collect(final, items);
}

const seconds = (ms: number): string => (ms / 1000).toFixed(2);

/**
 * Hands out the run's time budget to concurrent commands: a command that does not fit waits
 * while others hold reservations (they give back what they do not use); it is refused only
 * when nothing is reserved and it still does not fit.
 */
class BudgetBroker {
  readonly budget: TimeBudget;
  readonly #waiters = new Set<() => void>();

  constructor(budget: TimeBudget) {
    this.budget = budget;
  }

  async acquire(ms: number, signal: AbortSignal): Promise<boolean> {
    while (!this.budget.reserve(ms)) {
      if (this.budget.reservedMs === 0 || signal.aborted) return false;
      await new Promise<void>((resolve) => this.#waiters.add(resolve));
    }
    return true;
  }

  release(reservedMs: number, usedMs: number): void {
    this.budget.settle(reservedMs, usedMs);
    const waiting = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiting) wake();
  }
}

/** What the run's hook commands spent in earlier processes: their recorded durations. */
async function spentSoFar(store: Store, sessionId: string): Promise<number> {
  let spent = 0;
  let after = 0;
  for (;;) {
    const page = await store.readEvents({ sessionId, afterSeq: after, limit: 10_000 });
    for (const e of page) {
      const data = e.data as { tool?: string; duration_ms?: number };
      if (e.type === 'effect.completed' && data.tool === 'plan.command')
        spent += data.duration_ms ?? 0;
    }
    if (page.length < 10_000) return spent;
    after = page.at(-1)!.seq;
  }
}

function isFailed(task: TaskRecord): boolean {
  if (task.state === 'succeeded') return (task.result as TaskResult | null)?.status === 'error';
  return !ACTIVE.includes(task.state);
}

async function readTasks(options: ExecuteOptions): Promise<TaskRecord[]> {
  return options.kernel.store.listTasks({
    lane: options.marker.lane,
    limit: options.items.length + 1,
  });
}

/** One result per planned task, in plan order, whatever became of its durable task. */
function collect(tasks: readonly TaskRecord[], items: readonly PlanItem[]): TaskResult[] {
  const byIndex = new Map<number, TaskRecord>();
  for (const t of tasks) byIndex.set((t.payload as TaskPayload).index, t);
  return items.map((item) => {
    const task = byIndex.get(item.index);
    if (!task) return errorResult(item, 'the task is missing from the store');
    if (task.state === 'succeeded' && task.result) return task.result as TaskResult;
    return errorResult(
      item,
      task.last_error
        ? `${task.last_error.code}: ${task.last_error.message}`
        : `the task ended ${task.state}`,
    );
  });
}

async function runItem(
  options: ExecuteOptions,
  sessionId: string,
  budget: BudgetBroker | null,
  job: JobContext<TaskPayload>,
  item: PlanItem,
): Promise<TaskResult> {
  if (item.agent === 'noop') return runNoop(options.runDir, job, item);
  if (item.agent === 'workflow')
    return runWorkflowItem(
      options.kernel,
      options.workflows ?? new Map(),
      {
        runDir: options.runDir,
        sessionKey: options.marker.session,
        keyPrefix: effectKey(options, item),
      },
      job,
      item,
    );
  return runShell(options, sessionId, budget, job, item);
}

/** Effect keys are global: each names the run and the task's occurrence. */
function effectKey(options: ExecuteOptions, item: PlanItem): string {
  return `plan/${options.marker.exec_id}/${item.fileKey}`;
}

/** The kit's NoOpAgent; the evidence's sha256 rides in the task's `task.succeeded` event. */
function runNoop(runDir: string, job: JobContext<TaskPayload>, item: PlanItem): TaskResult {
  const evidence = noopEvidence(runDir, item, job.attempt);
  job.note({ evidence: evidence.path, sha256: evidence.sha256 });
  return noopResult(item, evidence.path);
}

/**
 * The kit's ShellAgent: every command in order (a failing one does not stop the next), each
 * through the policy first; with retries, the whole set again after a failure.
 */
async function runShell(
  options: ExecuteOptions,
  sessionId: string,
  budget: BudgetBroker | null,
  job: JobContext<TaskPayload>,
  item: PlanItem,
): Promise<TaskResult> {
  const specs = item.hook?.commands ?? [];
  const retries = item.hook?.retries ?? options.marker.retries;
  const timeoutMs =
    item.hook?.timeout !== undefined
      ? Math.round(item.hook.timeout * 1000)
      : options.marker.timeout_ms;
  let records: CommandRecord[] = [];
  for (let attempt = 1; attempt <= retries + 1; attempt++) {
    records = [];
    for (let i = 1; i <= specs.length; i++) {
      const spec = specs[i - 1]!;
      const argv = spec.cmd ?? [];
      if (argv.length === 0) continue; // skipped, but it used up its number (the kit's rule)
      const cwd = spec.cwd ?? null;
      const verdict = options.gate
        ? await options.gate.check(
            {
              taskId: item.id,
              sessionId,
              traceId: job.id,
              workspace: options.workspace,
            },
            argv,
            cwd ?? '.',
          )
        : { allowed: false, reason: 'no policy decision point is configured' };
      if (!verdict.allowed) {
        records.push({
          cmd: [...argv],
          cwd,
          rc: null,
          log: null,
          error: verdict.reason ?? 'denied',
        });
        continue;
      }
      // With --budget, the command reserves its timeout first (inputs made sure it has one).
      const reserved = budget ? (timeoutMs ?? 0) : 0;
      if (budget && !(await budget.acquire(reserved, job.signal))) {
        records.push({
          cmd: [...argv],
          cwd,
          rc: null,
          log: null,
          error: `budget exhausted: ${seconds(budget.budget.remainingMs)} s of the run's --budget ${seconds(budget.budget.totalMs)} s left, this command reserves ${seconds(reserved)} s`,
        });
        continue;
      }
      let ran = false;
      const log = commandLogPath(options.runDir, item.fileKey, i);
      const key = `${effectKey(options, item)}/${attempt === 1 ? '' : `try${attempt}/`}cmd${i}`;
      let outcome: HookCommandOutcome;
      try {
        outcome = await job.effect<HookCommandOutcome>(
          key,
          { cmd: argv, cwd },
          () => {
            ran = true;
            return runHookCommand(argv, cwd, log, { timeoutMs, signal: job.signal });
          },
          {
            tool: 'plan.command',
            summary: (o) => ({
              rc: o.rc,
              log: o.log,
              sha256: o.sha256,
              duration_ms: o.duration_ms,
            }),
          },
        );
      } catch (error) {
        budget?.release(reserved, 0);
        throw error;
      }
      // A command an earlier process recorded was counted when this process started.
      budget?.release(reserved, ran ? outcome.duration_ms : 0);
      records.push({ cmd: [...argv], cwd, rc: outcome.rc, log: outcome.log, error: outcome.error });
    }
    if (records.every((r) => r.rc === 0) || attempt > retries) break;
    await sleep(Math.min(30_000, 1_000 * 2 ** (attempt - 1)), job.signal);
  }
  return shellResult(item, records);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}
