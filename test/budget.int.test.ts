/**
 * Budgets end runs with the right terminal reason (DESIGN.md §5 "Resources"), end to end:
 * kernel + SQLite store + in-process worker + scripted model. Each budget is driven over its
 * limit by the workflow itself; the tests then read the process row and its event log.
 * Also: `on_budget_exhausted: interrupt` (grant / deny), and the prospective check (no model or
 * tool call is made beyond the budget).
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  buildWorkflow,
  type LoadedWorkflow,
  ManualClock,
  type ScriptedResponse,
  type WorkflowInput,
} from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import { AgentRegistry, Worker } from '../src/runtime/index.ts';
import {
  type EventRecord,
  openSqliteStore,
  type ProcessRecord,
  type Store,
} from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { waitForProcess } from './helpers/wait.ts';

interface Harness {
  readonly store: Store;
  readonly kernel: Kernel;
  readonly worker: Worker;
}

const open: Harness[] = [];

async function harness(
  agents: AgentRegistry = new AgentRegistry(),
  clock?: ManualClock,
): Promise<Harness> {
  const store = await openSqliteStore({
    file: join(tempDir(), 'w.db'),
    ...(clock ? { clock } : {}),
  });
  const kernel = new Kernel({ store, ...(clock ? { clock } : {}) });
  const worker = new Worker({ kernel, agents, concurrency: 1 });
  const h = { store, kernel, worker };
  open.push(h);
  await worker.start();
  return h;
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.worker.stop({ abort: true });
    h.kernel.close();
    await h.store.close();
  }
});

afterAll(() => removeTempDirs());

const waitFor = waitForProcess;

async function eventsOf(store: Store, p: ProcessRecord): Promise<EventRecord[]> {
  return store.readEvents({ sessionId: p.session_id, processId: p.pid, limit: 10_000 });
}

function ofType(events: readonly EventRecord[], type: string): EventRecord[] {
  return events.filter((e) => e.type === type);
}

function wf(input: Omit<WorkflowInput, 'name'> & { name?: string }): LoadedWorkflow {
  return buildWorkflow({ name: 'budget-test', model: 'scripted', ...input });
}

/** A research loop that never converges: one scripted model call per step. */
function llmLoop(
  bounds: WorkflowInput['bounds'],
  options: {
    usage?: { input_tokens: number; output_tokens: number };
    onBudget?: 'terminate' | 'interrupt';
    script?: ScriptedResponse[];
  } = {},
): LoadedWorkflow {
  const usage = options.usage ?? { input_tokens: 500, output_tokens: 100 };
  return wf({
    name: 'llm-loop',
    bounds: { max_iterations: 100, max_agent_hops: 100, ...bounds },
    on_budget_exhausted: options.onBudget ?? 'terminate',
    stages: [
      {
        name: 'research',
        max_visits: 100,
        agent: {
          kind: 'llm',
          prompt: 'Refine the answer to {{input.q}}',
          output: 'json',
          script: options.script ?? [{ json: { confident: false }, usage }],
        },
        routing: [{ when: { field: 'output.confident', eq: true }, next: 'end' }],
        default_next: 'research',
      },
    ],
  });
}

async function expectBudgetExceeded(
  store: Store,
  p: ProcessRecord,
  reason: string,
): Promise<EventRecord[]> {
  expect(p.state).toBe('terminated');
  expect(p.terminal_reason).toBe(reason);
  const events = await eventsOf(store, p);
  const exceeded = ofType(events, 'budget.exceeded');
  expect(exceeded).toHaveLength(1);
  expect((exceeded[0]!.data as { reason: string }).reason).toBe(reason);
  const terminated = ofType(events, 'process.terminated');
  expect(terminated).toHaveLength(1);
  expect((terminated[0]!.data as { reason: string }).reason).toBe(reason);
  return events;
}

describe('budgets end a run with the right terminal reason', () => {
  it('max_llm_calls: exactly N model calls are made, then max_llm_calls_exceeded', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({ workflow: llmLoop({ max_llm_calls: 3 }) });
    const p = await waitFor(kernel, started.pid);

    const events = await expectBudgetExceeded(store, p, 'max_llm_calls_exceeded');
    expect(ofType(events, 'model.called')).toHaveLength(3);
    expect(p.usage.llm_calls).toBe(3);
    expect(p.usage.llm_calls).toBeLessThanOrEqual(p.quota.max_llm_calls);
    expect(ofType(events, 'stage.completed')).toHaveLength(3);
  });

  it('max_llm_calls: the prospective check refuses the call that would not fit, inside one step', async () => {
    let attempted = 0;
    let refused: unknown;
    const agents = new AgentRegistry().register('chatty', async (ctx) => {
      for (let i = 0; i < 10; i++) {
        attempted += 1;
        try {
          await ctx.model([{ role: 'user', content: `call ${i}` }]);
        } catch (error) {
          refused = error;
          throw error;
        }
      }
      return { output: { done: true } };
    });
    const { store, kernel } = await harness(agents);
    const started = await kernel.startRun({
      workflow: wf({
        bounds: { max_llm_calls: 3 },
        stages: [{ name: 'chat', agent: { kind: 'typescript', name: 'chatty' } }],
      }),
    });
    const p = await waitFor(kernel, started.pid);

    const events = await expectBudgetExceeded(store, p, 'max_llm_calls_exceeded');
    expect(ofType(events, 'model.called')).toHaveLength(3);
    expect(p.usage.llm_calls).toBe(3);
    expect(attempted).toBe(4);
    expect((refused as { code?: string }).code).toBe('QUOTA_EXCEEDED');
    // The failing step is not retried: a budget failure is final.
    const tasks = await store.listTasks({ processId: p.pid });
    expect(tasks).toHaveLength(1);
    expect(tasks[0]!.attempts).toBe(1);
  });

  it('max_input_tokens: scripted usage overflows the input budget', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: llmLoop(
        { max_llm_calls: 50, max_input_tokens: 1_000 },
        { usage: { input_tokens: 600, output_tokens: 10 } },
      ),
    });
    const p = await waitFor(kernel, started.pid);

    const events = await expectBudgetExceeded(store, p, 'max_input_tokens_exceeded');
    expect(ofType(events, 'model.called')).toHaveLength(2);
    expect(p.usage.input_tokens).toBe(1_200);
  });

  it('max_input_tokens: a prompt estimated over the budget is refused before any call', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: wf({
        bounds: { max_input_tokens: 100 },
        stages: [{ name: 'big', agent: { kind: 'llm', prompt: 'x'.repeat(2_000) } }],
      }),
    });
    const p = await waitFor(kernel, started.pid);

    const events = await expectBudgetExceeded(store, p, 'max_input_tokens_exceeded');
    expect(ofType(events, 'model.called')).toHaveLength(0);
    expect(p.usage.llm_calls).toBe(0);
    expect(p.usage.input_tokens).toBe(0);
  });

  it('max_output_tokens: scripted usage overflows the output budget', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: llmLoop(
        { max_llm_calls: 50, max_output_tokens: 250 },
        { usage: { input_tokens: 10, output_tokens: 100 } },
      ),
    });
    const p = await waitFor(kernel, started.pid);

    const events = await expectBudgetExceeded(store, p, 'max_output_tokens_exceeded');
    expect(ofType(events, 'model.called')).toHaveLength(3);
    expect(p.usage.output_tokens).toBe(300);
  });

  it('max_agent_hops: a linear chain longer than the hop budget stops after max_agent_hops stages', async () => {
    const { store, kernel } = await harness();
    const stages = Array.from({ length: 6 }, (_, i) => ({
      name: `s${i}`,
      agent: { kind: 'noop' as const, output: { index: i } },
      default_next: i < 5 ? `s${i + 1}` : 'end',
    }));
    const started = await kernel.startRun({
      workflow: wf({ bounds: { max_agent_hops: 3 }, stages }),
    });
    const p = await waitFor(kernel, started.pid);

    const events = await expectBudgetExceeded(store, p, 'max_agent_hops_exceeded');
    const completed = ofType(events, 'stage.completed').map(
      (e) => (e.data as { stage: string }).stage,
    );
    expect(completed).toEqual(['s0', 's1', 's2']);
    expect(p.usage.agent_hops).toBe(3);
    expect(p.envelope.outputs.s3).toBeUndefined();
  });

  it('max_iterations: a loop-back with a large max_visits stops at max_iterations', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: wf({
        bounds: { max_iterations: 4, max_agent_hops: 100 },
        stages: [
          { name: 'first', agent: { kind: 'noop' }, default_next: 'loop' },
          { name: 'loop', max_visits: 100, agent: { kind: 'noop' }, default_next: 'first' },
        ],
      }),
    });
    const p = await waitFor(kernel, started.pid);

    const events = await expectBudgetExceeded(store, p, 'max_iterations_exceeded');
    expect(p.usage.iterations).toBe(4);
    // first, loop, then 3 more passes; the 4th loop-back stops the run before issuing a step.
    expect(ofType(events, 'stage.completed')).toHaveLength(8);
  });

  it('max_tool_calls: a TypeScript agent calling tools in a loop is stopped at the budget', async () => {
    let attempted = 0;
    const agents = new AgentRegistry().register('tools', async (ctx) => {
      for (let i = 0; i < 20; i++) {
        attempted += 1;
        await ctx.toolCall('t');
      }
      return { output: { done: true } };
    });
    const { store, kernel } = await harness(agents);
    const started = await kernel.startRun({
      workflow: wf({
        bounds: { max_tool_calls: 3 },
        stages: [{ name: 'work', agent: { kind: 'typescript', name: 'tools' } }],
      }),
    });
    const p = await waitFor(kernel, started.pid);

    const events = await expectBudgetExceeded(store, p, 'max_tool_calls_exceeded');
    expect(ofType(events, 'process.usage')).toHaveLength(3);
    expect(p.usage.tool_calls).toBe(3);
    expect(attempted).toBe(4);
  });

  it('timeout: a run past bounds.timeout stops before its next stage', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: wf({
        bounds: { timeout: 200 },
        stages: [
          { name: 'slow', agent: { kind: 'noop', delay: 300 }, default_next: 'after' },
          { name: 'after', agent: { kind: 'noop' } },
        ],
      }),
    });
    const p = await waitFor(kernel, started.pid);

    const events = await expectBudgetExceeded(store, p, 'timeout_exceeded');
    const stagesStarted = ofType(events, 'stage.started').map(
      (e) => (e.data as { stage: string }).stage,
    );
    expect(stagesStarted).toEqual(['slow']);
    expect(p.envelope.outputs.after).toBeUndefined();
  });

  it('soft_timeout: warns once with budget.soft_timeout and lets the run finish', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: wf({
        bounds: { timeout: 60_000, soft_timeout: 50 },
        stages: [
          { name: 'a', agent: { kind: 'noop', delay: 80 }, default_next: 'b' },
          { name: 'b', agent: { kind: 'noop', delay: 10 }, default_next: 'c' },
          { name: 'c', agent: { kind: 'noop' } },
        ],
      }),
    });
    const p = await waitFor(kernel, started.pid);

    expect(p.terminal_reason).toBe('completed');
    const events = await eventsOf(store, p);
    expect(ofType(events, 'budget.soft_timeout')).toHaveLength(1);
    expect(ofType(events, 'budget.exceeded')).toHaveLength(0);
  });

  it('edge_limits: the edge traversed more than max_count ends the run with max_loop_exceeded', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: wf({
        bounds: { max_iterations: 100, max_agent_hops: 100 },
        edge_limits: [{ from: 'b', to: 'a', max_count: 2 }],
        stages: [
          { name: 'a', agent: { kind: 'noop' }, default_next: 'b' },
          { name: 'b', agent: { kind: 'noop' }, default_next: 'a' },
        ],
      }),
    });
    const p = await waitFor(kernel, started.pid);

    expect(p.state).toBe('terminated');
    expect(p.terminal_reason).toBe('max_loop_exceeded');
    expect(p.envelope.edge_traversals['b->a']).toBe(3);
    const events = await eventsOf(store, p);
    expect(ofType(events, 'stage.completed')).toHaveLength(6);
    const terminated = ofType(events, 'process.terminated');
    expect(terminated).toHaveLength(1);
    expect((terminated[0]!.data as { reason: string }).reason).toBe('max_loop_exceeded');
  });

  it('max_visits: a stage entered max_visits times is not entered again', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: wf({
        bounds: { max_iterations: 100, max_agent_hops: 100 },
        stages: [{ name: 'again', max_visits: 3, agent: { kind: 'noop' }, default_next: 'again' }],
      }),
    });
    const p = await waitFor(kernel, started.pid);

    expect(p.state).toBe('terminated');
    expect(p.terminal_reason).toBe('max_visits_exceeded');
    expect(p.envelope.visits.again).toBe(3);
    const events = await eventsOf(store, p);
    expect(ofType(events, 'stage.completed')).toHaveLength(3);
    const terminated = ofType(events, 'process.terminated');
    expect((terminated[0]!.data as { reason: string }).reason).toBe('max_visits_exceeded');
  });
});

describe('on_budget_exhausted: interrupt', () => {
  it('raises a pending resource_exhausted interrupt instead of terminating', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: llmLoop({ max_llm_calls: 2 }, { onBudget: 'interrupt' }),
    });
    const p = await waitFor(kernel, started.pid);

    expect(p.state).toBe('waiting');
    expect(p.terminal_reason).toBeNull();
    const pending = await store.listInterrupts({ processId: p.pid, status: 'pending' });
    expect(pending).toHaveLength(1);
    expect(pending[0]!.kind).toBe('resource_exhausted');
    expect(pending[0]!.data).toMatchObject({
      reason: 'max_llm_calls_exceeded',
      limit: 'max_llm_calls',
    });
    const events = await eventsOf(store, p);
    expect(ofType(events, 'model.called')).toHaveLength(2);
    const exceeded = ofType(events, 'budget.exceeded');
    expect(exceeded).toHaveLength(1);
    expect((exceeded[0]!.data as { reason: string }).reason).toBe('max_llm_calls_exceeded');
  });

  it('approving grants more budget and the run continues; denying terminates with the budget reason', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: llmLoop({ max_llm_calls: 2 }, { onBudget: 'interrupt' }),
    });
    const first = await waitFor(kernel, started.pid);
    expect(first.state).toBe('waiting');
    const [ask] = await store.listInterrupts({ processId: first.pid, status: 'pending' });

    const { interrupt, process } = await kernel.resolveInterrupt(ask!.id, { approved: true });
    expect(interrupt.status).toBe('resolved');
    // The default grant adds the limit again: 2 → 4.
    expect(process!.quota.max_llm_calls).toBe(4);
    expect(process!.state).toBe('ready');

    const second = await waitFor(
      kernel,
      first.pid,
      (p) => p.state === 'terminated' || (p.state === 'waiting' && p.usage.llm_calls === 4),
    );
    expect(second.state).toBe('waiting');
    expect(second.quota.max_llm_calls).toBe(4);
    let events = await eventsOf(store, second);
    expect(ofType(events, 'model.called')).toHaveLength(4);
    expect(ofType(events, 'budget.granted')).toHaveLength(1);
    expect(ofType(events, 'budget.granted')[0]!.data).toMatchObject({
      before: { max_llm_calls: 2 },
      after: { max_llm_calls: 4 },
    });

    const pending = await store.listInterrupts({ processId: first.pid, status: 'pending' });
    expect(pending).toHaveLength(1);
    expect(pending[0]!.id).not.toBe(ask!.id);
    const denied = await kernel.resolveInterrupt(pending[0]!.id, { approved: false });
    expect(denied.process!.state).toBe('terminated');
    expect(denied.process!.terminal_reason).toBe('max_llm_calls_exceeded');
    expect(denied.process!.quota.max_llm_calls).toBe(4);

    const final = await kernel.getProcess(first.pid);
    expect(final.terminal_reason).toBe('max_llm_calls_exceeded');
    events = await eventsOf(store, final);
    expect(ofType(events, 'model.called')).toHaveLength(4);
    expect(ofType(events, 'budget.granted')).toHaveLength(1);
  });

  it('an explicit grant raises exactly that limit and a converging run completes', async () => {
    const { store, kernel } = await harness();
    const started = await kernel.startRun({
      workflow: llmLoop(
        { max_llm_calls: 2 },
        {
          onBudget: 'interrupt',
          script: [
            { json: { confident: false }, usage: { input_tokens: 10, output_tokens: 10 } },
            { json: { confident: false }, usage: { input_tokens: 10, output_tokens: 10 } },
            { json: { confident: true }, usage: { input_tokens: 10, output_tokens: 10 } },
          ],
        },
      ),
    });
    const waiting = await waitFor(kernel, started.pid);
    expect(waiting.state).toBe('waiting');
    const [ask] = await store.listInterrupts({ processId: waiting.pid, status: 'pending' });

    const { process } = await kernel.resolveInterrupt(ask!.id, {
      approved: true,
      grant: { max_llm_calls: 1 },
    });
    expect(process!.quota.max_llm_calls).toBe(3);
    expect(process!.quota.max_tool_calls).toBe(waiting.quota.max_tool_calls);

    const done = await waitFor(kernel, waiting.pid);
    expect(done.state).toBe('terminated');
    expect(done.terminal_reason).toBe('completed');
    expect(done.usage.llm_calls).toBe(3);
    expect(ofType(await eventsOf(store, done), 'model.called')).toHaveLength(3);
  });

  it('an unanswered resource_exhausted interrupt expires into the budget reason', async () => {
    const clock = new ManualClock();
    const { store, kernel } = await harness(new AgentRegistry(), clock);
    const started = await kernel.startRun({
      workflow: llmLoop({ max_llm_calls: 1 }, { onBudget: 'interrupt' }),
    });
    const waiting = await waitFor(kernel, started.pid);
    expect(waiting.state).toBe('waiting');
    const [ask] = await store.listInterrupts({ processId: waiting.pid, status: 'pending' });
    // resource_exhausted interrupts default to a 5 minute TTL.
    expect(ask!.expires_at).toBe(clock.now() + 5 * 60_000);

    clock.advance(5 * 60_000 + 1);
    expect(await kernel.interrupts.expireDue()).toBe(1);
    const final = await kernel.getProcess(waiting.pid);
    expect(final.state).toBe('terminated');
    expect(final.terminal_reason).toBe('max_llm_calls_exceeded');
    expect(final.quota.max_llm_calls).toBe(1);
    expect((await store.getInterrupt(ask!.id))!.status).toBe('expired');
  });

  it('a call refused mid-step raises the interrupt; approval re-runs the stage under the new budget', async () => {
    const agents = new AgentRegistry().register('twice', async (ctx) => {
      await ctx.model([{ role: 'user', content: 'one' }]);
      await ctx.model([{ role: 'user', content: 'two' }]);
      return { output: { ok: true } };
    });
    const { store, kernel } = await harness(agents);
    const started = await kernel.startRun({
      workflow: wf({
        bounds: { max_llm_calls: 3, max_iterations: 100, max_agent_hops: 100 },
        on_budget_exhausted: 'interrupt',
        stages: [
          {
            name: 'loop',
            max_visits: 100,
            agent: { kind: 'typescript', name: 'twice' },
            default_next: 'loop',
          },
        ],
      }),
    });
    const waiting = await waitFor(kernel, started.pid);
    expect(waiting.state).toBe('waiting');
    expect(waiting.usage.llm_calls).toBe(3);
    let events = await eventsOf(store, waiting);
    expect(ofType(events, 'model.called')).toHaveLength(3);
    expect(ofType(events, 'stage.failed')).toHaveLength(1);
    const [ask] = await store.listInterrupts({ processId: waiting.pid, status: 'pending' });
    expect(ask!.kind).toBe('resource_exhausted');

    await kernel.resolveInterrupt(ask!.id, { approved: true });
    const again = await waitFor(
      kernel,
      waiting.pid,
      (p) => p.state === 'terminated' || (p.state === 'waiting' && p.usage.llm_calls === 6),
    );
    expect(again.state).toBe('waiting');
    expect(again.quota.max_llm_calls).toBe(6);
    events = await eventsOf(store, again);
    expect(ofType(events, 'model.called')).toHaveLength(6);

    const [next] = await store.listInterrupts({ processId: waiting.pid, status: 'pending' });
    const denied = await kernel.resolveInterrupt(next!.id, { approved: false });
    expect(denied.process!.terminal_reason).toBe('max_llm_calls_exceeded');
  });
});
