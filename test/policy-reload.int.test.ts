/**
 * The policy service on a real home (DESIGN.md §2.5, §8): validate-then-swap reloads, versions
 * persisted before they decide anything, the version pinned per attempt, and capability grants
 * (budget, revocation refused by the store even when this process's index is stale, review
 * gates raising approvals). Agents are TypeScript agents driving exact tool calls.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import type { AuditRecord } from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import type { AgentContext, ToolCallResult } from '../src/runtime/index.ts';
import { GrantService, PolicyService } from '../src/security/index.ts';
import { openSqliteStore, type Store, type StoreOp } from '../src/store/index.ts';
import { gate, oneStage, openSecureHome, type SecureHome } from './helpers/security-home.ts';
import { wrapStore } from './helpers/store-spy.ts';
import { removeTempDirs } from './helpers/tmp.ts';
import { rejection, waitFor, waitForProcess } from './helpers/wait.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(removeTempDirs);

async function secureHome(options: Parameters<typeof openSecureHome>[0]): Promise<SecureHome> {
  const home = await openSecureHome(options);
  closers.push(() => home.close());
  return home;
}

/** Version A: stage pin/s may call kv.get on namespace notes. */
const POLICY_A = `version: 1
agents:
  pin/s:
    tools: [kv.get]
    kv: { read: [notes] }
`;
/** Version B: the same stage may no longer call kv.get (only kv.set). */
const POLICY_B = `version: 1
agents:
  pin/s:
    tools: [kv.set]
    kv: { read: [notes] }
`;

const KV_ARGS = { namespace: 'notes', key: 'today' };

async function auditOf(store: Store, pid: string, action = 'tool.call'): Promise<AuditRecord[]> {
  const all = await store.readAudit({ action, limit: 10_000 });
  return all.filter((r) => r.context.process_id === pid);
}

async function systemEvents(home: SecureHome, type: string) {
  const system = await home.kernel.sessions.system();
  return (await home.events(system.id)).filter((e) => e.type === type);
}

describe('policy reload is validate-then-swap', () => {
  it('an invalid policy.yaml is refused with POLICY_INVALID and the old version keeps deciding', async () => {
    const home = await secureHome({ policy: POLICY_A });
    const a = home.security.policy.version;
    const request = { principal: 'agent:pin/s', action: 'tool.call', resource: 'tool:kv.get' };
    expect(home.security.policy.decide(request).decision).toBe('allow');

    // A typo: `tols` is not a rule key. Nothing may change.
    home.writePolicy('version: 1\nagents:\n  pin/s:\n    tols: [kv.set]\n');
    const error = await rejection(home.security.policy.reload());
    expect(error.code).toBe('POLICY_INVALID');
    expect(error.message).toMatch(/tols/);

    expect(home.security.policy.version).toBe(a);
    const after = home.security.policy.decide(request);
    expect(after.decision).toBe('allow');
    expect(after.policy_version).toBe(a);
    expect((await home.store.activePolicyVersion())?.id).toBe(a);

    const failed = await systemEvents(home, 'policy.reload_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.data).toMatchObject({ version: a, error: { code: 'POLICY_INVALID' } });

    // Not YAML at all is refused the same way.
    home.writePolicy('version: 1\nagents: [unclosed\n');
    expect((await rejection(home.security.policy.reload())).code).toBe('POLICY_INVALID');
    expect(home.security.policy.version).toBe(a);
    expect(await systemEvents(home, 'policy.reload_failed')).toHaveLength(2);

    // A good file is taken.
    home.writePolicy(POLICY_B);
    const outcome = await home.security.policy.reload();
    expect(outcome).toMatchObject({ previous: a, changed: true });
    expect(outcome.version).not.toBe(a);
    expect(home.security.policy.decide(request).decision).toBe('deny');
  });
});

describe('policy versions are persisted before they decide', () => {
  it('each version is in the store with its source, and the active one is marked', async () => {
    const home = await secureHome({ policy: POLICY_A });
    const a = home.security.policy.version;
    const storedA = await home.store.getPolicyVersion(a);
    expect(storedA?.source).toEqual({ 'policy.yaml': POLICY_A });
    expect((await home.store.activePolicyVersion())?.id).toBe(a);

    home.writePolicy(POLICY_B);
    const { version: b } = await home.security.policy.reload();
    expect((await home.store.getPolicyVersion(b))?.source).toEqual({ 'policy.yaml': POLICY_B });
    expect((await home.store.activePolicyVersion())?.id).toBe(b);
    expect(await home.store.getPolicyVersion(a)).toBeDefined();

    const activated = await systemEvents(home, 'policy.activated');
    expect(activated.map((e) => (e.data as { version: string }).version)).toEqual([a, b]);

    // Another process (another PolicyService on the same database) decides under a version it
    // never loaded from files, by reading it back from the store.
    const other = await openSqliteStore({ file: home.db });
    const otherKernel = new Kernel({ store: other });
    const elsewhere = await PolicyService.open({ kernel: otherKernel, home: null });
    closers.push(async () => {
      elsewhere.close();
      otherKernel.close();
      await other.close();
    });
    expect(elsewhere.pdp.has(a)).toBe(false);
    await elsewhere.ensureVersion(a);
    const underA = elsewhere.pdp.decide(
      { principal: 'agent:pin/s', action: 'tool.call', resource: 'tool:kv.get' },
      { version: a },
    );
    expect(underA).toMatchObject({ decision: 'allow', policy_version: a });
    expect((await rejection(elsewhere.ensureVersion('f'.repeat(64)))).code).toBe('NOT_FOUND');
  });

  it('a version whose write fails is never activated', async () => {
    const home = await secureHome({ policy: POLICY_A });
    let failWrites = false;
    const flaky = wrapStore(home.store, {
      commit: (ops: readonly StoreOp[]) => {
        if (failWrites && ops.some((op) => op.op === 'policy.version'))
          return Promise.reject(new Error('disk full (test)'));
        return home.store.commit(ops);
      },
    });
    const kernel = new Kernel({ store: flaky });
    const service = await PolicyService.open({ kernel, home: home.home });
    closers.push(() => {
      service.close();
      kernel.close();
      return Promise.resolve();
    });
    const a = service.version;

    home.writePolicy(POLICY_B);
    failWrites = true;
    await expect(service.reload()).rejects.toThrow(/disk full/);
    expect(service.version).toBe(a);
    expect(
      service.decide({ principal: 'agent:pin/s', action: 'tool.call', resource: 'tool:kv.get' }),
    ).toMatchObject({ decision: 'allow', policy_version: a });
    expect((await home.store.activePolicyVersion())?.id).toBe(a);
    expect(await home.store.listPolicyVersions()).toHaveLength(1);

    failWrites = false;
    const { version: b } = await service.reload();
    expect(b).not.toBe(a);
    expect((await home.store.activePolicyVersion())?.id).toBe(b);
  });
});

describe('the policy version is pinned per attempt', () => {
  it("a step keeps deciding under its version after a reload; a new run's step takes the new one", async () => {
    const home = await secureHome({ policy: POLICY_A });
    const a = home.security.policy.version;
    const firstDone = gate();
    const goOn = gate();
    const results: Record<string, ToolCallResult[]> = {};
    await home.startWorker({
      pinner: async (ctx) => {
        const mine: ToolCallResult[] = (results[ctx.pid] = []);
        mine.push(await ctx.tools.call('kv.get', KV_ARGS, { key: 'first' }));
        if (mine[0]!.ok) {
          firstDone.open();
          await goOn.promise;
        }
        mine.push(await ctx.tools.call('kv.get', KV_ARGS, { key: 'second' }));
        return { output: { oks: mine.map((r) => r.ok) } };
      },
    });
    const workflow = oneStage('pin', 's', 'pinner');
    const old = await home.kernel.startRun({ workflow });
    await firstDone.promise;

    home.writePolicy(POLICY_B);
    const { version: b } = await home.security.policy.reload();
    expect(b).not.toBe(a);
    goOn.open();

    const oldDone = await waitForProcess(home.kernel, old.pid);
    expect(oldDone.terminal_reason).toBe('completed');
    expect(results[old.pid]!.map((r) => r.ok)).toEqual([true, true]);
    const oldAudit = await auditOf(home.store, old.pid);
    expect(oldAudit.map((r) => [r.decision, r.policy_version])).toEqual([
      ['allow', a],
      ['allow', a],
    ]);

    const fresh = await home.kernel.startRun({ workflow });
    await waitForProcess(home.kernel, fresh.pid);
    const denied = results[fresh.pid]!;
    expect(denied.map((r) => r.code)).toEqual(['POLICY_DENIED', 'POLICY_DENIED']);
    const freshAudit = await auditOf(home.store, fresh.pid);
    expect(freshAudit.length).toBeGreaterThan(0);
    for (const r of freshAudit) expect([r.decision, r.policy_version]).toEqual(['deny', b]);
    const deniedEvents = (await home.events(fresh.session_id)).filter(
      (e) => e.type === 'tool.denied' && e.process_id === fresh.pid,
    );
    expect(deniedEvents.map((e) => (e.data as { policy_version: string }).policy_version)).toEqual([
      b,
      b,
    ]);
  });

  it('an attempt decides under the version active when it started, even before its first call', async () => {
    const home = await secureHome({ policy: POLICY_A });
    const a = home.security.policy.version;
    const started = gate();
    const goOn = gate();
    let result: ToolCallResult | undefined;
    await home.startWorker({
      late: async (ctx) => {
        started.open();
        await goOn.promise;
        result = await ctx.tools.call('kv.get', KV_ARGS, { key: 'only' });
        return { output: { ok: result.ok } };
      },
    });
    const run = await home.kernel.startRun({ workflow: oneStage('pin', 's', 'late') });
    await started.promise;
    home.writePolicy(POLICY_B);
    await home.security.policy.reload();
    goOn.open();
    await waitForProcess(home.kernel, run.pid);
    expect(result?.ok).toBe(true);
    const audit = await auditOf(home.store, run.pid);
    expect(audit.map((r) => [r.decision, r.policy_version])).toEqual([['allow', a]]);
  });
});

describe('a pinned version outlives the versions kept in memory', () => {
  it('after more reloads than the PDP retains, the step still decides under its version', async () => {
    const home = await secureHome({ policy: POLICY_A });
    const a = home.security.policy.version;
    const firstDone = gate();
    const goOn = gate();
    const results: ToolCallResult[] = [];
    await home.startWorker({
      patient: async (ctx) => {
        results.push(await ctx.tools.call('kv.get', KV_ARGS, { key: 'first' }));
        firstDone.open();
        await goOn.promise;
        results.push(await ctx.tools.call('kv.get', KV_ARGS, { key: 'second' }));
        return { output: {} };
      },
    });
    const run = await home.kernel.startRun({ workflow: oneStage('pin', 's', 'patient') });
    await firstDone.promise;
    // Ten new versions (the PDP keeps 8 loaded): A is dropped from memory, not from the store.
    for (let i = 0; i < 10; i++) {
      home.writePolicy(`${POLICY_B}# revision ${i}\n`);
      await home.security.policy.reload();
    }
    expect(home.security.policy.pdp.has(a)).toBe(false);
    goOn.open();
    await waitForProcess(home.kernel, run.pid);
    expect(results.map((r) => r.ok)).toEqual([true, true]);
    const audit = await auditOf(home.store, run.pid);
    expect(audit.map((r) => [r.decision, r.policy_version])).toEqual([
      ['allow', a],
      ['allow', a],
    ]);
  });
});

describe('capability grants', () => {
  /** kv.get's capability (kv:notes/…) is in the YAML; the tool itself only by grant. */
  const GRANT_POLICY = `version: 1
agents:
  gr:
    kv: { read: [notes] }
`;

  function caller(count: number, results: ToolCallResult[], before?: Promise<void>) {
    return async (ctx: AgentContext) => {
      if (before) await before;
      for (let i = 0; i < count; i++)
        results.push(await ctx.tools.call('kv.get', KV_ARGS, { key: `call-${i}` }));
      return { output: { oks: results.map((r) => r.ok) } };
    };
  }

  it('a grant with a budget allows that many calls, then the next is denied', async () => {
    const home = await secureHome({ policy: GRANT_POLICY });
    const results: ToolCallResult[] = [];
    const before: ToolCallResult[] = [];
    await home.startWorker({ thrice: caller(3, results), once: caller(1, before) });

    // Without the grant the tool is denied (default deny: no YAML tools entry).
    const probe = await home.kernel.startRun({ workflow: oneStage('gr', 'p', 'once') });
    await waitForProcess(home.kernel, probe.pid);
    expect(before.map((r) => r.code)).toEqual(['POLICY_DENIED']);

    const grant = await home.security.grants.create({
      principal: 'agent:gr/stage',
      action: 'tool.call',
      resource: 'tool:kv.get',
      budget: 2,
    });
    await home.security.policy.refreshGrants();
    const run = await home.kernel.startRun({ workflow: oneStage('gr', 'stage', 'thrice') });
    await waitForProcess(home.kernel, run.pid);
    expect(results.map((r) => r.ok)).toEqual([true, true, false]);
    expect(results[2]!.code).toBe('POLICY_DENIED');
    expect((await home.store.getGrant(grant.id))?.used).toBe(2);

    const audit = await auditOf(home.store, run.pid);
    const granted = audit.filter((r) => r.context.grant_id === grant.id);
    expect(granted.map((r) => r.decision)).toEqual(['allow', 'allow']);
    const used = await systemEvents(home, 'grant.used');
    // One event per use, naming the grant (the count itself is the store's: 2 above).
    expect(used.map((e) => (e.data as { id: string }).id)).toEqual([grant.id, grant.id]);
  });

  it('a grant revoked by another process is refused by the store even when this index is stale', async () => {
    const home = await secureHome({ policy: GRANT_POLICY });
    const results: ToolCallResult[] = [];
    const revoked = gate();
    await home.startWorker({ after: caller(1, results, revoked.promise) });

    const grant = await home.security.grants.create({
      principal: 'agent:gr/other',
      action: 'tool.call',
      resource: 'tool:kv.get',
    });
    await home.security.policy.refreshGrants();
    // Keep this process's grant index as it is now: it will not hear of the revocation.
    home.security.policy.close();

    const otherStore = await openSqliteStore({ file: home.db });
    const otherKernel = new Kernel({ store: otherStore });
    closers.push(async () => {
      otherKernel.close();
      await otherStore.close();
    });
    const run = await home.kernel.startRun({ workflow: oneStage('gr', 'other', 'after') });
    const revokedRecord = await new GrantService(otherKernel).revoke(grant.id, 'other', 'test');
    expect(revokedRecord.revoked_at).not.toBeNull();
    // The index still believes the grant is active.
    expect(
      home.security.policy.grants.activeFor(
        'agent:gr/other',
        'tool.call',
        'tool:kv.get',
        Date.now(),
      )?.id,
    ).toBe(grant.id);
    revoked.open();

    await waitForProcess(home.kernel, run.pid);
    expect(results.map((r) => r.code)).toEqual(['POLICY_DENIED']);
    expect(JSON.stringify(results[0]!.output)).toMatch(/revoked/);
    // The (stale) PDP allowed it with the grant; spending it was refused, so the tool never ran.
    const audit = await auditOf(home.store, run.pid);
    expect(audit.find((r) => r.resource === 'tool:kv.get')?.context.grant_id).toBe(grant.id);
    const events = await home.events(run.session_id);
    expect(events.filter((e) => e.type === 'tool.called')).toHaveLength(0);
    expect(events.filter((e) => e.type === 'tool.denied')).toHaveLength(1);
    expect((await home.store.getGrant(grant.id))?.used).toBe(0);
  });

  it('a review-gated grant raises an approval for each use', async () => {
    const home = await secureHome({ policy: GRANT_POLICY });
    const results: ToolCallResult[] = [];
    await home.startWorker({ asker: caller(1, results) });
    const grant = await home.security.grants.create({
      principal: 'agent:gr/review',
      action: 'tool.call',
      resource: 'tool:kv.get',
      ask: true,
    });
    await home.security.policy.refreshGrants();
    const run = await home.kernel.startRun({ workflow: oneStage('gr', 'review', 'asker') });

    let pending: Awaited<ReturnType<Store['listInterrupts']>> = [];
    await waitFor(async () => {
      pending = await home.store.listInterrupts({ processId: run.pid });
      return pending.some((i) => i.status === 'pending');
    });
    const approval = pending.find((i) => i.status === 'pending')!;
    expect(approval.kind).toBe('confirmation');
    expect(approval.data).toMatchObject({ tool: 'kv.get' });
    expect(results).toHaveLength(0);
    expect((await home.store.getGrant(grant.id))?.used).toBe(0);

    await home.kernel.resolveInterrupt(approval.id, { approved: true }, 'tester');
    await waitForProcess(home.kernel, run.pid);
    expect(results.map((r) => r.ok)).toEqual([true]);
    expect((await home.store.getGrant(grant.id))?.used).toBe(1);
    const audit = await auditOf(home.store, run.pid);
    expect(audit.find((r) => r.resource === 'tool:kv.get')).toMatchObject({
      decision: 'ask',
      context: { grant_id: grant.id },
    });
  });
});
