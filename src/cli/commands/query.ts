/**
 * Commands that only read: `ps`, `inspect`, `events`, `interrupts` (they work on a read-only
 * database). `ps` and `interrupts` go through the daemon when one is targeted
 * (daemon-target.ts); `inspect` and `events` read the database.
 */
import {
  MAX_HISTORY,
  outstandingSteps,
  PROCESS_STATES,
  type ProcessState,
  WardenError,
} from '../../core/index.ts';
import type { InterruptRecord, ProcessRecord } from '../../store/index.ts';
import { openContext, openContextIfExists } from '../context.ts';
import { checkWholePage, DAEMON_PAGE, viaDaemonOr } from '../daemon-target.ts';
import { interruptJson } from '../drive.ts';
import type { GlobalOptions } from '../global-options.ts';
import { command } from '../invocation.ts';
import { formatTime, printJson, printLine, printTable, style } from '../output.ts';
import { budgetLine, promptLine, runJson } from '../render.ts';
import { runHealth, stepHealth } from '../run-health.ts';
import { fromWire } from '../wire-records.ts';

export async function psCommand(
  options: GlobalOptions & { state?: string; limit?: string },
): Promise<number> {
  const states = options.state?.split(',').map((s) => s.trim());
  for (const s of states ?? []) {
    if (!(PROCESS_STATES as readonly string[]).includes(s))
      throw new WardenError(
        'INVALID_PARAMS',
        `--state must be one of ${PROCESS_STATES.join(', ')} (got ${s})`,
      );
  }
  const limit = parseLimit(options.limit, 50);
  const filter = states ? { states: states as ProcessState[] } : {};
  const { list, stalled } = await viaDaemonOr(
    options,
    async (session) => {
      // Oldest first, like the store: the most recent `limit` are the last ones.
      const runs = (await session.client.runs.list({ ...filter, limit: DAEMON_PAGE })).runs;
      checkWholePage(session, runs.length, 'runs');
      const list = runs.slice(-limit).map(fromWire.run);
      const stalled = new Set<string>();
      if (list.some((p) => p.state === 'running')) {
        const steps = (await session.client.tasks.list({ states: ['running'], limit: DAEMON_PAGE }))
          .tasks;
        checkWholePage(session, steps.length, 'running tasks');
        // The oldest running step of each run, as runHealth reads it from the store.
        const stepOf = new Map<string, ReturnType<typeof fromWire.task>>();
        for (const t of steps.map(fromWire.task))
          if (t.process_id && !stepOf.has(t.process_id)) stepOf.set(t.process_id, t);
        const now = Date.now();
        for (const p of list) {
          const step = p.state === 'running' ? stepOf.get(p.pid) : undefined;
          if (step && stepHealth(step, now).stalled) stalled.add(p.pid);
        }
      }
      return { list, stalled };
    },
    async () => {
      const ctx = await openContextIfExists(options); // no database yet: no runs, nothing created
      try {
        const all = ctx ? await ctx.store.listProcesses({ ...filter, limit: 100_000 }) : [];
        const list = all.slice(-limit);
        // A run shown as running whose worker died is stalled until a worker takes its step back.
        const stalled = new Set<string>();
        if (ctx) {
          const now = ctx.kernel.clock.now();
          for (const p of list)
            if ((await runHealth(ctx.store, p, now)).stalled) stalled.add(p.pid);
        }
        return { list, stalled };
      } finally {
        await ctx?.close();
      }
    },
  );
  printRuns(list, stalled, options.json ?? false);
  return 0;
}

function printRuns(
  list: readonly ProcessRecord[],
  stalled: ReadonlySet<string>,
  json: boolean,
): void {
  if (json) {
    printJson(list.map((p) => ({ ...runJson(p), stalled: stalled.has(p.pid) })));
    return;
  }
  if (list.length === 0) {
    printLine(
      style.dim(`no runs yet — start one with: ${command('run examples/review-loop.yaml')}`),
    );
    return;
  }
  printTable(
    ['PID', 'WORKFLOW', 'STATE', 'STAGE', 'REASON', 'LLM', 'HOPS', 'CREATED'],
    list.map((p) => [
      p.pid,
      p.workflow_name,
      stalled.has(p.pid) ? `${p.state} (stalled)` : p.state,
      p.current_stage,
      p.terminal_reason ?? '',
      `${p.usage.llm_calls}/${p.quota.max_llm_calls}`,
      `${p.usage.agent_hops}/${p.quota.max_agent_hops}`,
      formatTime(p.created_at),
    ]),
  );
  if (stalled.size > 0)
    printLine(
      style.dim(
        `stalled: the worker running its step is gone; take ${stalled.size === 1 ? 'it' : 'them'} over with: ${command('resume')}`,
      ),
    );
}

export async function inspectCommand(pid: string, options: GlobalOptions): Promise<number> {
  const ctx = await openContext(options, { mustExist: true, intent: 'read' });
  try {
    const p = await ctx.kernel.getProcess(pid);
    const tasks = await ctx.store.listTasks({ processId: pid, limit: 10_000 });
    const interrupts = await ctx.store.listInterrupts({ processId: pid, limit: 10_000 });
    const attempts = Object.fromEntries(
      await Promise.all(
        tasks.map(async (t) => [t.id, await ctx.store.listAttempts(t.id)] as const),
      ),
    );
    if (options.json) {
      printJson({
        ...runJson(p),
        priority: p.priority,
        user_id: p.user_id,
        source: p.source,
        workflow_hash: p.workflow_hash,
        trace_id: p.trace_id,
        envelope: p.envelope,
        // The envelope keeps the latest steps only; every step is in `tasks` and the event log.
        history_limit: MAX_HISTORY,
        history_truncated: (p.envelope.history_dropped ?? 0) > 0,
        tasks: tasks.map((t) => ({
          id: t.id,
          stage: t.name,
          state: t.state,
          // Lease tokens are credentials for the running attempt: never print them.
          attempts: attempts[t.id]?.map(({ lease_token: _token, ...a }) => a),
          last_error: t.last_error,
        })),
        interrupts: interrupts.map((i) => ({
          ...interruptJson(i),
          response: i.response,
          resolver: i.resolver,
        })),
      });
      return 0;
    }
    printLine(`${style.bold(p.pid)}  ${p.workflow_name}  ${style.dim(p.source ?? '')}`);
    printLine(
      `  state      ${p.state}${p.terminal_reason ? ` (${p.terminal_reason}: ${p.terminal_message ?? ''})` : ''}`,
    );
    printLine(`  stage      ${p.current_stage}   step ${p.envelope.step}${pendingText(p)}`);
    printLine(`  budget     ${budgetLine(p.usage, p.quota)}`);
    printLine(`  session    ${p.session_id}   trace ${p.trace_id}`);
    printLine(`  created    ${formatTime(p.created_at)}   completed ${formatTime(p.completed_at)}`);
    printLine(style.bold('  steps'));
    if ((p.envelope.history_dropped ?? 0) > 0) {
      const session = (await ctx.store.getSession(p.session_id))?.key ?? p.session_id;
      printLine(
        style.dim(
          `    … ${p.envelope.history_dropped} older entries not kept here; every step: ${command(`events --session ${session}`)}`,
        ),
      );
    }
    for (const h of p.envelope.history) {
      printLine(
        `    ${String(h.step).padStart(3)} ${h.stage.padEnd(16)} ${h.status}${h.attempt && h.attempt > 1 ? ` (attempt ${h.attempt})` : ''}${h.error ? ` — ${h.error}` : ''}`,
      );
    }
    printLine(style.bold('  outputs'));
    for (const [key, value] of Object.entries(p.envelope.outputs))
      printLine(`    ${key}: ${JSON.stringify(value).slice(0, 160)}`);
    if (interrupts.length) {
      printLine(style.bold('  interrupts'));
      for (const i of interrupts)
        printLine(
          `    ${i.id} ${i.kind} ${i.status}${i.response ? ` ${JSON.stringify(i.response)}` : ''} — ${promptLine(i.prompt)}`,
        );
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function eventsCommand(
  options: GlobalOptions & {
    session?: string;
    process?: string;
    from?: string;
    limit?: string;
    follow?: boolean;
  },
): Promise<number> {
  const from = options.from === undefined ? 0 : Number(options.from);
  if (!Number.isInteger(from) || from < 0)
    throw new WardenError(
      'INVALID_PARAMS',
      `--from must be a non-negative integer sequence number (got ${options.from})`,
    );
  const limit = parseLimit(options.limit, 1_000);
  const ctx = await openContext(options, { mustExist: true, intent: 'read' });
  try {
    let sessionId: string;
    if (options.process) sessionId = (await ctx.kernel.getProcess(options.process)).session_id;
    else {
      const key = options.session ?? 'main';
      const session = (await ctx.store.getSessionByKey(key)) ?? (await ctx.store.getSession(key));
      if (!session)
        throw new WardenError(
          'NOT_FOUND',
          `session '${key}' does not exist (sessions: ${(await ctx.store.listSessions()).map((s) => s.key).join(', ') || 'none'})`,
        );
      sessionId = session.id;
    }
    // Without --from, start at the oldest event retention kept; an explicit --from older than
    // that is REPLAY_GAP (the events it asks for were pruned).
    let after = options.from === undefined ? undefined : Math.max(from - 1, 0);
    let printed = 0;
    // --follow: woken by any commit (this process or another), never by a poll.
    let changed = false;
    let wake: (() => void) | null = null;
    const unwatch = options.follow
      ? ctx.store.watchChanges(() => {
          changed = true;
          wake?.();
        })
      : () => undefined;
    for (;;) {
      changed = false;
      // --limit bounds the replay; once following, every new event is printed.
      const room = printed < limit ? limit - printed : 1_000;
      const page = await ctx.store.readEvents({
        sessionId,
        ...(after === undefined ? {} : { afterSeq: after }),
        limit: Math.min(1_000, room),
        ...(options.process ? { processId: options.process } : {}),
      });
      for (const e of page) {
        if (options.json) process.stdout.write(`${JSON.stringify(e)}\n`);
        else
          printLine(
            `${String(e.seq).padStart(6)} ${formatTime(e.ts)} ${e.type.padEnd(22)} ${style.dim(`${e.process_id ?? ''} ${JSON.stringify(e.data).slice(0, 120)}`)}`,
          );
      }
      printed += page.length;
      if (page.length > 0) after = page.at(-1)!.seq;
      if (printed >= limit && !options.follow) break;
      if (page.length === 0) {
        if (!options.follow) break;
        if (!changed) {
          // The change watcher never holds the process open; following must, until Ctrl-C.
          const keepAlive = setInterval(() => undefined, 60_000);
          await new Promise<void>((resolve) => (wake = resolve));
          clearInterval(keepAlive);
        }
        wake = null;
      }
    }
    unwatch();
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function interruptsCommand(
  options: GlobalOptions & { all?: boolean },
): Promise<number> {
  const list = await viaDaemonOr(
    options,
    async (session) => {
      // The daemon expires overdue interrupts itself.
      const { interrupts } = await session.client.interrupts.list({
        ...(options.all ? {} : { status: 'pending' }),
        limit: DAEMON_PAGE,
      });
      checkWholePage(session, interrupts.length, 'interrupts');
      return interrupts.map(fromWire.interrupt);
    },
    async () => {
      const ctx = await openContextIfExists(options); // no database yet: no interrupts
      try {
        // Expiring overdue interrupts writes; a read-only database shows them as stored.
        if (ctx && !ctx.store.readOnly) await ctx.kernel.interrupts.expireDue();
        return ctx
          ? await ctx.store.listInterrupts(
              options.all ? { limit: 10_000 } : { status: 'pending', limit: 10_000 },
            )
          : [];
      } finally {
        await ctx?.close();
      }
    },
  );
  printInterrupts(list, options.all ?? false, options.json ?? false);
  return 0;
}

function printInterrupts(list: readonly InterruptRecord[], all: boolean, json: boolean): void {
  if (json) {
    printJson(
      list.map((i) => ({ ...interruptJson(i), response: i.response, created_at: i.created_at })),
    );
    return;
  }
  if (list.length === 0) {
    printLine(style.dim(all ? 'no interrupts' : 'no pending interrupts'));
    return;
  }
  printTable(
    ['ID', 'KIND', 'STATUS', 'PROCESS', 'STAGE', 'EXPIRES', 'PROMPT'],
    list.map((i) => [
      i.id,
      i.kind,
      i.status,
      i.process_id ?? '',
      i.stage ?? '',
      formatTime(i.expires_at),
      promptLine(i.prompt, 60),
    ]),
  );
}

export function parseLimit(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new WardenError('INVALID_PARAMS', `--limit must be a positive integer (got ${value})`);
  return n;
}

/** What the run waits for: its pending step, or a parallel run's outstanding branches. */
function pendingText(p: ProcessRecord): string {
  if (p.envelope.pending)
    return `   pending ${p.envelope.pending.kind} step ${p.envelope.pending.step}`;
  const branches = outstandingSteps(p.workflow, p.envelope);
  if (branches.length === 0) return '';
  return `   outstanding ${branches.map((b) => `${b.stage} (step ${b.step})`).join(', ')}`;
}
