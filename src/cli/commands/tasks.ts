/** `warden tasks`, `warden dlq list|show|redrive|purge`, `warden submit`. */
import { TASK_STATES, type TaskState, WardenError } from '../../core/index.ts';
import { JobQueue } from '../../queue/index.ts';
import type { TaskRecord } from '../../store/index.ts';
import { type CliContext, openContext, openContextIfExists } from '../context.ts';
import type { GlobalOptions } from '../global-options.ts';
import { osUser } from '../os-user.ts';
import { formatTime, printJson, printLine, printTable, style } from '../output.ts';
import { parseLimit } from './query.ts';
import { parseInput } from './run.ts';

function queueFor(ctx: CliContext, lanes: readonly string[] = []): JobQueue {
  // Lanes named on the command line are declared for this call (the daemon's config declares them for workers).
  return new JobQueue({
    store: ctx.store,
    lanes: Object.fromEntries([ctx.config.agent_lane, ...lanes].map((l) => [l, {}])),
  });
}

function taskJson(t: TaskRecord) {
  const { lease_token: _token, ...rest } = t; // a lease token is a credential: never print it
  return rest;
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
  const ctx = await openContextIfExists(options); // no database yet: no tasks
  try {
    const list = ctx
      ? await ctx.store.listTasks({
          ...(states ? { states: states as TaskState[] } : {}),
          ...(options.lane ? { lane: options.lane } : {}),
          limit,
        })
      : [];
    if (options.json) {
      printJson(list.map(taskJson));
      return 0;
    }
    if (list.length === 0) {
      printLine(style.dim('no tasks match'));
      return 0;
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
    return 0;
  } finally {
    await ctx?.close();
  }
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
  const ctx = await openContext(options, {
    mustExist: true,
    intent: verb === 'list' || verb === 'show' ? 'read' : 'write',
  });
  try {
    const queue = queueFor(ctx);
    const by = `cli:${osUser()}`;
    if (verb === 'list') {
      const dead = await queue.deadLetters({
        ...(options.lane ? { lane: options.lane } : {}),
        limit,
      });
      if (options.json) printJson(dead.map(taskJson));
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
      return 0;
    }
    if (verb === 'show') {
      const { task, attempts } = await queue.inspect(id!);
      const safeAttempts = attempts.map(({ lease_token: _token, ...a }) => a);
      if (options.json) printJson({ task: taskJson(task), attempts: safeAttempts });
      else {
        printLine(
          `${style.bold(task.id)} ${task.kind} ${task.name} lane ${task.lane} — ${task.state}, ${task.attempts}/${task.max_attempts} attempts`,
        );
        printLine(`  payload ${JSON.stringify(task.payload).slice(0, 200)}`);
        for (const a of safeAttempts)
          printLine(
            `  attempt ${a.attempt} ${a.outcome ?? ''} ${formatTime(a.started_at)} → ${formatTime(a.ended_at)} ${a.error ? `[${a.error.code}] ${a.error.message}` : ''}`,
          );
      }
      return 0;
    }
    const ids = options.all
      ? (
          await queue.deadLetters({
            ...(options.lane ? { lane: options.lane } : {}),
            limit: 100_000,
          })
        ).map((t) => t.id)
      : [id!];
    for (const taskId of ids) {
      if (verb === 'redrive') await queue.redrive(taskId, by);
      else await queue.purge(taskId, by);
    }
    if (options.json) printJson({ action: verb, ids });
    else
      printLine(
        `${style.green('✓')} ${verb === 'redrive' ? 'redrove' : 'purged'} ${ids.length} task${ids.length === 1 ? '' : 's'}`,
      );
    return 0;
  } finally {
    await ctx.close();
  }
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
    ...(options.priority ? { priority: options.priority as never } : {}),
    ...(options.delay !== undefined
      ? { delayMs: integer('delay', options.delay, 0, MAX_DELAY_MS) }
      : {}),
    ...(options.attempts !== undefined
      ? { attempts: integer('attempts', options.attempts, 1, 1_000) }
      : {}),
    ...(options.key ? { idempotencyKey: options.key } : {}),
    ...(options.session ? { session: options.session } : {}),
  };
  const ctx = await openContext(options);
  try {
    const job = await queueFor(ctx, options.lane ? [options.lane] : []).submit(
      name,
      payload,
      submitOptions,
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
  } finally {
    await ctx.close();
  }
}
