// interrupts.ts — a run that stops for a person, found and answered from code; its events
// watched on the bus and read back from the store.
import { buildWorkflow, type EventRecord, Kernel, openSqliteStore, Worker } from 'warden';

const store = await openSqliteStore({ file: './interrupts.db' });
const kernel = new Kernel({ store });
const worker = new Worker({ kernel });
await worker.start();

const sub = kernel.bus.subscribe(['stage.completed', 'process.terminated'], (message, missed) => {
  const event = message.payload as EventRecord;
  console.log('bus:', event.seq, event.type, ...(missed > 0 ? [`(${missed} missed)`] : []));
});

const refund = buildWorkflow({
  name: 'refund',
  stages: [
    {
      name: 'check',
      interrupt: { kind: 'confirmation', prompt: 'Refund 120 EUR?' },
      routing: [{ when: { field: 'interrupt.approved', eq: true }, next: 'pay' }],
      default_next: 'end',
    },
    { name: 'pay', agent: { kind: 'noop', output: { paid: 120 } } },
  ],
});
const run = await kernel.startRun({ workflow: refund });

// The run waits; its question is in the store (and was an interrupt.raised event).
const [pending] = await store.listInterrupts({ status: 'pending', processId: run.pid });
console.log(pending?.kind, pending?.prompt);
const resolved = await kernel.resolveInterrupt(pending!.id, { approved: true }, 'alice');
console.log(resolved.interrupt.status, resolved.process?.state); // resolved ready

let p = await kernel.getProcess(run.pid);
while (p.state !== 'terminated') {
  await new Promise((resolve) => setTimeout(resolve, 20));
  p = await kernel.getProcess(run.pid);
}
const events = await store.readEvents({ sessionId: run.session_id, processId: run.pid });
console.log(p.terminal_reason, events.length, events.at(-1)?.type);

await worker.stop();
sub.unsubscribe();
kernel.close();
await store.close();
