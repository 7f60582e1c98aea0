/**
 * `warden watch <pid>`: one run's progress, live, from another terminal. It shows the run's
 * events so far and then each new one as it commits (whichever process commits it), and ends
 * when the run terminates. It never runs a step or answers a question: it only reads.
 */
import { isTerminalProcessState } from '../../core/index.ts';
import type { ProcessRecord, Store } from '../../store/index.ts';
import { openContext } from '../context.ts';
import { answerHint } from '../drive.ts';
import { EXIT } from '../exit-codes.ts';
import type { GlobalOptions } from '../global-options.ts';
import { command } from '../invocation.ts';
import { printLine, style } from '../output.ts';
import { renderEvent, summaryLine } from '../render.ts';
import { RunFollower } from '../run-follower.ts';
import { runHealth } from '../run-health.ts';

export async function watchCommand(pid: string, options: GlobalOptions): Promise<number> {
  const ctx = await openContext(options, { mustExist: true, intent: 'read' });
  const { kernel, store } = ctx;
  try {
    const first = await kernel.getProcess(pid);
    if (!options.json) {
      printLine(
        `${style.bold('◉')} ${style.bold(first.workflow_name)} ${style.dim(`pid ${pid} · session ${first.session_id} · watching (Ctrl-C stops watching; the run goes on)`)}`,
      );
    }
    let wake: (() => void) | null = null;
    let stopped = false;
    const onSignal = () => {
      stopped = true;
      wake?.();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const follower = new RunFollower(
      store,
      [{ pid, sessionId: first.session_id, afterSeq: 0 }],
      (event) => {
        if (options.json) process.stdout.write(`${JSON.stringify(event)}\n`);
        else {
          const line = renderEvent(event);
          if (line) printLine(line);
        }
      },
    );
    const unwatch = store.watchChanges(() => wake?.());
    let shownWaiting = '';
    let shownStall = '';
    let p: ProcessRecord = first;
    try {
      for (;;) {
        await follower.pull();
        p = await kernel.getProcess(pid);
        if (isTerminalProcessState(p.state) || stopped) break;
        if (!options.json) {
          shownWaiting = await showWaiting(ctx.store, p, shownWaiting);
          shownStall = await showStall(ctx.store, p, kernel.clock.now(), shownStall);
        }
        await new Promise<void>((resolve) => {
          // Change notifications do not keep the process alive; while watching, this timer does
          // (and re-checks a stalled worker's lease every few seconds).
          const timer = setTimeout(resolve, 5_000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    } finally {
      unwatch();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (options.json) return 0;
    if (!isTerminalProcessState(p.state)) {
      printLine(style.dim(`stopped watching; ${pid} is ${p.state}`));
      return EXIT.INTERRUPTED;
    }
    printLine(summaryLine(p));
    return p.terminal_reason === 'completed' ? EXIT.OK : EXIT.RUN_FAILED;
  } finally {
    await ctx.close();
  }
}

/** Says once per question what the run waits for and how to answer it. */
async function showWaiting(store: Store, p: ProcessRecord, shown: string): Promise<string> {
  if (p.state !== 'waiting') return '';
  const pending = await store.listInterrupts({ processId: p.pid, status: 'pending' });
  const key = pending.map((i) => i.id).join(',');
  if (key === shown) return shown;
  for (const i of pending) printLine(style.dim(`  waiting for a person — ${answerHint(i)}`));
  if (pending.length)
    printLine(style.dim(`  then continue it with: ${command(`resume ${p.pid}`)}`));
  return key;
}

/** Says once when the step's worker has died, and how to take the run over. */
async function showStall(
  store: Store,
  p: ProcessRecord,
  now: number,
  shown: string,
): Promise<string> {
  const health = await runHealth(store, p, now);
  if (!health.stalled) return '';
  const key = `${p.pid}:${p.envelope.step}`;
  if (key === shown) return shown;
  printLine(
    `${style.yellow('!')} stalled: ${health.why ?? 'its worker is gone'}; take it over with: ${command(`resume ${p.pid}`)}`,
  );
  return key;
}
