/**
 * A plan task run by a Warden workflow (hooks entry `{"workflow": "file.yaml"}`): the task
 * starts a durable run of it in the plan's session with input `{task, queue, layer, input}`,
 * waits for the run to end, and writes `logs/<id>_workflow.json` (pid, outcome, outputs) as
 * its evidence. The start is an effect, so a resumed task waits for the run it already started
 * instead of starting another (unless the crash fell between the start and its record).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import {
  isTerminalProcessState,
  type LoadedWorkflow,
  parseWorkflowText,
  WardenError,
} from '../core/index.ts';
import {
  type PlanItem,
  type TaskResult,
  workflowEvidencePath,
  workflowResult,
} from '../core/plan/index.ts';
import type { Kernel } from '../kernel/index.ts';
import type { JobContext } from '../queue/index.ts';
import { type ProcessRecord, waitForChange } from '../store/index.ts';
import { KitError } from './kit-error.ts';
import { writeAtomic } from './run-dir.ts';

/** Reads and validates every workflow the items use, before the run exists. */
export function loadPlanWorkflows(items: readonly PlanItem[]): Map<string, LoadedWorkflow> {
  const loaded = new Map<string, LoadedWorkflow>();
  for (const item of items) {
    const file = item.agent === 'workflow' ? item.hook?.workflow : undefined;
    if (file === undefined || loaded.has(file)) continue;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new KitError(`workflow file not found: ${file} (hooks entry for ${item.id})`);
    }
    try {
      loaded.set(
        file,
        parseWorkflowText(text, file, { routingFunctions: new Set(), agents: new Set() }),
      );
    } catch (error) {
      throw new KitError(`invalid workflow ${file}: ${(error as Error).message}`);
    }
  }
  return loaded;
}

interface Started {
  readonly pid: string;
}

interface WorkflowEvidence {
  readonly path: string;
  readonly sha256: string;
  readonly ok: boolean;
  readonly error: string | null;
}

export async function runWorkflowItem(
  kernel: Kernel,
  workflows: ReadonlyMap<string, LoadedWorkflow>,
  ctx: { readonly runDir: string; readonly sessionKey: string; readonly keyPrefix: string },
  job: JobContext<unknown>,
  item: PlanItem,
): Promise<TaskResult> {
  const file = item.hook?.workflow ?? '';
  const workflow = workflows.get(file);
  if (!workflow) throw new WardenError('NOT_FOUND', `workflow ${file} was not loaded`);
  const agent = `workflow:${workflow.workflow.name}`;
  const started = await job.effect<Started>(
    `${ctx.keyPrefix}/run`,
    { workflow: file },
    async () => {
      const p = await kernel.startRun({
        workflow,
        input: {
          task: item.id,
          queue: item.queue,
          layer: item.layer,
          input: item.hook?.input ?? null,
        },
        sessionKey: ctx.sessionKey,
        source: resolve(file),
      });
      return { pid: p.pid };
    },
    { tool: 'plan.workflow', summary: (s) => ({ pid: s.pid }) },
  );
  const ended = await waitForChange<ProcessRecord>(
    kernel.store,
    async () => {
      const p = await kernel.store.getProcess(started.pid);
      return p && isTerminalProcessState(p.state) ? p : undefined;
    },
    { deadline: Number.POSITIVE_INFINITY, now: () => kernel.clock.now(), signal: job.signal },
  );
  if (!ended) throw new WardenError('CANCELED', `stopped waiting for run ${started.pid}`);
  const evidence = await job.effect<WorkflowEvidence>(
    `${ctx.keyPrefix}/evidence`,
    { pid: started.pid },
    () => {
      const ok = ended.terminal_reason === 'completed';
      const error = ok
        ? null
        : `run ${ended.pid} ended ${ended.terminal_reason ?? ended.state}${ended.terminal_message ? `: ${ended.terminal_message}` : ''}`;
      const path = workflowEvidencePath(ctx.runDir, item.fileKey);
      const text = `${JSON.stringify(
        {
          task: item.id,
          queue: item.queue,
          workflow: workflow.workflow.name,
          pid: ended.pid,
          state: ended.state,
          reason: ended.terminal_reason,
          message: ended.terminal_message,
          outputs: ended.envelope.outputs,
        },
        null,
        2,
      )}\n`;
      writeAtomic(path, text);
      return { path, sha256: createHash('sha256').update(text).digest('hex'), ok, error };
    },
    { tool: 'plan.evidence', summary: (e) => ({ evidence: e.path, sha256: e.sha256 }) },
  );
  return workflowResult(item, agent, evidence.ok, evidence.path, evidence.error);
}
