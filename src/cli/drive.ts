/**
 * Drives runs in the foreground for `warden run` and `warden resume`: hosts a worker, shows
 * progress as events commit, and when a run waits for a person either asks at the terminal or
 * (non-interactive) stops and prints how to answer. Killing this command at any moment is
 * safe: everything committed stays, and `warden resume` continues from there.
 */
import { createInterface, type Interface } from 'node:readline';

import {
  coerceError,
  type InterruptResponse,
  isTerminalProcessState,
  isWardenError,
} from '../core/index.ts';
import { isCallApproval } from '../kernel/index.ts';
import { RetentionSweeper } from '../queue/index.ts';
import { ModelRegistry, Worker } from '../runtime/index.ts';
import { Security, securityOptionsOf } from '../security/index.ts';
import type { EventRecord, InterruptRecord, ProcessRecord } from '../store/index.ts';
import { retentionOptionsOf } from './config.ts';
import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';
import { command } from './invocation.ts';
import { printJson, printLine, style } from './output.ts';
import { promptLine, renderEvent, runJson, summaryLine, terminalSafe } from './render.ts';
import { type FollowedRun, RunFollower } from './run-follower.ts';

export interface DriveOptions {
  readonly json: boolean;
  /**
   * Per run, the session seq after which to show its events (default: the session's last seq
   * when the drive starts, so `resume` shows what happens from now on).
   */
  readonly showAfterSeq?: ReadonlyMap<string, number>;
  /** Ask at the terminal when a run waits; false prints instructions and exits 4. */
  readonly interactive: boolean;
  readonly concurrency?: number;
}

export async function driveRuns(
  ctx: CliContext,
  pids: readonly string[],
  options: DriveOptions,
): Promise<number> {
  const { kernel } = ctx;
  const tracked = new Set(pids);
  let streaming = false;
  const endStream = () => {
    if (streaming) process.stdout.write('\n');
    streaming = false;
  };
  const streamText = (text: string) => {
    if (!streaming) process.stdout.write('  ');
    streaming = true;
    process.stdout.write(style.dim(terminalSafe(text).replace(/\n/g, '\n  ')));
  };
  /** Steps whose text this process streamed live; their recorded deltas are not shown again. */
  const streamedLive = new Set<string>();
  const security = await Security.open(
    securityOptionsOf(ctx.config, { kernel, home: ctx.config.home }),
  );
  const worker = new Worker({
    kernel,
    tools: security.tools,
    models: new ModelRegistry(ctx.config.model),
    concurrency: options.concurrency ?? ctx.config.worker.concurrency,
    leaseMs: ctx.config.worker.lease,
    ...(ctx.config.worker.heartbeat ? { heartbeatMs: ctx.config.worker.heartbeat } : {}),
    // This command's own runs first: a step of theirs that this worker finishes hands it the
    // run's next step even when other runs' steps wait in the lane.
    preferRuns: tracked,
    onDelta: options.json
      ? undefined
      : (d) => {
          if (!tracked.has(d.pid)) return;
          streamedLive.add(`${d.pid}:${d.step}`);
          streamText(d.text);
        },
  });
  let wake: (() => void) | null = null;
  // Progress comes from the event log, so steps run by other processes show too.
  const follower = new RunFollower(
    kernel.store,
    await followedRuns(ctx, pids, options.showAfterSeq),
    (event) => {
      if (!options.json) {
        if (event.type === 'model.delta') {
          const d = event.data as { step?: number; text?: string };
          if (!streamedLive.has(`${event.process_id}:${d.step}`) && d.text) streamText(d.text);
        } else {
          const line = renderEvent(event);
          if (line) {
            endStream();
            printLine(line);
          }
        }
      }
      if (
        event.type === 'process.terminated' ||
        event.type === 'interrupt.raised' ||
        event.type === 'process.state_changed'
      )
        wake?.();
    },
  );
  const pull = () => {
    follower.pull().catch((error: unknown) => {
      failure ??= error;
      wake?.();
    });
  };
  let failure: unknown = null;
  const sub = kernel.bus.subscribe(null, (message) => {
    const event = message.payload as EventRecord;
    if (event.process_id && tracked.has(event.process_id)) pull();
  });
  // History pruning runs in the background while runs are driven (queue.md#retention); it only
  // writes when something is old enough to prune.
  const sweeper = ctx.config.retention.enabled
    ? new RetentionSweeper({
        store: kernel.store,
        clock: kernel.clock,
        ...retentionOptionsOf(ctx.config.retention),
      })
    : null;
  sweeper?.start();
  const rl: Prompter = { value: null, lines: null, closed: false };
  let changed = false;
  const unwatch = kernel.store.watchChanges(() => {
    changed = true;
    pull();
    wake?.();
  });
  const finished = new Map<string, ProcessRecord>();
  const waiting = new Map<string, InterruptRecord[]>();
  // Ctrl-C (or SIGTERM): hand the running steps back unfinished, say how to go on, exit 130.
  // A second Ctrl-C exits at once; either way nothing committed is lost.
  const stop: { signal: NodeJS.Signals | null } = { signal: null };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal) process.exit(EXIT.INTERRUPTED);
    stop.signal = signal;
    rl.value?.close(); // a question being asked gets no answer: the run stays waiting
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await worker.start();
    await follower.pull(); // what happened before this command was watching
    while (finished.size + waiting.size < tracked.size && !stop.signal) {
      if (failure) throw coerceError(failure);
      await kernel.interrupts.expireDue();
      for (const pid of tracked) {
        if (finished.has(pid) || waiting.has(pid)) continue;
        const p = await kernel.getProcess(pid);
        if (isTerminalProcessState(p.state)) {
          finished.set(pid, p);
          continue;
        }
        // A waiting run asks its stage's question; a running one may be asking about one tool
        // call (its step waits on the answer: kernel/approvals.ts).
        const all = await kernel.store.listInterrupts({ processId: pid, status: 'pending' });
        const pending = p.state === 'waiting' ? all : all.filter(isCallApproval);
        if (pending.length === 0) continue;
        if (!options.interactive || rl.closed) {
          waiting.set(pid, pending);
          continue;
        }
        await follower.pull(); // show what led to the question before asking it
        endStream();
        for (const interrupt of pending) {
          const response = await ask(rl, interrupt, options.json ? process.stderr : process.stdout);
          if (stop.signal) break;
          if (response === null) {
            waiting.set(pid, pending);
            break;
          }
          try {
            await kernel.resolveInterrupt(interrupt.id, response, 'terminal');
          } catch (error) {
            if (!isWardenError(error, 'INVALID_STATE')) throw error; // answered elsewhere meanwhile
          }
        }
      }
      if (finished.size + waiting.size >= tracked.size || stop.signal) break;
      // Sleep until a tracked run changes (this process or another: the change signal) or the
      // next interrupt expires; nothing here polls.
      const deadline = await kernel.nextDeadline();
      if (changed || stop.signal) {
        changed = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        // The change watcher never holds the process open; while a run goes on elsewhere (another
        // process has its step), this wait must, so a ref'd timer stands in when there is no deadline.
        const timer = setTimeout(
          resolve,
          deadline === null ? 3_600_000 : Math.max(1, deadline - kernel.clock.now()),
        );
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
      changed = false;
    }
    await follower.pull(); // every event up to the end, before the summary
  } finally {
    rl.value?.close();
    // A step waiting on a tool call's approval goes back to the queue unfinished: `warden
    // resume` (or the daemon) takes it again once the call is answered. Once this command's
    // runs are done or waiting, a step still in flight belongs to another run this worker
    // picked up from the lane; it goes back too, or a step of that run waiting on its own
    // approval would hold this command open until the approval expires.
    await worker.stop({ release: true });
    await security.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await sweeper?.stop();
    unwatch();
    sub.unsubscribe();
    endStream();
  }

  if (stop.signal) {
    const unfinished = [...tracked].filter((pid) => !finished.has(pid));
    const out = options.json ? process.stderr : process.stdout;
    out.write(
      `${style.yellow(`■ interrupted (${stop.signal}):`)} nothing committed is lost; a step in progress goes back to the queue and runs again\n`,
    );
    for (const pid of unfinished)
      out.write(style.dim(`  continue it with: ${command(`resume ${pid}`)}\n`));
    return EXIT.INTERRUPTED;
  }

  const results = [...tracked]
    .map((pid) => finished.get(pid))
    .filter((p): p is ProcessRecord => !!p);
  if (options.json) {
    const all = await Promise.all(
      [...tracked].map(async (pid) =>
        runJson(await kernel.getProcess(pid), waiting.get(pid)?.map(interruptJson) ?? []),
      ),
    );
    printJson(all.length === 1 ? all[0] : all);
  } else {
    for (const p of results) printLine(summaryLine(p));
    for (const [pid, pending] of waiting) {
      printLine(style.yellow(`■ ${pid} is waiting for a person:`));
      for (const i of pending) {
        printLine(`  ${i.kind}: ${promptLine(i.prompt)}`);
        printLine(style.dim(`    ${answerHint(i)}`));
      }
      printLine(style.dim(`  then continue it with: ${command(`resume ${pid}`)}`));
    }
  }
  if (waiting.size > 0) return EXIT.WAITING;
  return results.every((p) => p.terminal_reason === 'completed') ? EXIT.OK : EXIT.RUN_FAILED;
}

/** Where to start showing each run's events: after `showAfterSeq`, or after its session's head. */
async function followedRuns(
  ctx: CliContext,
  pids: readonly string[],
  showAfterSeq: ReadonlyMap<string, number> | undefined,
): Promise<FollowedRun[]> {
  return Promise.all(
    pids.map(async (pid) => {
      const p = await ctx.kernel.getProcess(pid);
      const afterSeq =
        showAfterSeq?.get(pid) ?? (await ctx.store.getSession(p.session_id))?.last_seq ?? 0;
      return { pid, sessionId: p.session_id, afterSeq };
    }),
  );
}

export function answerHint(i: InterruptRecord): string {
  if (i.kind === 'clarification')
    return `answer with: ${command(`answer ${i.id} "<your answer>"`)}`;
  return `approve with: ${command(`approve ${i.id}`)}   or deny with: ${command(`deny ${i.id}`)}`;
}

export function interruptJson(i: InterruptRecord) {
  return {
    id: i.id,
    kind: i.kind,
    stage: i.stage,
    prompt: i.prompt,
    status: i.status,
    expires_at: i.expires_at,
    process_id: i.process_id,
  };
}

/** Asks one question on stdin; null when stdin ended (nobody is there to answer). */
interface Prompter {
  value: Interface | null;
  lines: AsyncIterator<string> | null;
  closed: boolean;
}

async function ask(
  rl: Prompter,
  interrupt: InterruptRecord,
  out: NodeJS.WritableStream,
): Promise<InterruptResponse | null> {
  if (!rl.value) {
    rl.value = createInterface({ input: process.stdin, terminal: false });
    rl.lines = rl.value[Symbol.asyncIterator]();
    rl.value.on('close', () => {
      rl.closed = true;
    });
  }
  const lines = rl.lines!;
  const question = async (prompt: string): Promise<string | null> => {
    out.write(prompt);
    const next = await lines.next();
    if (!process.stdin.isTTY) out.write('\n'); // piped answers are not echoed
    return next.done ? null : String(next.value).trim();
  };
  if (interrupt.kind === 'clarification') {
    const text = await question('  your answer: ');
    return text === null ? null : { text };
  }
  for (;;) {
    const answer = await question(
      interrupt.kind === 'resource_exhausted' ? '  grant more budget? [y/n] ' : '  approve? [y/n] ',
    );
    if (answer === null) return null;
    if (/^(y|yes)$/i.test(answer)) return { approved: true };
    if (/^(n|no)$/i.test(answer)) return { approved: false };
    out.write(style.dim('  please answer y or n\n'));
  }
}
