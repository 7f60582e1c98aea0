/**
 * A workflow worker in its own OS process, for the effect chaos test
 * (test/chaos/effect-kill.chaos.test.ts).
 *
 *   node test/helpers/effect-chaos-worker.ts <db> <sink>
 *
 * It recovers (reclaims the steps of killed workers at once: their OS processes are gone) and
 * runs the workflow steps of <db> with the TypeScript agent `append`: through `ctx.effect()` it
 * appends one line `<pid>:<step>` to the file <sink> (a "tool"), with a `reconcile` that looks
 * the line up in the sink. Between the effect and the step's commit the agent sleeps, so a
 * kill aimed after the effect lands there. It prints JSON lines on stdout (pipe writes are
 * synchronous, so they are out before a later SIGKILL):
 *   {"started": ms}                                   recovered, working
 *   {"applying": key}                                  the tool is about to append (fn runs)
 *   {"effected": key, "how": applied|reconciled|replayed}   ctx.effect returned
 *   {"finished": ms}                                   no run is left unfinished
 * and exits 0 after the last line.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { Kernel } from '../../src/kernel/index.ts';
import { AgentRegistry, Worker } from '../../src/runtime/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';

const [file, sink] = process.argv.slice(2) as [string, string];

function say(line: unknown): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** The destination's own answer to "did this append happen?". */
function inSink(line: string): boolean {
  return existsSync(sink) && readFileSync(sink, 'utf8').split('\n').includes(line);
}

const store = await openSqliteStore({ file });
const kernel = new Kernel({ store });
await kernel.recover();

const agents = new AgentRegistry().register('append', async (ctx) => {
  const line = `${ctx.pid}:${ctx.step}`;
  let how: 'applied' | 'reconciled' | 'replayed' = 'replayed';
  const recorded = await ctx.effect(
    'append',
    { line },
    async () => {
      how = 'applied';
      say({ applying: line });
      appendFileSync(sink, `${line}\n`);
      // A slow acknowledgement: the append happened, its `done` is not recorded yet.
      await sleep(30);
      return line;
    },
    {
      tool: 'sink.append',
      reconcile: () => {
        if (!inSink(line)) return undefined;
        how = 'reconciled';
        return line;
      },
    },
  );
  if (recorded !== line) throw new Error(`effect for ${line} recorded ${String(recorded)}`);
  say({ effected: line, how });
  // Work between the effect and the step's commit: the kill window.
  await sleep(60);
  return { output: { line } };
});

const worker = new Worker({ kernel, agents, concurrency: 1 });
await worker.start();
say({ started: Date.now() });
for (;;) {
  await sleep(50);
  const open = await store.listProcesses({
    states: ['new', 'ready', 'running', 'waiting', 'blocked'],
    limit: 1,
  });
  if (open.length === 0) break;
}
await worker.stop();
kernel.close();
await store.close();
say({ finished: Date.now() });
