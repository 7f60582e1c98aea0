// testing.ts — a kernel on a temporary database with a running worker, from warden/testing.
import { AgentRegistry, type WorkflowInput } from 'warden';
import { createTestKernel } from 'warden/testing';

const agents = new AgentRegistry().register('double', async (ctx) => ({
  output: { n: (ctx.envelope.input as { n: number }).n * 2 },
}));
const workflow: WorkflowInput = {
  name: 'double',
  stages: [{ name: 'twice', agent: { kind: 'typescript', name: 'double' } }],
};

const t = await createTestKernel({ agents });
const p = await t.kernel.startRun({ workflow, input: { n: 21 }, metadata: { tier: 'gold' } });
const settled = await t.settle(p.pid); // resolves when the run terminates or waits
await t.close(); // stops the worker and deletes the database
console.log(settled.terminal_reason, settled.envelope.outputs);
