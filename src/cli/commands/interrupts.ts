/** `warden approve|deny|answer <id>` and `warden cancel <pid>`. */
import type { InterruptResponse } from '../../core/index.ts';
import { WardenError } from '../../core/index.ts';
import { openContext } from '../context.ts';
import type { GlobalOptions } from '../global-options.ts';
import { command } from '../invocation.ts';
import { osUser } from '../os-user.ts';
import { printJson, printLine, style } from '../output.ts';

export async function resolveCommand(
  id: string,
  response: InterruptResponse,
  options: GlobalOptions,
): Promise<number> {
  const ctx = await openContext(options, { mustExist: true });
  try {
    const { interrupt, process } = await ctx.kernel.resolveInterrupt(
      id,
      response,
      `cli:${osUser()}`,
    );
    if (options.json) {
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
      return 0;
    }
    printLine(
      `${style.green('✓')} ${interrupt.kind} ${id} ${response.approved === false ? 'denied' : 'answered'}`,
    );
    if (process) {
      if (process.state === 'terminated')
        printLine(`  run ${process.pid} ended: ${process.terminal_reason ?? ''}`);
      else
        printLine(
          `  run ${process.pid} is ${process.state} at ${process.current_stage}; continue it with: ${style.bold(command(`resume ${process.pid}`))}`,
        );
    }
    return 0;
  } finally {
    await ctx.close();
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
  const ctx = await openContext(options, { mustExist: true });
  try {
    const before = await ctx.kernel.getProcess(pid);
    const p = await ctx.kernel.cancelRun(pid, options.reason ?? 'cancelled by user');
    if (options.json)
      printJson({
        pid,
        state: p.state,
        terminal_reason: p.terminal_reason,
        changed: before.state !== p.state,
      });
    else if (before.state === 'terminated')
      printLine(
        style.dim(`${pid} had already ended (${before.terminal_reason ?? ''}); nothing changed`),
      );
    else printLine(`${style.green('✓')} cancelled ${pid}`);
    return 0;
  } finally {
    await ctx.close();
  }
}
