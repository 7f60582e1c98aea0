// workflows.ts — what buildWorkflow and parseWorkflowText return, what startRun accepts, and
// the errors a bad workflow or a bad argument gives.
import { readFileSync } from 'node:fs';

import {
  buildWorkflow,
  isWardenError,
  Kernel,
  openSqliteStore,
  parseWorkflowText,
  type WorkflowInput,
} from 'warden';

const store = await openSqliteStore({ file: ':memory:' });
const kernel = new Kernel({ store });

// Both return a LoadedWorkflow { workflow, hash }: the validated workflow (defaults applied,
// durations in ms, frozen) and the sha256 of its canonical JSON.
const file = new URL('../review-loop.yaml', import.meta.url);
const review = parseWorkflowText(readFileSync(file, 'utf8'), 'review-loop.yaml');
const hello: WorkflowInput = {
  name: 'hello',
  stages: [{ name: 'greet', agent: { kind: 'noop', output: { hi: true } } }],
};
const loaded = buildWorkflow(hello);
console.log(review.workflow.name, review.workflow.bounds.timeout, loaded.hash.length);

// startRun takes the LoadedWorkflow as it is, or a workflow object (validated on every start,
// so build it once when you start it often). Both run the same workflow, with the same hash.
const a = await kernel.startRun({ workflow: loaded });
const b = await kernel.startRun({ workflow: hello });
console.log(a.workflow_hash === b.workflow_hash);

// A bad workflow is WORKFLOW_INVALID, with every problem and its path in details.issues.
try {
  buildWorkflow({ name: 'broken', stages: [{ name: 'a', default_next: 'nowhere' }] });
} catch (error) {
  if (!isWardenError(error, 'WORKFLOW_INVALID')) throw error;
  console.log(error.details?.issues);
}

// A bad argument (here from a request body) is INVALID_PARAMS naming it; nothing is written.
const body: unknown = JSON.parse('{ "input": { "n": 1 }, "priority": "urgent" }');
try {
  await kernel.startRun({ workflow: loaded, ...(body as object) });
} catch (error) {
  if (!isWardenError(error, 'INVALID_PARAMS')) throw error;
  console.log(error.message);
}

kernel.close();
await store.close();
