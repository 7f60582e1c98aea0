// order.ts — run with: node order.ts (Node 24 runs TypeScript files directly)
import {
  AgentRegistry,
  buildWorkflow,
  type EventRecord,
  Kernel,
  openSqliteStore,
  Worker,
} from 'warden';

// 1. Open (or create) a database. Durability: 'fast' (default) or 'strict'.
const store = await openSqliteStore({ file: './warden.db', durability: 'fast' });

// 2. A kernel, with a TypeScript routing function the workflow can name.
const kernel = new Kernel({
  store,
  routingFunctions: {
    bySize: (ctx) => ((ctx.output as { total: number }).total > 100 ? 'approve' : undefined),
  },
});
await kernel.recover(); // reclaim leases of dead workers, expire overdue interrupts

// 3. TypeScript agents, registered by name.
const agents = new AgentRegistry().register('price', async (ctx, config) => {
  ctx.signal.throwIfAborted();
  const items = (ctx.envelope.input as { items: number[] }).items;
  await ctx.toolCall('price-lookup'); // counts against max_tool_calls
  const reply = await ctx.model([{ role: 'user', content: `Summarise ${items.length} items` }]);
  return {
    output: { total: items.reduce((a, b) => a + b, 0) * Number(config.rate), note: reply.text },
    modelCalls: 1,
    statePatch: { priced_at_step: ctx.step },
  };
});

// 4. A workflow built once from an object: buildWorkflow validates it and returns a
//    LoadedWorkflow `{ workflow, hash }` — pass that whole object to startRun.
const order = buildWorkflow(
  {
    name: 'order',
    stages: [
      {
        name: 'price',
        agent: { kind: 'typescript', name: 'price', config: { rate: 1.2 } },
        routing: [{ fn: 'bySize' }],
        default_next: 'ship',
      },
      {
        name: 'approve',
        interrupt: { kind: 'confirmation', prompt: 'Large order: ship it?' },
        routing: [{ when: { field: 'interrupt.approved', eq: true }, next: 'ship' }],
        default_next: 'end',
      },
      { name: 'ship', agent: { kind: 'noop', output: { shipped: true } } },
    ],
  },
  'order',
  { agents: agents.names(), routingFunctions: new Set(['bySize']) },
);

// 5. Watch committed events, and answer the confirmation when it is raised.
const sub = kernel.bus.subscribe(null, async (message) => {
  const event = message.payload as EventRecord;
  if (event.process_id === null) return; // the worker's own events (in the system session)
  console.log(event.seq, event.type);
  if (event.type === 'interrupt.raised') {
    const { id } = event.data as { id: string };
    await kernel.resolveInterrupt(id, { approved: true, text: 'ok' }, 'example');
  }
});

// 6. A worker executes the steps; the kernel decides what comes next.
const worker = new Worker({ kernel, agents, concurrency: 2 });
await worker.start(); // registers the worker, reclaims expired leases, starts claiming

const run = await kernel.startRun({ workflow: order, input: { items: [40, 50, 60] } });
for (;;) {
  const p = await kernel.getProcess(run.pid);
  if (p.state === 'terminated') {
    console.log(p.terminal_reason, p.envelope.outputs, p.envelope.state, p.usage);
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
}

await worker.stop();
sub.unsubscribe();
kernel.close();
await store.close();
