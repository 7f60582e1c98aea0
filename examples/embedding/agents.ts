// agents.ts — TypeScript agents (a function or an object with run), a journaled side effect,
// and a worker that runs them.
import { AgentRegistry, buildWorkflow, Kernel, openSqliteStore, Worker } from 'warden';

const store = await openSqliteStore({ file: './agents.db' });
const kernel = new Kernel({ store });
await kernel.recover();

const outbox: string[] = [];
const agents = new AgentRegistry()
  // A function (ctx, config) => StepResult ...
  .register('draft', async (ctx, config) => ({
    output: { text: `${String(config.greeting)}, ${(ctx.envelope.input as { to: string }).to}` },
  }))
  // ... or an object with a run method.
  .register('send', {
    async run(ctx) {
      const draft = ctx.envelope.outputs.draft as { text: string };
      // At most once per key in this step, even when the step is retried after a crash.
      const receipt = await ctx.effect(
        'email',
        draft,
        () => {
          outbox.push(draft.text);
          return { message: `msg-${outbox.length}` };
        },
        { tool: 'email.send' },
      );
      return { output: receipt, statePatch: { sent: true } };
    },
  });

const mail = buildWorkflow(
  {
    name: 'mail',
    stages: [
      {
        name: 'draft',
        agent: { kind: 'typescript', name: 'draft', config: { greeting: 'Hello' } },
        default_next: 'send',
      },
      { name: 'send', agent: { kind: 'typescript', name: 'send' } },
    ],
  },
  'mail',
  { agents: agents.names() },
);

const worker = new Worker({ kernel, agents, concurrency: 2 });
await worker.start(); // registers the worker, reclaims expired leases, starts claiming
const run = await kernel.startRun({ workflow: mail, input: { to: 'Ada' } });
let p = await kernel.getProcess(run.pid);
while (p.state !== 'terminated') {
  await new Promise((resolve) => setTimeout(resolve, 20));
  p = await kernel.getProcess(run.pid);
}
await worker.stop(); // stops claiming and waits for running steps ({ abort: true } aborts them)

console.log(p.terminal_reason, p.envelope.outputs, p.envelope.state, outbox);
kernel.close();
await store.close();
