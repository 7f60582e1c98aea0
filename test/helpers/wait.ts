/** Waiting on conditions with a deadline (never a fixed sleep). */
import { isWardenError, type WardenError } from '../../src/core/index.ts';
import type { Kernel } from '../../src/kernel/index.ts';
import type { ProcessRecord } from '../../src/store/index.ts';

/** Polls the process until `done` holds (default: terminated or waiting), with a deadline. */
export async function waitForProcess(
  kernel: Kernel,
  pid: string,
  done: (p: ProcessRecord) => boolean = (p) => p.state === 'terminated' || p.state === 'waiting',
  timeoutMs = 10_000,
): Promise<ProcessRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await kernel.getProcess(pid);
    if (done(p)) return p;
    if (Date.now() > deadline) {
      throw new Error(
        `process ${pid} did not reach the expected state in ${timeoutMs} ms (state ${p.state}, stage ${p.current_stage}, reason ${p.terminal_reason})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Awaits `promise`, expecting it to reject with a WardenError; returns that error. */
export async function rejection(promise: Promise<unknown>): Promise<WardenError> {
  try {
    await promise;
  } catch (error) {
    if (isWardenError(error)) return error;
    throw error;
  }
  throw new Error('expected the promise to reject');
}

/** Polls `check` (sync or async) until it is true, with a deadline. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'the condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
