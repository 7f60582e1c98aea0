/**
 * Every function and method of the public entry points (`warden`, `warden/testing`) checks its
 * arguments at the boundary: a bad one is a typed error (INVALID_PARAMS, or WORKFLOW_INVALID
 * for a bad workflow) whose message names the function, the parameter and what was expected —
 * never a raw TypeError — and nothing is written. A method that returns a promise rejects it
 * rather than throwing.
 */
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AgentRegistry,
  buildWorkflow,
  EffectJournal,
  type ErrorCode,
  isWardenError,
  JobQueue,
  JobWorker,
  Kernel,
  type LoadedWorkflow,
  ManualClock,
  ModelRegistry,
  nonRetryable,
  OpenAiProvider,
  openSqliteStore,
  parseWorkflowText,
  retryAfter,
  type Store,
  verifyLedger,
  WardenError,
  Worker,
  type WorkflowInput,
} from '../src/index.ts';
import { createTestKernel } from '../src/testing/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

interface Ctx {
  readonly file: string;
  readonly store: Store;
  readonly kernel: Kernel;
  readonly queue: JobQueue;
  readonly loaded: LoadedWorkflow;
}

interface Case {
  readonly name: string;
  readonly code: ErrorCode;
  /** The whole message, or a pattern when part of it is not ours (a JSON error's text). */
  readonly message: string | RegExp;
  /** Called with arguments the types forbid: `never` stands for "whatever a caller passes". */
  readonly run: (ctx: Ctx) => unknown;
}

const bad = <T>(value: unknown) => value as T;
const noop = () => undefined;
const SCOPE = {
  taskId: 't_1',
  leaseToken: 'lt_1',
  workerId: 'w1',
  sessionId: 's_1',
  processId: null,
  traceId: 'tr_1',
  attempt: 1,
  leaseMs: 15_000,
};
const WORKFLOW: WorkflowInput = { name: 'order', stages: [{ name: 'a', agent: { kind: 'noop' } }] };
const STARTS = 'expected an object { workflow, input?, sessionKey?, … }';
const WANT_WORKFLOW =
  'expected the LoadedWorkflow that buildWorkflow() or parseWorkflowText() returns, or a workflow object with name and stages';
const POSITIVE = 'expected a positive integer';

const CASES: readonly Case[] = [
  // Workflows and errors (core).
  {
    name: 'buildWorkflow with the options where the file name goes',
    code: 'INVALID_PARAMS',
    message:
      'buildWorkflow: fileName: expected a file name for messages (a string) (got an object with keys agents)',
    run: () => buildWorkflow(WORKFLOW, bad({ agents: new Set() })),
  },
  {
    name: 'buildWorkflow with routing function names in an array',
    code: 'INVALID_PARAMS',
    message:
      "buildWorkflow: options.routingFunctions: expected a Set of names (e.g. agents.names() or new Set(['bySize'])) (got an array of 1)",
    run: () => buildWorkflow(WORKFLOW, 'order', bad({ routingFunctions: ['bySize'] })),
  },
  {
    name: 'buildWorkflow with a misspelt option',
    code: 'INVALID_PARAMS',
    message:
      "buildWorkflow: options: unknown key 'agent' (known keys: agents, routingFunctions, allowUnreachable)",
    run: () => buildWorkflow(WORKFLOW, 'order', bad({ agent: new Set() })),
  },
  {
    name: 'buildWorkflow with nothing',
    code: 'WORKFLOW_INVALID',
    message: /^<workflow> is not a workflow:\n {2}<workflow>: \(document\): expected a mapping/,
    run: () => buildWorkflow(undefined),
  },
  {
    name: 'parseWorkflowText with a Buffer',
    code: 'INVALID_PARAMS',
    message:
      "parseWorkflowText: text: expected the workflow's YAML or JSON text as a string (read files with readFileSync(file, 'utf8')) (got a Buffer)",
    run: () => parseWorkflowText(bad(Buffer.from('name: x'))),
  },
  {
    name: 'a WardenError with an unknown code',
    code: 'INVALID_PARAMS',
    message:
      "new WardenError: code: expected one of the codes in ERROR_CATALOGUE (docs/errors.md) (got 'NOPE')",
    run: () => new WardenError(bad('NOPE'), 'x'),
  },
  {
    name: 'a ManualClock started at a date string',
    code: 'INVALID_PARAMS',
    message: 'new ManualClock: startMs: expected an integer number of ms (got "now")',
    run: () => new ManualClock(bad('now')),
  },
  {
    name: 'a ManualClock advanced by a fraction',
    code: 'INVALID_PARAMS',
    message: 'ManualClock.advance: ms: expected an integer number of ms (got 1.5)',
    run: () => new ManualClock().advance(1.5),
  },
  // The store.
  {
    name: 'openSqliteStore with nothing',
    code: 'INVALID_PARAMS',
    message:
      "openSqliteStore: options: expected an options object { file, durability?, … } (e.g. { file: './warden.db' }) (got undefined)",
    run: () => openSqliteStore(bad(undefined)),
  },
  {
    name: 'openSqliteStore with path instead of file',
    code: 'INVALID_PARAMS',
    message:
      "openSqliteStore: options.file: expected a database file path, or ':memory:' (got undefined); options: unknown key 'path' (known keys: file, durability, clock, busyTimeoutMs, mustExist, intent)",
    run: (c) => openSqliteStore(bad({ path: c.file })),
  },
  {
    name: 'openSqliteStore with an unknown durability',
    code: 'INVALID_PARAMS',
    message: `openSqliteStore: options.durability: expected one of 'fast', 'strict' (got "safe")`,
    run: (c) => openSqliteStore(bad({ file: c.file, durability: 'safe' })),
  },
  {
    name: 'readEvents with nothing',
    code: 'INVALID_PARAMS',
    message:
      'Store.readEvents: query: expected an EventQuery { sessionId, afterSeq?, processId?, limit? } (got undefined)',
    run: (c) => c.store.readEvents(bad(undefined)),
  },
  {
    name: 'readEvents after a seq given as text',
    code: 'INVALID_PARAMS',
    message: 'Store.readEvents: query.afterSeq: expected an integer ≥ 0 (got "3")',
    run: (c) => c.store.readEvents(bad({ sessionId: 's_1', afterSeq: '3' })),
  },
  {
    name: 'listInterrupts with an unknown status',
    code: 'INVALID_PARAMS',
    message:
      "Store.listInterrupts: filter.status: expected one of 'pending', 'resolved', 'expired', 'cancelled' (got \"open\")",
    run: (c) => c.store.listInterrupts(bad({ status: 'open' })),
  },
  {
    name: 'listTasks with one state instead of a list',
    code: 'INVALID_PARAMS',
    message:
      'Store.listTasks: filter.states: expected an array of states such as [\'queued\'] (got "queued")',
    run: (c) => c.store.listTasks(bad({ states: 'queued' })),
  },
  {
    name: 'listProcesses with a misspelt filter',
    code: 'INVALID_PARAMS',
    message:
      "Store.listProcesses: filter: unknown key 'state' (known keys: states, sessionId, limit)",
    run: (c) => c.store.listProcesses(bad({ state: 'running' })),
  },
  {
    name: 'store.getProcess with nothing',
    code: 'INVALID_PARAMS',
    message: 'Store.getProcess: pid: expected a non-empty pid string (got undefined)',
    run: (c) => c.store.getProcess(bad(undefined)),
  },
  // The kernel.
  {
    name: 'a Kernel with nothing',
    code: 'INVALID_PARAMS',
    message:
      'new Kernel: options: expected an options object { store, … } (at least the store from openSqliteStore()) (got undefined)',
    run: () => new Kernel(bad(undefined)),
  },
  {
    name: 'a Kernel given a file name as its store',
    code: 'INVALID_PARAMS',
    message:
      'new Kernel: options.store: expected a Store from openSqliteStore() (open it with await openSqliteStore({ file })) (got "warden.db")',
    run: () => new Kernel(bad({ store: 'warden.db' })),
  },
  {
    name: 'a Kernel with a routing function that is not a function',
    code: 'INVALID_PARAMS',
    message:
      'new Kernel: options.routingFunctions.bySize: expected a routing function (ctx) => string | undefined (got "big")',
    run: (c) => new Kernel({ store: c.store, routingFunctions: bad({ bySize: 'big' }) }),
  },
  {
    name: 'a Kernel with incomplete rate limits',
    code: 'INVALID_PARAMS',
    message: `new Kernel: options.rateLimits.per_hour: ${POSITIVE} (got undefined); options.rateLimits.per_day: ${POSITIVE} (got undefined); options.rateLimits.burst: ${POSITIVE} (got undefined)`,
    run: (c) => new Kernel({ store: c.store, rateLimits: bad({ per_minute: 10 }) }),
  },
  {
    name: 'a Kernel with a lane name with a space',
    code: 'INVALID_PARAMS',
    message:
      'new Kernel: options.agentLane: expected a lane name of 1-64 letters, digits, _ . : - (got "my lane")',
    run: (c) => new Kernel({ store: c.store, agentLane: 'my lane' }),
  },
  {
    name: 'startRun with nothing',
    code: 'INVALID_PARAMS',
    message: `Kernel.startRun: ${STARTS} (got undefined)`,
    run: (c) => c.kernel.startRun(bad(undefined)),
  },
  {
    name: 'startRun without a workflow',
    code: 'INVALID_PARAMS',
    message: `Kernel.startRun: workflow: ${WANT_WORKFLOW} (got undefined)`,
    run: (c) => c.kernel.startRun(bad({ input: {} })),
  },
  {
    name: 'startRun with a file name as the workflow',
    code: 'INVALID_PARAMS',
    message: `Kernel.startRun: workflow: ${WANT_WORKFLOW} (got "order.yaml"); to run a file, load it first: parseWorkflowText(readFileSync(path, 'utf8'), path)`,
    run: (c) => c.kernel.startRun({ workflow: bad('order.yaml') }),
  },
  {
    name: 'startRun with the workflow wrapped without its hash',
    code: 'INVALID_PARAMS',
    message: `Kernel.startRun: workflow: ${WANT_WORKFLOW} (got an object with keys workflow); a { workflow, hash } pair needs the string hash buildWorkflow() gave it, or pass the workflow object alone`,
    run: (c) => c.kernel.startRun({ workflow: bad({ workflow: c.loaded.workflow }) }),
  },
  {
    name: 'startRun with a hash that does not match its workflow',
    code: 'INVALID_PARAMS',
    message:
      /^Kernel\.startRun: workflow\.hash: does not match workflow\.workflow \(its hash is [0-9a-f]{64}\): the workflow was changed after it was built, or the pair was made by hand; pass what buildWorkflow\(\) returns unchanged, or just the workflow object$/,
    run: (c) => c.kernel.startRun({ workflow: { ...c.loaded, hash: 'abc' } }),
  },
  {
    name: 'startRun with an invalid workflow object',
    code: 'WORKFLOW_INVALID',
    message:
      /^<workflow> does not match the workflow schema:\n {2}<workflow>: stages: expected at least one stage/,
    run: (c) => c.kernel.startRun({ workflow: { name: 'x', stages: [] } }),
  },
  {
    name: 'startRun with a workflow object naming an unregistered routing function',
    code: 'WORKFLOW_INVALID',
    message: /stages\[0\]\.routing\[0\]\.fn: .*bySize/,
    run: (c) =>
      c.kernel.startRun({
        workflow: { name: 'x', stages: [{ name: 'a', routing: [{ fn: 'bySize' }] }] },
      }),
  },
  {
    name: 'startRun with an unknown priority, a misspelt quota and a bad session key',
    code: 'INVALID_PARAMS',
    message:
      "Kernel.startRun: sessionKey: expected a session key of 1-128 letters, digits, _ . : - (got \"my session\"); priority: expected one of 'realtime', 'high', 'normal', 'low', 'idle' (got \"urgent\"); quota: unknown key 'max_llm_call' (known keys: max_llm_calls, max_tool_calls, max_agent_hops, max_iterations, max_input_tokens, max_output_tokens, timeout_ms, soft_timeout_ms)",
    run: (c) =>
      c.kernel.startRun({
        workflow: c.loaded,
        sessionKey: 'my session',
        priority: bad('urgent'),
        quota: bad({ max_llm_call: 3 }),
      }),
  },
  {
    name: 'startRun with a quota of 0',
    code: 'INVALID_PARAMS',
    message: `Kernel.startRun: quota.max_llm_calls: ${POSITIVE} (got 0)`,
    run: (c) => c.kernel.startRun({ workflow: c.loaded, quota: { max_llm_calls: 0 } }),
  },
  {
    name: 'startRun with metadata that is not an object',
    code: 'INVALID_PARAMS',
    message: 'Kernel.startRun: metadata: expected a plain object of JSON values (got "gold")',
    run: (c) => c.kernel.startRun({ workflow: c.loaded, metadata: bad('gold') }),
  },
  {
    name: 'startRun with `inputs` for `input`',
    code: 'INVALID_PARAMS',
    message:
      "Kernel.startRun: unknown key 'inputs' (known keys: workflow, input, sessionKey, userId, priority, quota, metadata, source, parentPid, usage)",
    run: (c) => c.kernel.startRun(bad({ workflow: c.loaded, inputs: {} })),
  },
  {
    name: 'startRun with an input that is not JSON',
    code: 'INVALID_PARAMS',
    message: /^the run input is not serialisable as JSON: /,
    run: (c) => c.kernel.startRun({ workflow: c.loaded, input: { amount: 1n } }),
  },
  {
    name: 'getProcess with a number',
    code: 'INVALID_PARAMS',
    message: 'Kernel.getProcess: pid: expected a process id string (got 42)',
    run: (c) => c.kernel.getProcess(bad(42)),
  },
  {
    name: 'cancelRun with an options object for its message',
    code: 'INVALID_PARAMS',
    message: 'Kernel.cancelRun: message: expected a string (got an object with keys reason)',
    run: (c) => c.kernel.cancelRun('p_1', bad({ reason: 'x' })),
  },
  {
    name: 'resolveInterrupt with true for a response',
    code: 'INVALID_PARAMS',
    message:
      'Kernel.resolveInterrupt: response: expected an InterruptResponse object such as { approved: true } or { text: "…" } (got true)',
    run: (c) => c.kernel.resolveInterrupt('int_1', bad(true)),
  },
  {
    name: 'resolveInterrupt with a misspelt answer',
    code: 'INVALID_PARAMS',
    message:
      "Kernel.resolveInterrupt: response: unknown key 'aproved' (known keys: approved, text, decision, data, grant, expired)",
    run: (c) => c.kernel.resolveInterrupt('int_1', bad({ aproved: true })),
  },
  {
    name: 'resolveInterrupt granting a negative amount',
    code: 'INVALID_PARAMS',
    message: `Kernel.resolveInterrupt: response.grant.max_llm_calls: ${POSITIVE} (got -1)`,
    run: (c) => c.kernel.resolveInterrupt('int_1', { grant: { max_llm_calls: -1 } }),
  },
  {
    name: 'resolveInterrupt with the interrupt record instead of its id',
    code: 'INVALID_PARAMS',
    message:
      'Kernel.resolveInterrupt: id: expected an interrupt id string (got an object with keys id)',
    run: (c) => c.kernel.resolveInterrupt(bad({ id: 'int_1' }), { approved: true }),
  },
  {
    name: 'registerService with a bare name',
    code: 'INVALID_PARAMS',
    message:
      'Kernel.registerService: info.type: expected a service type string (got undefined); info.capabilities: expected an array of strings (got undefined); info.maxConcurrency: expected a positive integer (got undefined); info.owner: expected an owner id string (got undefined)',
    run: (c) => c.kernel.registerService(bad({ name: 'w1' })),
  },
  {
    name: 'unregisterService with nothing',
    code: 'INVALID_PARAMS',
    message: 'Kernel.unregisterService: name: expected a service name string (got undefined)',
    run: (c) => c.kernel.unregisterService(bad(undefined)),
  },
  {
    name: 'bus.subscribe with one type instead of a list',
    code: 'INVALID_PARAMS',
    message:
      'Bus.subscribe: types: expected an array of event types (e.g. [\'process.terminated\']) or null for all (got "process.terminated")',
    run: (c) => c.kernel.bus.subscribe(bad('process.terminated'), noop),
  },
  {
    name: 'bus.subscribe without a callback',
    code: 'INVALID_PARAMS',
    message:
      'Bus.subscribe: deliver: expected a function (message, missed) => void (got undefined)',
    run: (c) => c.kernel.bus.subscribe(null, bad(undefined)),
  },
  {
    name: 'verifyLedger without a store',
    code: 'INVALID_PARAMS',
    message:
      'verifyLedger: store: expected a Store from openSqliteStore() (open it with await openSqliteStore({ file })) (got undefined)',
    run: () => verifyLedger(bad(undefined)),
  },
  // Workers and agents.
  {
    name: 'a Worker with nothing',
    code: 'INVALID_PARAMS',
    message:
      'new Worker: options: expected an options object { kernel, agents?, … } (got undefined)',
    run: () => new Worker(bad(undefined)),
  },
  {
    name: 'a Worker with agents as a plain object',
    code: 'INVALID_PARAMS',
    message:
      'new Worker: options.agents: expected an AgentRegistry (new AgentRegistry().register(name, agent)) (got an object with keys price)',
    run: (c) => new Worker({ kernel: c.kernel, agents: bad({ price: noop }) }),
  },
  {
    name: 'a Worker with concurrency 0, a lease as text and an unknown heartbeat',
    code: 'INVALID_PARAMS',
    message: `new Worker: options.concurrency: expected an integer from 1 to 10000 (got 0); options.leaseMs: expected an integer from 1 to 604800000 (got "15s"); options.heartbeat: expected one of 'auto', 'thread', 'timer' (got "worker")`,
    run: (c) =>
      new Worker({
        kernel: c.kernel,
        concurrency: 0,
        leaseMs: bad('15s'),
        heartbeat: bad('worker'),
      }),
  },
  {
    name: 'Worker.stop with true',
    code: 'INVALID_PARAMS',
    message: 'Worker.stop: options: expected an object { abort?, release? } (got true)',
    run: (c) => new Worker({ kernel: c.kernel }).stop(bad(true)),
  },
  {
    name: 'registering an agent without the agent',
    code: 'INVALID_PARAMS',
    message:
      'AgentRegistry.register: agent: expected an agent: a function (ctx, config) => Promise<StepResult>, or an object with such a run method (got undefined)',
    run: () => new AgentRegistry().register('price', bad(undefined)),
  },
  {
    name: 'registering an agent object without run',
    code: 'INVALID_PARAMS',
    message:
      'AgentRegistry.register: agent: expected an agent: a function (ctx, config) => Promise<StepResult>, or an object with such a run method (got an object with keys execute)',
    run: () => new AgentRegistry().register('price', bad({ execute: noop })),
  },
  {
    name: 'a ModelRegistry with an empty default',
    code: 'INVALID_PARAMS',
    message:
      "new ModelRegistry: defaultSpec: expected a model spec string such as 'scripted' or 'openai:gpt-4o-mini' (got \"\")",
    run: () => new ModelRegistry(''),
  },
  {
    name: 'registering a model provider under a spec',
    code: 'INVALID_PARAMS',
    message:
      'ModelRegistry.register: name: expected a provider name of letters, digits, _ . - (no colon) (got "openai:gpt")',
    run: () => new ModelRegistry().register('openai:gpt', bad(noop)),
  },
  {
    name: 'an OpenAiProvider with baseUrl for baseURL',
    code: 'INVALID_PARAMS',
    message:
      "new OpenAiProvider: options: unknown key 'baseUrl' (known keys: baseURL, apiKey, defaultModel, maxRetries)",
    run: () => new OpenAiProvider(bad({ baseUrl: 'http://localhost:11434/v1' })),
  },
  // The job queue.
  {
    name: 'a JobQueue with lanes as a list',
    code: 'INVALID_PARAMS',
    message:
      'new JobQueue: options.lanes: expected an object of lane options by lane name, e.g. { small: { concurrency: 1 } } (got an array of 1)',
    run: (c) => new JobQueue({ store: c.store, lanes: bad(['small']) }),
  },
  {
    name: 'submitMany with one job',
    code: 'INVALID_PARAMS',
    message:
      'JobQueue.submitMany: jobs: expected an array of jobs [{ name, payload, options? }, …] (got an object with keys name, payload)',
    run: (c) => c.queue.submitMany(bad({ name: 'job', payload: null })),
  },
  {
    name: 'submitMany with a null job',
    code: 'INVALID_PARAMS',
    message: 'JobQueue.submitMany: jobs[1]: expected a job { name, payload, options? } (got null)',
    run: (c) => c.queue.submitMany(bad([{ name: 'job', payload: 1 }, null])),
  },
  {
    name: 'queue.get with nothing',
    code: 'INVALID_PARAMS',
    message: 'JobQueue.get: id: expected a task id string (got undefined)',
    run: (c) => c.queue.get(bad(undefined)),
  },
  {
    name: 'queue.result with a timeout for its options',
    code: 'INVALID_PARAMS',
    message: 'JobQueue.result: options: expected an object { timeoutMs? } (got 5000)',
    run: (c) => c.queue.result('t_1', bad(5_000)),
  },
  {
    name: 'queue.deadLetters with a lane name for its options',
    code: 'INVALID_PARAMS',
    message: 'JobQueue.deadLetters: options: expected an object { lane?, limit? } (got "small")',
    run: (c) => c.queue.deadLetters(bad('small')),
  },
  {
    name: 'queue.cancel with a number for its reason',
    code: 'INVALID_PARAMS',
    message: 'JobQueue.cancel: reason: expected a string (got 42)',
    run: (c) => c.queue.cancel('t_1', bad(42)),
  },
  {
    name: 'queue.redrive with nothing',
    code: 'INVALID_PARAMS',
    message: 'JobQueue.redrive: id: expected a task id string (got undefined)',
    run: (c) => c.queue.redrive(bad(undefined)),
  },
  {
    name: 'queue.schedule without a spec',
    code: 'INVALID_PARAMS',
    message:
      'JobQueue.schedule: spec: expected a schedule { cron or everyMs, job, payload?, lane?, options?, enabled? } (got undefined)',
    run: (c) => c.queue.schedule('nightly', bad(undefined)),
  },
  {
    name: 'queue.schedule with a misspelt key',
    code: 'INVALID_PARAMS',
    message:
      "JobQueue.schedule: spec: unknown key 'every' (known keys: cron, everyMs, job, payload, lane, options, enabled)",
    run: (c) => c.queue.schedule('nightly', bad({ cron: '0 0 * * *', job: 'job', every: 5 })),
  },
  {
    name: 'queue.unschedule with nothing',
    code: 'INVALID_PARAMS',
    message:
      'JobQueue.unschedule: name: expected a schedule name of 1-128 letters, digits, _ . : / - (got undefined)',
    run: (c) => c.queue.unschedule(bad(undefined)),
  },
  {
    name: 'a JobWorker with nothing',
    code: 'INVALID_PARAMS',
    message:
      'new JobWorker: options: expected an options object { queue, lanes?, concurrency?, … } (got undefined)',
    run: () => new JobWorker(bad(undefined)),
  },
  {
    name: 'a JobWorker with a word for its concurrency and a negative prefetch',
    code: 'INVALID_PARAMS',
    message:
      'new JobWorker: options.concurrency: expected a positive integer, or an object of positive integers by lane name (got "many"); options.prefetch: expected an integer from 0 to 100000 (got -1)',
    run: (c) => new JobWorker({ queue: c.queue, concurrency: bad('many'), prefetch: -1 }),
  },
  {
    name: 'JobWorker.handle with a job name with a space',
    code: 'INVALID_PARAMS',
    message:
      'JobWorker.handle: name: expected a job name of 1-128 letters, digits, _ . : / - (got "send email")',
    run: (c) => new JobWorker({ queue: c.queue }).handle('send email', noop),
  },
  {
    name: 'JobWorker.handle without a handler',
    code: 'INVALID_PARAMS',
    message:
      'JobWorker.handle: handler: expected a handler function (job) => result (got undefined)',
    run: (c) => new JobWorker({ queue: c.queue }).handle('email', bad<() => void>(undefined)),
  },
  {
    name: 'JobWorker.stop with a word',
    code: 'INVALID_PARAMS',
    message: 'JobWorker.stop: options: expected an object { abort? } (got "now")',
    run: (c) => new JobWorker({ queue: c.queue }).stop(bad('now')),
  },
  {
    name: 'an EffectJournal without a store',
    code: 'INVALID_PARAMS',
    message:
      'new EffectJournal: store: expected a Store from openSqliteStore() (open it with await openSqliteStore({ file })) (got undefined)',
    run: () => new EffectJournal(bad(undefined)),
  },
  {
    name: 'an EffectJournal with a takeover of 0 ms',
    code: 'INVALID_PARAMS',
    message: `new EffectJournal: options.takeoverAfterMs: expected an integer from 1 to 2592000000 (got 0)`,
    run: (c) => new EffectJournal(c.store, undefined, { takeoverAfterMs: 0 }),
  },
  {
    name: 'EffectJournal.forClaim with an empty claim',
    code: 'INVALID_PARAMS',
    message:
      'EffectJournal.forClaim: claim.task: expected the claimed task record (got undefined); claim.leaseToken: expected a lease token string (got undefined); claim.attempt: expected a positive integer (got undefined)',
    run: (c) => new EffectJournal(c.store).forClaim(bad({})),
  },
  {
    name: 'EffectJournal.forAttempt with a scope missing its lease',
    code: 'INVALID_PARAMS',
    message:
      'EffectJournal.forAttempt: scope.leaseToken: expected a lease token string (got undefined)',
    run: (c) => new EffectJournal(c.store).forAttempt(bad({ ...SCOPE, leaseToken: undefined })),
  },
  {
    name: 'an effect with an empty key',
    code: 'INVALID_PARAMS',
    message:
      'effect: key: expected an effect key: a non-empty string of at most 512 characters (got "")',
    run: (c) => new EffectJournal(c.store).forAttempt(SCOPE).effect('', null, noop),
  },
  {
    name: 'an effect whose function is a value',
    code: 'INVALID_PARAMS',
    message: 'effect: fn: expected the effect function () => result (got "sent")',
    run: (c) => new EffectJournal(c.store).forAttempt(SCOPE).effect('email', null, bad('sent')),
  },
  {
    name: 'retryAfter with a duration string',
    code: 'INVALID_PARAMS',
    message: 'retryAfter: delayMs: expected a delay in ms: an integer ≥ 0 (got "5s")',
    run: () => retryAfter(bad('5s')),
  },
  {
    name: 'nonRetryable with a number',
    code: 'INVALID_PARAMS',
    message: 'nonRetryable: message: expected a string (got 42)',
    run: () => nonRetryable(bad(42)),
  },
  // warden/testing.
  {
    name: 'createTestKernel with agents as a plain object',
    code: 'INVALID_PARAMS',
    message:
      'createTestKernel: options.agents: expected an AgentRegistry (new AgentRegistry().register(name, agent)) (got an object with keys price)',
    run: () => createTestKernel({ agents: bad({ price: noop }) }),
  },
];

describe('public API argument checks', () => {
  let ctx: Ctx;

  beforeAll(async () => {
    const dir = tempDir();
    const store = await openSqliteStore({ file: join(dir, 'warden.db') });
    ctx = {
      file: join(dir, 'other.db'),
      store,
      kernel: new Kernel({ store }),
      queue: new JobQueue({ store }),
      loaded: buildWorkflow(WORKFLOW),
    };
    // Something to change: a run and a job, so "nothing changed" is a real check.
    await ctx.kernel.startRun({ workflow: ctx.loaded });
    await ctx.queue.submit('job', { n: 1 });
  });
  afterAll(async () => {
    ctx.kernel.close();
    await ctx.store.close();
    removeTempDirs();
  });

  async function snapshot() {
    const sessions = await ctx.store.listSessions();
    let events = 0;
    for (const s of sessions) events += (await ctx.store.readEvents({ sessionId: s.id })).length;
    return {
      sessions: sessions.length,
      events,
      processes: (await ctx.store.listProcesses()).length,
      tasks: (await ctx.store.listTasks()).length,
    };
  }

  it.each(CASES)('$name → $code', async (c) => {
    const before = await snapshot();
    let result: unknown;
    let caught: unknown;
    let threw = false;
    try {
      result = c.run(ctx);
    } catch (error) {
      caught = error;
      threw = true;
    }
    if (!threw) {
      // Promise-returning methods reject; they never throw synchronously.
      expect(result, 'the call neither threw nor returned a promise').toBeInstanceOf(Promise);
      caught = await (result as Promise<unknown>).then(
        () => undefined,
        (error: unknown) => error,
      );
    }
    expect(isWardenError(caught, c.code), `expected ${c.code}, got ${String(caught)}`).toBe(true);
    const message = (caught as WardenError).message;
    if (typeof c.message === 'string') expect(message).toBe(c.message);
    else expect(message).toMatch(c.message);
    expect(await snapshot()).toEqual(before);
  });

  it('a workflow object is accepted where a LoadedWorkflow is, with the same hash', async () => {
    const fromObject = await ctx.kernel.startRun({ workflow: WORKFLOW });
    const fromLoaded = await ctx.kernel.startRun({ workflow: ctx.loaded });
    const fromDestructured = await ctx.kernel.startRun({ workflow: ctx.loaded.workflow });
    expect(fromObject.workflow_hash).toBe(ctx.loaded.hash);
    expect(fromLoaded.workflow_hash).toBe(ctx.loaded.hash);
    expect(fromDestructured.workflow_hash).toBe(ctx.loaded.hash);
  });

  it('a LoadedWorkflow is frozen, so it cannot drift from its hash', () => {
    expect(Object.isFrozen(ctx.loaded)).toBe(true);
    expect(Object.isFrozen(ctx.loaded.workflow.stages[0]!.agent)).toBe(true);
    expect(() => {
      (ctx.loaded.workflow.stages as unknown[]).push({});
    }).toThrow(TypeError);
  });

  it('the error details list every problem with its path', async () => {
    const error = await ctx.kernel
      .startRun({ workflow: ctx.loaded, priority: bad('urgent'), userId: '' })
      .then(
        () => undefined,
        (e: unknown) => e as WardenError,
      );
    expect(error?.details).toEqual({
      where: 'Kernel.startRun',
      issues: [
        { path: 'userId', message: 'expected a user id string of 1-128 characters (got "")' },
        {
          path: 'priority',
          message: "expected one of 'realtime', 'high', 'normal', 'low', 'idle' (got \"urgent\")",
        },
      ],
    });
  });
});

describe("an agent's context checks its arguments", () => {
  it('ctx.model, ctx.toolCall and ctx.effect reject bad arguments with INVALID_PARAMS', async () => {
    const seen: string[] = [];
    const agents = new AgentRegistry().register('probe', async (ctx) => {
      const calls: Array<() => Promise<unknown>> = [
        () => ctx.model(bad('hello')),
        () => ctx.model([{ role: 'user', content: 'hi' }], bad({ temperature: 3 })),
        () => ctx.toolCall(bad(undefined)),
        () => ctx.effect('', null, noop),
        () => ctx.effect('email', null, noop, bad({ retries: 3 })),
      ];
      for (const call of calls) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        seen.push(isWardenError(error, 'INVALID_PARAMS') ? error.message : String(error));
      }
      return { output: { ok: true } };
    });
    const t = await createTestKernel({ agents });
    try {
      const p = await t.kernel.startRun({
        workflow: {
          name: 'probe',
          stages: [{ name: 'a', agent: { kind: 'typescript', name: 'probe' } }],
        },
      });
      expect((await t.settle(p.pid)).terminal_reason).toBe('completed');
    } finally {
      await t.close();
    }
    expect(seen).toEqual([
      "ctx.model: messages: expected an array of chat messages [{ role: 'system' | 'user' | 'assistant' | 'tool', content: string }, …] (got \"hello\")",
      'ctx.model: options.temperature: expected a number from 0 to 2 (got 3)',
      'ctx.toolCall: tool: expected a tool name string of 1-256 characters (got undefined)',
      'ctx.effect: key: expected an effect key: a string of 1-256 characters naming the call in the step (got "")',
      "ctx.effect: options: unknown key 'retries' (known keys: tool, reconcile)",
    ]);
  });
});
