/**
 * `warden approve|deny|answer <id>` and `warden cancel <pid>`: through the daemon when one is
 * targeted (daemon-target.ts), on the database otherwise, printed the same way.
 */
import type { InterruptResponse } from '../../core/index.ts';
import { WardenError } from '../../core/index.ts';
import type { InterruptRecord, ProcessRecord } from '../../store/index.ts';
import { openContext } from '../context.ts';
import { viaDaemonOr } from '../daemon-target.ts';
import type { GlobalOptions } from '../global-options.ts';
import { command } from '../invocation.ts';
import { osUser } from '../os-user.ts';
import { printJson, printLine, style } from '../output.ts';
import { fromWire } from '../wire-records.ts';

export async function resolveCommand(
  id: string,
  response: InterruptResponse,
  options: GlobalOptions,
): Promise<number> {
  const { interrupt, process, daemon } = await viaDaemonOr(
    options,
    async ({ client }) => {
      const answer = await client.interrupts.resolve({ interrupt_id: id, response });
      return {
        interrupt: fromWire.interrupt(answer.interrupt),
        process: answer.run ? fromWire.run(answer.run) : null,
        daemon: true,
      };
    },
    async () => {
      const ctx = await openContext(options, { mustExist: true });
      try {
        return {
          ...(await ctx.kernel.resolveInterrupt(id, response, `cli:${osUser()}`)),
          daemon: false,
        };
      } finally {
        await ctx.close();
      }
    },
  );
  printResolved(id, response, interrupt, process, options.json ?? false, daemon);
  return 0;
}

function printResolved(
  id: string,
  response: InterruptResponse,
  interrupt: InterruptRecord,
  process: ProcessRecord | null,
  json: boolean,
  daemon: boolean,
): void {
  if (json) {
    printJson({
      interrupt: {
        id: interrupt.id,
        kind: interrupt.kind,
        status: interrupt.status,
        response: interrupt.response,
      },
      process: process
        ? {
            pid: process.pid,
            state: process.state,
            current_stage: process.current_stage,
            terminal_reason: process.terminal_reason,
          }
        : null,
    });
    return;
  }
  printLine(
    `${style.green('✓')} ${interrupt.kind} ${id} ${response.approved === false ? 'denied' : 'answered'}`,
  );
  if (process) {
    if (process.state === 'terminated')
      printLine(`  run ${process.pid} ended: ${process.terminal_reason ?? ''}`);
    else if (daemon)
      // The daemon's workers take the run's next step; nothing to resume by hand.
      printLine(
        `  run ${process.pid} continues on the daemon; follow it with: ${style.bold(command(`watch ${process.pid}`))}`,
      );
    else
      printLine(
        `  run ${process.pid} is ${process.state} at ${process.current_stage}; continue it with: ${style.bold(command(`resume ${process.pid}`))}`,
      );
  }
}

export function answerResponse(words: readonly string[]): InterruptResponse {
  const text = words.join(' ').trim();
  if (text === '')
    throw new WardenError(
      'INVALID_PARAMS',
      `answer needs some text: ${command('answer <id> "your answer"')}`,
    );
  return { text };
}

export async function cancelCommand(
  pid: string,
  options: GlobalOptions & { reason?: string },
): Promise<number> {
  const message = options.reason ?? 'cancelled by user';
  const { before, after } = await viaDaemonOr(
    options,
    async ({ client }) => {
      const { run } = await client.runs.get({ pid });
      const cancelled = await client.runs.cancel({ pid, message });
      return { before: fromWire.run(run), after: fromWire.run(cancelled.run) };
    },
    async () => {
      const ctx = await openContext(options, { mustExist: true });
      try {
        const run = await ctx.kernel.getProcess(pid);
        return { before: run, after: await ctx.kernel.cancelRun(pid, message) };
      } finally {
        await ctx.close();
      }
    },
  );
  if (options.json)
    printJson({
      pid,
      state: after.state,
      terminal_reason: after.terminal_reason,
      changed: before.state !== after.state,
    });
  else if (before.state === 'terminated')
    printLine(
      style.dim(`${pid} had already ended (${before.terminal_reason ?? ''}); nothing changed`),
    );
  else printLine(`${style.green('✓')} cancelled ${pid}`);
  return 0;
}
