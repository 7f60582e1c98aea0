/**
 * MCP tools through the one tool path (DESIGN.md §7, §8): a real stdio MCP server configured on
 * an `llm` stage whose scripted model asks for its tools. The policy decides each call by its
 * Warden name (`mcp.<server>.<tool>`); a denied call never reaches the server (its invocation
 * counter stays at 0), a `*` pattern allows the whole server, an `ask` entry raises an approval.
 */
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import type { EventRecord, ProcessRecord } from '../src/store/index.ts';
import { noteInvocations } from './helpers/mcp-test-tools.ts';
import { openSecureHome, type SecureHome } from './helpers/security-home.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { waitFor, waitForProcess } from './helpers/wait.ts';

const SERVER = fileURLToPath(new URL('./helpers/mcp-stdio-server.ts', import.meta.url));

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(removeTempDirs);

/** Opens a home with `rules` for agent mcpwf/s and a worker, and starts the stage's run. */
async function runWith(
  rules: string,
  notes: string,
): Promise<{ home: SecureHome; run: ProcessRecord }> {
  const home = await openSecureHome({ policy: `version: 1\nagents:\n  mcpwf/s:\n${rules}` });
  closers.push(() => home.close());
  await home.startWorker();
  const run = await home.kernel.startRun({
    workflow: {
      name: 'mcpwf',
      stages: [
        {
          name: 's',
          agent: {
            kind: 'llm',
            prompt: 'take notes',
            tools: ['mcp.notes.*'],
            mcp: [{ name: 'notes', command: process.execPath, args: [SERVER] }],
            script: [
              {
                tool_calls: [
                  { name: 'mcp.notes.echo', arguments: { text: 'hello there' } },
                  {
                    name: 'mcp.notes.write_note',
                    arguments: { dir: notes, name: 'n.txt', text: 'a note' },
                  },
                ],
              },
              { text: 'done' },
            ],
          },
        },
      ],
    },
  });
  return { home, run };
}

function toolEvents(events: readonly EventRecord[]) {
  const pick = (type: string) =>
    events
      .filter((e) => e.type === type)
      .map((e) => e.data as { tool: string; code?: string; ok?: boolean; output?: unknown });
  return { called: pick('tool.called'), denied: pick('tool.denied') };
}

describe('MCP tools under the policy', () => {
  it('allows mcp.notes.echo and denies mcp.notes.write_note, which never runs', async () => {
    const notes = tempDir();
    const { home, run } = await runWith('    tools: [mcp.notes.echo]\n', notes);
    const done = await waitForProcess(home.kernel, run.pid, undefined, 30_000);
    expect(done.terminal_reason).toBe('completed');

    const { called, denied } = toolEvents(await home.events(run.session_id));
    expect(called.map((c) => [c.tool, c.ok])).toEqual([['mcp.notes.echo', true]]);
    expect(JSON.stringify(called[0]!.output)).toContain('hello there');
    expect(denied.map((d) => [d.tool, d.code])).toEqual([
      ['mcp.notes.write_note', 'POLICY_DENIED'],
    ]);
    expect(noteInvocations(notes)).toBe(0);

    // The model was told: the step's output lists both calls and their outcome.
    expect(done.envelope.outputs.s).toMatchObject({
      tool_calls: [
        { tool: 'mcp.notes.echo', ok: true },
        { tool: 'mcp.notes.write_note', ok: false, code: 'POLICY_DENIED' },
      ],
    });
    const audit = (await home.store.readAudit({ principal: 'agent:mcpwf/s' })).map((r) => [
      r.resource,
      r.decision,
    ]);
    expect(audit).toEqual([
      ['tool:mcp.notes.echo', 'allow'],
      ['tool:mcp.notes.write_note', 'deny'],
    ]);
  });

  it('mcp.notes.* in the policy allows every tool of the server', async () => {
    const notes = tempDir();
    const { home, run } = await runWith('    tools: ["mcp.notes.*"]\n', notes);
    const done = await waitForProcess(home.kernel, run.pid, undefined, 30_000);
    expect(done.terminal_reason).toBe('completed');
    const { called, denied } = toolEvents(await home.events(run.session_id));
    expect(called.map((c) => [c.tool, c.ok])).toEqual([
      ['mcp.notes.echo', true],
      ['mcp.notes.write_note', true],
    ]);
    expect(denied).toEqual([]);
    expect(noteInvocations(notes)).toBe(1);
  });

  it('an ask entry raises an approval; the call runs only once it is approved', async () => {
    const notes = tempDir();
    const { home, run } = await runWith(
      '    tools: ["mcp.notes.*"]\n    ask: [mcp.notes.write_note]\n',
      notes,
    );
    let pending: Awaited<ReturnType<SecureHome['store']['listInterrupts']>> = [];
    await waitFor(
      async () => {
        pending = await home.store.listInterrupts({ processId: run.pid });
        return pending.some((i) => i.status === 'pending');
      },
      30_000,
      'an approval',
    );
    const approval = pending.find((i) => i.status === 'pending')!;
    expect(approval.kind).toBe('confirmation');
    expect(approval.data).toMatchObject({
      tool: 'mcp.notes.write_note',
      call: { tool: 'mcp.notes.write_note', args: { name: 'n.txt' } },
    });
    // echo ran (allowed outright); write_note waits for the person.
    expect(toolEvents(await home.events(run.session_id)).called.map((c) => c.tool)).toEqual([
      'mcp.notes.echo',
    ]);
    expect(noteInvocations(notes)).toBe(0);

    await home.kernel.resolveInterrupt(approval.id, { approved: true }, 'tester');
    const done = await waitForProcess(home.kernel, run.pid, undefined, 30_000);
    expect(done.terminal_reason).toBe('completed');
    expect(noteInvocations(notes)).toBe(1);
    const asked = (await home.store.readAudit({ principal: 'agent:mcpwf/s' })).find(
      (r) => r.resource === 'tool:mcp.notes.write_note',
    );
    expect(asked?.decision).toBe('ask');
  });

  it('a denied approval refuses the call: the server never runs it', async () => {
    const notes = tempDir();
    const { home, run } = await runWith(
      '    tools: [mcp.notes.echo]\n    ask: [mcp.notes.write_note]\n',
      notes,
    );
    let id = '';
    await waitFor(
      async () => {
        const found = (await home.store.listInterrupts({ processId: run.pid })).find(
          (i) => i.status === 'pending',
        );
        id = found?.id ?? '';
        return id !== '';
      },
      30_000,
      'an approval',
    );
    await home.kernel.resolveInterrupt(id, { approved: false }, 'tester');
    const done = await waitForProcess(home.kernel, run.pid, undefined, 30_000);
    expect(done.terminal_reason).toBe('completed');
    const { denied } = toolEvents(await home.events(run.session_id));
    expect(denied.map((d) => [d.tool, d.code])).toEqual([
      ['mcp.notes.write_note', 'APPROVAL_DENIED'],
    ]);
    expect(noteInvocations(notes)).toBe(0);
  });
});
