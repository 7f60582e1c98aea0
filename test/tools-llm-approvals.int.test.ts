/**
 * The agent tool path end to end, as a user meets it (issue 11): an `llm` stage on the scripted
 * provider asks for a denied tool, an allowed one and one that needs a person's approval; the
 * real `warden` CLI runs it (`--no-interactive` stops at the approval with exit 4), `warden
 * approve|deny` answers it (or nobody does and it expires) and `warden resume` finishes the run.
 * The events and the audit log must show exactly what happened; the approved effect must happen
 * once even when `warden resume` is SIGKILLed between the approval and the end of the run; and
 * with no policy file every call (tool, URL, path, command, key, workflow) is denied and audited.
 * Two regressions found on the way: an approval is bound to the exact call it showed, and a run
 * waiting on an approval does not hold another `warden run` open.
 *
 * Every scenario has its own WARDEN_HOME (a real SQLite file); they run concurrently because
 * each is a chain of CLI processes that mostly wait on process start-up.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, it } from 'vitest';

import type { AuditRecord } from '../src/core/index.ts';
import { type EventRecord, openSqliteStore, type Store } from '../src/store/index.ts';
import { type CliResult, json, runCli, spawnCli } from './helpers/cli.ts';
import { startServer } from './helpers/http-server.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { waitFor } from './helpers/wait.ts';

afterAll(removeTempDirs);

const WORKFLOW = 'tools-wf';
const STAGE = 'act';
const PRINCIPAL = `agent:${WORKFLOW}/${STAGE}`;
// A bound for a hang, not a speed check: each scenario is several CLI processes on a busy machine.
const TEST_TIMEOUT_MS = 180_000;

interface Home {
  readonly home: string;
  /** A directory the policy lets the agent read and write (holds notes.txt). */
  readonly data: string;
  readonly workflow: string;
}

/** A home with a data directory, the workflow file and (optionally) policy.yaml, config.yaml. */
function makeHome(options: {
  policy?: (data: string) => string;
  config?: string;
  workflow: (data: string) => string;
}): Home {
  // Real paths: the path guard resolves symlinks, and the policy names the resolved roots.
  const home = realpathSync(tempDir());
  const data = join(home, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'notes.txt'), 'hello from notes\n');
  if (options.policy) writeFileSync(join(home, 'policy.yaml'), options.policy(data));
  if (options.config) writeFileSync(join(home, 'config.yaml'), options.config);
  const workflow = join(home, 'wf.yaml');
  writeFileSync(workflow, options.workflow(data));
  return { home, data, workflow };
}

/** shell.exec is not among the agent's tools; fs.read is; fs.write needs a person's approval. */
const POLICY = (data: string) => `version: 1
agents:
  ${WORKFLOW}/${STAGE}:
    tools: [fs.read, fs.write]
    ask: [fs.write]
    files:
      read: [${JSON.stringify(data)}]
      write: [${JSON.stringify(data)}]
`;

const q = (value: string) => JSON.stringify(value);

/** Round 1: a denied and an allowed call; round 2: the call to approve; round 3: the answer. */
const THREE_ROUNDS = (data: string) => `name: ${WORKFLOW}
stages:
  - name: ${STAGE}
    agent:
      kind: llm
      prompt: Tidy the notes.
      tools: [shell.exec, fs.read, fs.write]
      script:
        - tool_calls:
            - { name: shell.exec, arguments: { command: "echo hi" } }
            - { name: fs.read, arguments: { path: ${q(join(data, 'notes.txt'))} } }
        - tool_calls:
            - { name: fs.write, arguments: { path: ${q(join(data, 'out.txt'))}, text: "written once" } }
        - text: "all done now"
`;

const DENIED_CALL = 'round-0/call_0_0';
const READ_CALL = 'round-0/call_0_1';
const ASKED_CALL = 'round-1/call_1_0';

function fail(message: string, result?: CliResult): never {
  throw new Error(
    result ? `${message}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}` : message,
  );
}

async function cli(args: readonly string[], home: string, code = 0): Promise<CliResult> {
  const result = await runCli(args, { home });
  if (result.code !== code)
    fail(`warden ${args.join(' ')} exited ${result.code}, expected ${code}`, result);
  return result;
}

async function withStore<T>(home: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openSqliteStore({ file: join(home, 'warden.db') });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Every event of the run, in order. */
function runEvents(home: string, pid: string): Promise<EventRecord[]> {
  return withStore(home, async (store) => {
    const p = await store.getProcess(pid);
    if (!p) fail(`no run ${pid}`);
    return store.readEvents({ sessionId: p.session_id, processId: pid, limit: 10_000 });
  });
}

/** The audit log as `warden audit --json` prints it, oldest first. */
async function auditLog(home: string): Promise<AuditRecord[]> {
  const records = json<AuditRecord[]>(await cli(['audit', '--json', '--limit', '10000'], home));
  return [...records].sort((a, b) => a.seq - b.seq);
}

/** The audit records of people's (and expiries') answers to approvals, read from the store. */
async function approvalAnswers(home: string): Promise<AuditRecord[]> {
  const records = await withStore(home, (store) => store.readAudit({ limit: 10_000 }));
  return records.filter((r) => r.action === 'approval.resolve');
}

/** `warden run … --no-interactive` stops at the approval (exit 4) and prints its id. */
async function runUntilApproval(h: Home): Promise<{ pid: string; approval: string }> {
  const run = await cli(['run', h.workflow, '--no-interactive'], h.home, 4);
  const pid = /pid (p_\w+)/.exec(run.stdout)?.[1];
  const approval = /approve (int_\w+)/.exec(run.stdout)?.[1];
  if (!pid || !approval) fail('warden run did not print the pid and the approval id', run);
  if (!run.stdout.includes(`resume ${pid}`)) fail('warden run did not say how to continue', run);
  return { pid, approval };
}

type Data = Record<string, unknown>;
const dataOf = (e: EventRecord) => e.data as Data;
const ofType = (events: readonly EventRecord[], type: string) =>
  events.filter((e) => e.type === type);
const forCall = (events: readonly EventRecord[], type: string, call: string) =>
  ofType(events, type).filter((e) => dataOf(e).call === call);
const callOf = (r: AuditRecord) => (r.context.call as { key?: string } | undefined)?.key;

/** The stage's output: the model's final text and each call's outcome. */
function stageOutput(events: readonly EventRecord[]): {
  text: string;
  tool_calls: Array<{ tool: string; ok: boolean; code?: string }>;
} {
  const completed = ofType(events, 'stage.completed');
  if (completed.length !== 1) fail(`expected one stage.completed, got ${completed.length}`);
  return dataOf(completed[0]!).output as ReturnType<typeof stageOutput>;
}

describe.concurrent('an llm stage asks for a denied, an allowed and an approval-gated tool', () => {
  it(
    'approved from the CLI: the write happens once; events and audit show each decision',
    async ({ expect }) => {
      const h = makeHome({ policy: POLICY, workflow: THREE_ROUNDS });
      const { pid, approval } = await runUntilApproval(h);
      expect(existsSync(join(h.data, 'out.txt'))).toBe(false);

      const approved = await cli(['approve', approval], h.home);
      expect(approved.stdout).toContain(`confirmation ${approval} answered`);
      const resumed = await cli(['resume', pid], h.home);
      expect(resumed.stdout).toMatch(/■ completed/);
      expect(readFileSync(join(h.data, 'out.txt'), 'utf8')).toBe('written once');

      const events = await runEvents(h.home, pid);
      // The denied call: refused by the policy, never run.
      const denied = forCall(events, 'tool.denied', DENIED_CALL);
      expect(denied.length).toBeGreaterThan(0);
      for (const e of denied) {
        expect(dataOf(e)).toMatchObject({ tool: 'shell.exec', code: 'POLICY_DENIED' });
        expect((dataOf(e).reasons as string[]).join('\n')).toMatch(
          /no policy allows tool\.call on tool:shell\.exec/,
        );
      }
      expect(forCall(events, 'tool.called', DENIED_CALL)).toEqual([]);
      // The allowed read ran once (the resumed step got it from the journal).
      const reads = forCall(events, 'tool.called', READ_CALL);
      expect(reads.map((e) => dataOf(e).replayed)).toEqual([false, true]);
      expect(dataOf(reads[0]!)).toMatchObject({ tool: 'fs.read', ok: true });
      expect(JSON.stringify(dataOf(reads[0]!).output)).toContain('hello from notes');
      // The asked call: an approval raised and resolved, then exactly one execution.
      const raised = ofType(events, 'interrupt.raised');
      expect(raised.map((e) => dataOf(e).id)).toEqual([approval]);
      expect(dataOf(raised[0]!)).toMatchObject({ kind: 'confirmation', tool: 'fs.write' });
      const resolved = ofType(events, 'interrupt.resolved');
      expect(resolved.map((e) => dataOf(e))).toEqual([
        expect.objectContaining({ id: approval, response: { approved: true } }),
      ]);
      const writes = forCall(events, 'tool.called', ASKED_CALL);
      expect(writes.map((e) => dataOf(e))).toEqual([
        expect.objectContaining({ tool: 'fs.write', ok: true, replayed: false }),
      ]);
      expect(forCall(events, 'tool.denied', ASKED_CALL)).toEqual([]);
      // Order: asked, answered, then run.
      expect(raised[0]!.seq).toBeLessThan(resolved[0]!.seq);
      expect(resolved[0]!.seq).toBeLessThan(writes[0]!.seq);
      expect(stageOutput(events)).toMatchObject({
        text: 'all done now',
        tool_calls: [
          { tool: 'shell.exec', ok: false, code: 'POLICY_DENIED' },
          { tool: 'fs.read', ok: true },
          { tool: 'fs.write', ok: true },
        ],
      });

      const version = dataOf(writes[0]!).policy_version as string;
      expect(version).toMatch(/^[0-9a-f]{64}$/);
      for (const e of [...ofType(events, 'tool.called'), ...ofType(events, 'tool.denied')])
        expect(dataOf(e).policy_version).toBe(version);

      const records = await auditLog(h.home);
      const agent = records.filter((r) => r.principal === PRINCIPAL);
      const decisionsOf = (call: string) =>
        new Set(
          agent
            .filter((r) => callOf(r) === call)
            .map((r) => `${r.decision} ${r.action} ${r.resource}`),
        );
      expect(decisionsOf(DENIED_CALL)).toEqual(
        new Set(['deny tool.call tool:shell.exec', 'deny shell.exec command:echo hi']),
      );
      expect(decisionsOf(READ_CALL)).toEqual(
        new Set([
          'allow tool.call tool:fs.read',
          `allow fs.read path:${join(h.data, 'notes.txt')}`,
        ]),
      );
      const asked = agent.filter((r) => callOf(r) === ASKED_CALL);
      expect(
        asked.some((r) => r.decision === 'ask' && r.resource === `path:${join(h.data, 'out.txt')}`),
      ).toBe(true);
      expect(asked.filter((r) => r.decision === 'deny')).toEqual([]);
      // Every record says which run and step decided it.
      for (const r of agent)
        expect(r.context).toMatchObject({ process_id: pid, stage: STAGE, step: 1 });
      // The person's answer, by the CLI user, after the ask it answers.
      const answers = records.filter((r) => r.action === 'approval.resolve');
      expect(answers).toHaveLength(1);
      expect(answers[0]).toMatchObject({
        resource: `interrupt:${approval}`,
        decision: 'allow',
        context: { process_id: pid, tool: 'fs.write' },
      });
      expect(answers[0]!.principal).toMatch(/^user:cli:/);
      const firstAsk = asked.find((r) => r.decision === 'ask')!;
      expect(firstAsk.seq).toBeLessThan(answers[0]!.seq);
      expect(new Set(records.map((r) => r.policy_version))).toEqual(new Set([version]));
      expect((await withStore(h.home, (store) => store.verifyAudit())).ok).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'denied from the CLI: nothing is written, the model gets the refusal and answers',
    async ({ expect }) => {
      const h = makeHome({ policy: POLICY, workflow: THREE_ROUNDS });
      const { pid, approval } = await runUntilApproval(h);
      const denied = await cli(['deny', approval], h.home);
      expect(denied.stdout).toContain(`confirmation ${approval} denied`);
      const resumed = await cli(['resume', pid], h.home);
      expect(resumed.stdout).toMatch(/■ completed/);
      expect(existsSync(join(h.data, 'out.txt'))).toBe(false);

      const events = await runEvents(h.home, pid);
      expect(forCall(events, 'tool.called', ASKED_CALL)).toEqual([]);
      expect(
        ofType(events, 'effect.started').filter((e) => String(dataOf(e).key).endsWith(ASKED_CALL)),
      ).toEqual([]);
      const refusals = forCall(events, 'tool.denied', ASKED_CALL);
      expect(refusals.map((e) => dataOf(e))).toEqual([
        expect.objectContaining({ tool: 'fs.write', code: 'APPROVAL_DENIED' }),
      ]);
      expect((dataOf(refusals[0]!).reasons as string[]).join('\n')).toMatch(/denied it \(int_/);
      expect(ofType(events, 'interrupt.resolved').map((e) => dataOf(e))).toEqual([
        expect.objectContaining({ id: approval, response: { approved: false } }),
      ]);
      // The model saw the refusal as the call's answer, and its last reply ended the stage.
      expect(stageOutput(events)).toMatchObject({
        text: 'all done now',
        tool_calls: [
          { tool: 'shell.exec', ok: false, code: 'POLICY_DENIED' },
          { tool: 'fs.read', ok: true },
          { tool: 'fs.write', ok: false, code: 'APPROVAL_DENIED' },
        ],
      });
      expect(ofType(events, 'process.terminated').map((e) => dataOf(e).reason)).toEqual([
        'completed',
      ]);

      const answers = await approvalAnswers(h.home);
      expect(answers).toHaveLength(1);
      expect(answers[0]).toMatchObject({ resource: `interrupt:${approval}`, decision: 'deny' });
      expect(answers[0]!.principal).toMatch(/^user:cli:/);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'left unanswered past tools.approval_ttl: the approval expires as a denial',
    async ({ expect }) => {
      const h = makeHome({
        policy: POLICY,
        workflow: THREE_ROUNDS,
        config: 'tools:\n  approval_ttl: 3s\n',
      });
      const { pid, approval } = await runUntilApproval(h);
      const interrupt = await withStore(h.home, (store) => store.getInterrupt(approval));
      expect(interrupt?.status).toBe('pending');
      // The configured TTL, not the 1 h default.
      expect(interrupt!.expires_at! - interrupt!.created_at).toBe(3_000);
      await waitFor(() => Date.now() > interrupt!.expires_at! + 50, 10_000, 'the approval TTL');

      const resumed = await cli(['resume', pid], h.home);
      expect(resumed.stdout).toMatch(/expired 1 interrupt/);
      expect(resumed.stdout).toMatch(/■ completed/);
      expect(existsSync(join(h.data, 'out.txt'))).toBe(false);
      // Too late to approve now: the expiry stands.
      const late = await cli(['approve', approval], h.home, 8);
      expect(late.stderr).toMatch(/already expired/);

      const events = await runEvents(h.home, pid);
      expect(ofType(events, 'interrupt.expired').map((e) => dataOf(e).id)).toEqual([approval]);
      expect(ofType(events, 'interrupt.resolved')).toEqual([]);
      expect(forCall(events, 'tool.called', ASKED_CALL)).toEqual([]);
      const refusals = forCall(events, 'tool.denied', ASKED_CALL);
      expect(refusals.map((e) => dataOf(e))).toEqual([
        expect.objectContaining({ tool: 'fs.write', code: 'APPROVAL_DENIED' }),
      ]);
      expect((dataOf(refusals[0]!).reasons as string[]).join('\n')).toMatch(/expired unanswered/);
      expect(stageOutput(events).tool_calls[2]).toEqual({
        tool: 'fs.write',
        ok: false,
        code: 'APPROVAL_DENIED',
      });

      const answers = await approvalAnswers(h.home);
      expect(answers).toEqual([
        expect.objectContaining({
          resource: `interrupt:${approval}`,
          decision: 'deny',
          reasons: [expect.stringMatching(/expired unanswered/)],
        }),
      ]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'SIGKILL of warden resume after the approved call ran: the next resume does not repeat it',
    async ({ expect }) => {
      // The approved call is a kv.set without an expected version: every execution bumps the
      // key's version, so a repeat would be visible in the store, not only in the journal.
      const h = makeHome({
        policy: () => `version: 1
agents:
  ${WORKFLOW}/${STAGE}:
    tools: [fs.read, kv.set]
    ask: [kv.set]
    kv: { write: [notes] }
`,
        workflow: () => `name: ${WORKFLOW}
stages:
  - name: ${STAGE}
    agent:
      kind: llm
      prompt: Record the notes.
      tools: [kv.set]
      script:
        - tool_calls:
            - { name: kv.set, arguments: { namespace: notes, key: tidied, value: { by: act } } }
        - text: "the notes are recorded and this answer streams slowly so there is time to kill"
          chunk_delay_ms: 150
`,
      });
      const KV_CALL = 'round-0/call_0_0';
      const { pid, approval } = await runUntilApproval(h);
      await cli(['approve', approval], h.home);

      // Resume in a child and SIGKILL it once the call's tool.called is committed (the slow
      // final reply keeps the run from completing meanwhile).
      const child = spawnCli(['resume', pid], { home: h.home });
      child.stdin!.end();
      let output = '';
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
      try {
        await withStore(h.home, async (store) => {
          const run = await store.getProcess(pid);
          await waitFor(
            async () => {
              const events = await store.readEvents({
                sessionId: run!.session_id,
                processId: pid,
                limit: 10_000,
              });
              return forCall(events, 'tool.called', KV_CALL).length > 0;
            },
            30_000,
            "the approved call's tool.called event",
          );
        });
      } finally {
        child.kill('SIGKILL');
      }
      await closed;
      expect(child.signalCode, output).toBe('SIGKILL');
      const killed = await withStore(h.home, (store) => store.getProcess(pid));
      expect(killed?.state, 'the run must still be going when resume is killed').not.toBe(
        'terminated',
      );

      const again = await cli(['resume', pid], h.home);
      expect(again.stdout).toMatch(/reclaimed 1 lease/);
      expect(again.stdout).toMatch(/■ completed/);

      const stored = await withStore(h.home, (store) => store.kvGet('notes', 'tidied'));
      expect(stored).toMatchObject({ value: { by: 'act' }, version: 1 });
      const events = await runEvents(h.home, pid);
      const key = `${pid}:1:fx:tool/${KV_CALL}`;
      expect(ofType(events, 'effect.completed').filter((e) => dataOf(e).key === key)).toHaveLength(
        1,
      );
      expect(ofType(events, 'effect.started').filter((e) => dataOf(e).key === key)).toHaveLength(1);
      expect(forCall(events, 'tool.called', KV_CALL).map((e) => dataOf(e).replayed)).toEqual([
        false,
        true,
      ]);
      expect(ofType(events, 'interrupt.raised')).toHaveLength(1);
      expect(stageOutput(events).text).toMatch(/^the notes are recorded/);
    },
    TEST_TIMEOUT_MS,
  );
});

/**
 * A chat-completions endpoint standing in for a real model that reacts to what its tools
 * answered, and that (like some local servers) sends tool calls without ids: round 1 reads a
 * file; round 2 writes what it found (a different write when the read failed).
 */
async function startReactiveModel(data: string) {
  return startServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += String(chunk);
    const body = JSON.parse(raw) as { messages: Array<{ role: string; content: unknown }> };
    const answers = body.messages.filter((m) => m.role === 'tool').map((m) => String(m.content));
    const call = (name: string, args: Record<string, unknown>) => ({
      tool_calls: [
        { index: 0, type: 'function', function: { name, arguments: JSON.stringify(args) } },
      ],
    });
    const delta =
      answers.length === 0
        ? call('fs__read', { path: join(data, 'todo.txt') })
        : answers.length === 1
          ? answers[0]!.includes('tidy the notes')
            ? call('fs__write', { path: join(data, 'tidied.txt'), text: 'tidied' })
            : call('fs__write', { path: join(data, 'nothing.txt'), text: 'nothing to do' })
          : { content: 'done' };
    const chunk = (d: unknown, finish: string | null) =>
      `data: ${JSON.stringify({
        id: 'chatcmpl-1',
        object: 'chat.completion.chunk',
        created: 1,
        model: 'test-model',
        choices: [{ index: 0, delta: d, finish_reason: finish }],
      })}\n\n`;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(chunk({ role: 'assistant', ...delta }, null));
    res.write(chunk({}, 'tool_calls' in delta ? 'tool_calls' : 'stop'));
    res.end('data: [DONE]\n\n');
  });
}

describe.concurrent('an approval is for the exact call it showed', () => {
  it(
    'a different call under the same call key after a resume asks again',
    async ({ expect }) => {
      const h = makeHome({
        policy: POLICY,
        workflow: () => `name: ${WORKFLOW}
model: openai:test-model
stages:
  - name: ${STAGE}
    agent:
      kind: llm
      prompt: Do what todo.txt says.
      tools: [fs.read, fs.write]
`,
      });
      const model = await startReactiveModel(h.data);
      const env = { OPENAI_BASE_URL: `${model.base}/v1`, OPENAI_API_KEY: 'test' };
      try {
        // todo.txt is missing: the read fails, and the model asks to write nothing.txt.
        const run = await runCli(['run', h.workflow, '--no-interactive'], { home: h.home, env });
        if (run.code !== 4) fail('warden run should stop at the approval', run);
        const pid = /pid (p_\w+)/.exec(run.stdout)![1]!;
        const first = /approve (int_\w+)/.exec(run.stdout)![1]!;
        expect(run.stdout).toContain('nothing.txt');
        await cli(['approve', first], h.home);

        // Meanwhile todo.txt appears: the resumed step's read (a failed call runs again) answers
        // differently, the model is asked again and wants another write under the same call key.
        writeFileSync(join(h.data, 'todo.txt'), 'tidy the notes');
        const resumed = await runCli(['resume', pid, '--no-interactive'], { home: h.home, env });
        expect(
          existsSync(join(h.data, 'tidied.txt')),
          'written with an approval given for another call',
        ).toBe(false);
        expect(existsSync(join(h.data, 'nothing.txt'))).toBe(false);
        if (resumed.code !== 4) fail('the new call should wait for its own approval', resumed);
        const second = /approve (int_\w+)/.exec(resumed.stdout)?.[1];
        expect(second).toBeDefined();
        expect(second).not.toBe(first);
        expect(resumed.stdout).toContain('tidied.txt');
      } finally {
        await model.close();
      }
    },
    TEST_TIMEOUT_MS,
  );
});

describe.concurrent('another run in the same home', () => {
  it(
    'is not held open by a step of a run waiting on a tool-call approval',
    async ({ expect }) => {
      const h = makeHome({ policy: POLICY, workflow: THREE_ROUNDS });
      const { pid, approval } = await runUntilApproval(h);
      const other = join(h.home, 'other.yaml');
      writeFileSync(
        other,
        'name: other\nstages:\n  - name: say\n    agent: { kind: llm, prompt: hi, script: [{ text: "hello" }] }\n',
      );
      // This command's worker also claims the waiting run's step (it is back in the lane), which
      // waits on its approval again: the command must still end when its own run has.
      const run = await runCli(['run', other, '--no-interactive'], {
        home: h.home,
        timeoutMs: 60_000,
      });
      expect(run.signal, run.stdout + run.stderr).toBeNull();
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toMatch(/■ completed/);

      const events = await runEvents(h.home, pid);
      // The other command did take the step (else this test proves nothing), and gave it back.
      expect(ofType(events, 'task.claimed')).toHaveLength(2);
      expect(ofType(events, 'task.released')).toHaveLength(2);
      expect(ofType(events, 'interrupt.raised')).toHaveLength(1);
      await withStore(h.home, async (store) => {
        expect((await store.getInterrupt(approval))?.status).toBe('pending');
        expect((await store.getProcess(pid))?.state).not.toBe('terminated');
      });
      expect(existsSync(join(h.data, 'out.txt'))).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );
});

describe.concurrent('no policy file', () => {
  it(
    'every tool call, URL, path, command, key and workflow is denied and audited; nothing happens',
    async ({ expect }) => {
      let requests = 0;
      const server = await startServer((_req, res) => {
        requests += 1;
        res.end('hello');
      });
      try {
        const calls = (data: string) =>
          [
            ['http.fetch', { url: `${server.base}/page` }, `url:${server.base}/page`],
            ['fs.read', { path: join(data, 'notes.txt') }, `path:${join(data, 'notes.txt')}`],
            [
              'fs.write',
              { path: join(data, 'new.txt'), text: 'x' },
              `path:${join(data, 'new.txt')}`,
            ],
            ['fs.list', { path: data }, `path:${data}`],
            [
              'shell.exec',
              { command: `touch ${join(data, 'touched')}` },
              `command:touch ${join(data, 'touched')}`,
            ],
            ['kv.get', { namespace: 'notes', key: 'a' }, 'kv:notes/a'],
            ['kv.set', { namespace: 'notes', key: 'a', value: 1 }, 'kv:notes/a'],
            ['run.spawn', { workflow: 'other' }, 'workflow:other'],
          ] as const;
        let expected: ReturnType<typeof calls> = [] as unknown as ReturnType<typeof calls>;
        const h = makeHome({
          workflow: (data) => {
            expected = calls(data);
            return `name: ${WORKFLOW}
stages:
  - name: ${STAGE}
    agent:
      kind: llm
      prompt: Try everything.
      tools: [${expected.map(([name]) => name).join(', ')}]
      script:
        - tool_calls:
${expected.map(([name, args]) => `            - { name: ${name}, arguments: ${JSON.stringify(args)} }`).join('\n')}
        - text: "nothing worked"
`;
          },
        });
        expect(existsSync(join(h.home, 'policy.yaml'))).toBe(false);
        const run = await cli(['run', h.workflow, '--no-interactive'], h.home);
        expect(run.stdout).toMatch(/■ completed/);
        const pid = /pid (p_\w+)/.exec(run.stdout)![1]!;

        const events = await runEvents(h.home, pid);
        const denied = ofType(events, 'tool.denied');
        expect(denied.map((e) => [dataOf(e).tool, dataOf(e).code])).toEqual(
          expected.map(([name]) => [name, 'POLICY_DENIED']),
        );
        expect(ofType(events, 'tool.called')).toEqual([]);
        expect(ofType(events, 'effect.started').filter((e) => dataOf(e).tool !== 'model')).toEqual(
          [],
        );
        expect(ofType(events, 'interrupt.raised')).toEqual([]);

        const records = (await auditLog(h.home)).filter((r) => r.principal === PRINCIPAL);
        expect(records.every((r) => r.decision === 'deny')).toBe(true);
        expected.forEach(([name, , capability], i) => {
          const key = `round-0/call_0_${i}`;
          const mine = records.filter((r) => callOf(r) === key);
          // One decision on the tool, one on what it would touch: both denied, both audited.
          expect(mine.map((r) => `${r.action} ${r.resource}`).sort()).toEqual(
            [
              `tool.call tool:${name}`,
              `${name === 'http.fetch' ? 'http.request' : name} ${capability}`,
            ].sort(),
          );
        });
        expect(records).toHaveLength(expected.length * 2);
        for (const r of records)
          expect(r.reasons.join('\n')).toMatch(/default deny: no policy allows/);

        expect(requests).toBe(0);
        expect(existsSync(join(h.data, 'new.txt'))).toBe(false);
        expect(existsSync(join(h.data, 'touched'))).toBe(false);
        await withStore(h.home, async (store) => {
          expect(await store.kvGet('notes', 'a')).toBeNull();
          expect((await store.listProcesses({ limit: 100 })).map((p) => p.pid)).toEqual([pid]);
        });
      } finally {
        await server.close();
      }
    },
    TEST_TIMEOUT_MS,
  );
});
