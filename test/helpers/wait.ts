/** Waiting on conditions with a deadline (never a fixed sleep). */
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
