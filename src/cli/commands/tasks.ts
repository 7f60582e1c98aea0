/**
 * `warden tasks`, `warden dlq list|show|redrive|purge`, `warden submit`: through the daemon when
 * one is targeted (daemon-target.ts), on the database otherwise, printed by the same renderers.
 * `dlq purge` has no ACP method: it works on the database (this home's, also while its daemon
 * runs), and needs --direct on the daemon's host for a daemon named with --url.
 */
import { type Priority, TASK_STATES, type TaskState, WardenError } from '../../core/index.ts';
import { JobQueue } from '../../queue/index.ts';
import { type CliContext, openContext, openContextIfExists } from '../context.ts';
import { checkLimit, DAEMON_PAGE, type DaemonSession, viaDaemonOr } from '../daemon-target.ts';
import type { GlobalOptions } from '../global-options.ts';
import { osUser } from '../os-user.ts';
import { formatTime, printJson, printLine, printTable, style } from '../output.ts';
import {
  type AttemptView,
  attemptView,
  fromWire,
  type TaskView,
  taskView,
} from '../wire-records.ts';
import { parseLimit } from './query.ts';
import { parseInput } from './run.ts';

function queueFor(ctx: CliContext, lanes: readonly string[] = []): JobQueue {
  // Lanes named on the command line are declared for this call (the daemon's config declares them for workers).
  return new JobQueue({
    store: ctx.store,
    lanes: Object.fromEntries([ctx.config.agent_lane, ...lanes].map((l) => [l, {}])),
  });
}

export async function tasksCommand(
  options: GlobalOptions & { state?: string; lane?: string; limit?: string },
): Promise<number> {
  const states = options.state?.split(',').map((s) => s.trim());
  for (const s of states ?? []) {
    if (!(TASK_STATES as readonly string[]).includes(s))
      throw new WardenError(
        'INVALID_PARAMS',
        `--state must be one of ${TASK_STATES.join(', ')} (got ${s})`,
      );
  }
  const limit = parseLimit(options.limit, 100);
  const filter = {
    ...(states ? { states: states as TaskState[] } : {}),
    ...(options.lane ? { lane: options.lane } : {}),
    limit,
  };
  const list = await viaDaemonOr(
    options,
    async (session) => {
      checkLimit(session, limit);
      return (await session.client.tasks.list(filter)).tasks.map(fromWire.task);
    },
    async () => {
      const ctx = await openContextIfExists(options); // no database yet: no tasks
      try {
        return ctx ? (await ctx.store.listTasks(filter)).map(taskView) : [];
      } finally {
        await ctx?.close();
      }
    },
  );
  printTasks(list, options.json ?? false);
  return 0;
}

function printTasks(list: readonly TaskView[], json: boolean): void {
  if (json) {
    printJson(list);
    return;
  }
  if (list.length === 0) {
    printLine(style.dim('no tasks match'));
    return;
  }
  printTable(
    ['ID', 'KIND', 'NAME', 'LANE', 'STATE', 'ATTEMPTS', 'AVAILABLE', 'LAST ERROR'],
    list.map((t) => [
      t.id,
      t.kind,
      t.name,
      t.lane,
      t.state,
      `${t.attempts}/${t.max_attempts}`,
      formatTime(t.available_at),
      t.last_error ? `[${t.last_error.code}] ${t.last_error.message}`.slice(0, 60) : '',
    ]),
  );
}

export async function dlqCommand(
  action: string | undefined,
  id: string | undefined,
  options: GlobalOptions & { lane?: string; limit?: string; all?: boolean },
): Promise<number> {
  const verb = action ?? 'list';
  if (!['list', 'show', 'redrive', 'purge'].includes(verb)) {
    throw new WardenError(
      'INVALID_PARAMS',
      `unknown dlq action '${verb}': use list, show <id>, redrive <id|--all> or purge <id|--all>`,
    );
  }
  if ((verb === 'show' || ((verb === 'redrive' || verb === 'purge') && !options.all)) && !id) {
    throw new WardenError(
      'INVALID_PARAMS',
      `dlq ${verb} needs a task id${verb === 'show' ? '' : ' (or --all)'}`,
    );
  }
  const limit = parseLimit(options.limit, 100);
  const lane = options.lane ? { lane: options.lane } : {};
  const json = options.json ?? false;
  const done = (ids: readonly string[]) => printSettled(verb as 'redrive' | 'purge', ids, json);
  return viaDaemonOr(
    options,
    async (session) => {
      const { client } = session;
      if (verb === 'purge') session.needsDatabase('dlq purge works on the database only');
      if (verb === 'list') {
        checkLimit(session, limit);
        printDeadLetters(
          (await client.tasks.dlqList({ ...lane, limit })).tasks.map(fromWire.task),
          json,
        );
      } else if (verb === 'show') {
        const { task, attempts } = await client.tasks.get({ task_id: id! });
        printTaskDetail(fromWire.task(task), attempts.map(fromWire.attempt), json);
      } else {
        if (options.all) done(await redriveAll(session, lane));
        else {
          await client.tasks.redrive({ task_id: id! });
          done([id!]);
        }
      }
      return 0;
    },
    async () => {
      const ctx = await openContext(options, {
        mustExist: true,
        intent: verb === 'list' || verb === 'show' ? 'read' : 'write',
      });
      try {
        const queue = queueFor(ctx);
        const by = `cli:${osUser()}`;
        if (verb === 'list') {
          printDeadLetters((await queue.deadLetters({ ...lane, limit })).map(taskView), json);
          return 0;
        }
        if (verb === 'show') {
          const { task, attempts } = await queue.inspect(id!);
          printTaskDetail(taskView(task), attempts.map(attemptView), json);
          return 0;
        }
        const ids = options.all
          ? (await queue.deadLetters({ ...lane, limit: 100_000 })).map((t) => t.id)
          : [id!];
        for (const taskId of ids) {
          if (verb === 'redrive') await queue.redrive(taskId, by);
          else await queue.purge(taskId, by);
        }
        done(ids);
        return 0;
      } finally {
        await ctx.close();
      }
    },
  );
}

/**
 * Redrives every dead task (of the lane) through the daemon, a page at a time. A task that dies
 * again while this runs is not redriven twice: each id is taken once.
 */
async function redriveAll(session: DaemonSession, lane: { lane?: string }): Promise<string[]> {
  const seen = new Set<string>();
  for (;;) {
    const page = (await session.client.tasks.dlqList({ ...lane, limit: DAEMON_PAGE })).tasks;
    const fresh = page.filter((t) => !seen.has(t.id));
    if (fresh.length === 0) return [...seen];
    for (const t of fresh) {
      await session.client.tasks.redrive({ task_id: t.id });
      seen.add(t.id);
    }
  }
}

function printDeadLetters(dead: readonly TaskView[], json: boolean): void {
  if (json) printJson(dead);
  else if (dead.length === 0) printLine(style.dim('the dead-letter queue is empty'));
  else
    printTable(
      ['ID', 'NAME', 'LANE', 'ATTEMPTS', 'DIED', 'LAST ERROR'],
      dead.map((t) => [
        t.id,
        t.name,
        t.lane,
        String(t.attempts),
        formatTime(t.updated_at),
        t.last_error ? `[${t.last_error.code}] ${t.last_error.message}`.slice(0, 70) : '',
      ]),
    );
}

function printTaskDetail(task: TaskView, attempts: readonly AttemptView[], json: boolean): void {
  if (json) {
    printJson({ task, attempts });
    return;
  }
  printLine(
    `${style.bold(task.id)} ${task.kind} ${task.name} lane ${task.lane} — ${task.state}, ${task.attempts}/${task.max_attempts} attempts`,
  );
  printLine(`  payload ${JSON.stringify(task.payload).slice(0, 200)}`);
  for (const a of attempts)
    printLine(
      `  attempt ${a.attempt} ${a.outcome ?? ''} ${formatTime(a.started_at)} → ${formatTime(a.ended_at)} ${a.error ? `[${a.error.code}] ${a.error.message}` : ''}`,
    );
}

function printSettled(verb: 'redrive' | 'purge', ids: readonly string[], json: boolean): void {
  if (json) printJson({ action: verb, ids });
  else
    printLine(
      `${style.green('✓')} ${verb === 'redrive' ? 'redrove' : 'purged'} ${ids.length} task${ids.length === 1 ? '' : 's'}`,
    );
}

/** A year: a longer delay is almost certainly a unit mistake (the flag is in milliseconds). */
const MAX_DELAY_MS = 365 * 24 * 3_600_000;

export async function submitCommand(
  name: string,
  options: GlobalOptions & {
    payload?: string;
    lane?: string;
    priority?: string;
    delay?: string;
    attempts?: string;
    key?: string;
    session?: string;
  },
): Promise<number> {
  const payload = parseInput(options.payload, '--payload');
  const integer = (flag: string, value: string | undefined, min: number, max: number) => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new WardenError(
        'INVALID_PARAMS',
        `--${flag} must be an integer from ${min} to ${max} (got ${value})`,
        { details: { flag: `--${flag}`, value } },
      );
    return n;
  };
  const submitOptions = {
    ...(options.lane ? { lane: options.lane } : {}),
    ...(options.priority ? { priority: options.priority as Priority } : {}),
    ...(options.delay !== undefined
      ? { delayMs: integer('delay', options.delay, 0, MAX_DELAY_MS) }
      : {}),
    ...(options.attempts !== undefined
      ? { attempts: integer('attempts', options.attempts, 1, 1_000) }
      : {}),
    ...(options.key ? { idempotencyKey: options.key } : {}),
    ...(options.session ? { session: options.session } : {}),
  };
  const job = await viaDaemonOr(
    options,
    async ({ client }) => {
      const { task, deduplicated } = await client.tasks.submit({
        name,
        payload,
        ...(submitOptions.lane ? { lane: submitOptions.lane } : {}),
        ...(submitOptions.priority ? { priority: submitOptions.priority } : {}),
        ...(submitOptions.delayMs === undefined ? {} : { delay_ms: submitOptions.delayMs }),
        ...(submitOptions.attempts === undefined ? {} : { max_attempts: submitOptions.attempts }),
        ...(submitOptions.idempotencyKey ? { idempotency_key: submitOptions.idempotencyKey } : {}),
        ...(submitOptions.session ? { session_key: submitOptions.session } : {}),
      });
      return { id: task.id, deduplicated, task: fromWire.task(task) };
    },
    async () => {
      const ctx = await openContext(options);
      try {
        const lanes = options.lane ? [options.lane] : [];
        return await queueFor(ctx, lanes).submit(name, payload, submitOptions);
      } finally {
        await ctx.close();
      }
    },
  );
  if (options.json)
    printJson({
      id: job.id,
      deduplicated: job.deduplicated,
      state: job.task.state,
      lane: job.task.lane,
    });
  else
    printLine(
      `${style.green('✓')} ${job.deduplicated ? 'already submitted' : 'submitted'} ${job.id} (${name} on lane ${job.task.lane})`,
    );
  return 0;
}
