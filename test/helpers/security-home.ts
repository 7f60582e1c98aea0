/**
 * An in-process Warden with its security layer, for tool-path tests: a temporary home with a
 * SQLite store, a Kernel, `Security` (policy.yaml from the home, audit, grants, secrets, the
 * tool path) and Workers whose agents' tool calls take that path. Runs are started with
 * TypeScript agents (`ctx.tools.call(name, args, {key})`) or any other agent kind.
 */
import { realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { buildWorkflow, type LoadedWorkflow } from '../../src/core/index.ts';
import { Kernel } from '../../src/kernel/index.ts';
import { type AgentContext, AgentRegistry, Worker } from '../../src/runtime/index.ts';
import { Security, type SecurityOptions } from '../../src/security/index.ts';
import { type EventRecord, openSqliteStore, type Store } from '../../src/store/index.ts';
import { tempDir } from './tmp.ts';

export type AgentFn = (ctx: AgentContext) => Promise<{ output: Record<string, unknown> }>;

export interface SecureHome {
  readonly home: string;
  readonly db: string;
  readonly store: Store;
  readonly kernel: Kernel;
  readonly security: Security;
  /** Writes `<home>/policy.yaml` (does not reload). */
  writePolicy(yaml: string): void;
  /** A Worker on this kernel with these TypeScript agents and the security tool path. */
  startWorker(agents?: Record<string, AgentFn>): Promise<Worker>;
  /** Every event of a run's session, in order. */
  events(sessionId: string): Promise<EventRecord[]>;
  close(): Promise<void>;
}

export interface SecureHomeOptions {
  /** `<home>/policy.yaml` before Security opens (text, or made from the home's real path); omit for none (deny all). */
  readonly policy?: string | ((home: string) => string);
  /** Written to `<home>/secrets.yaml` with mode 0600. */
  readonly secretsFile?: Record<string, string>;
  readonly security?: Partial<Omit<SecurityOptions, 'kernel' | 'home'>>;
}

export async function openSecureHome(options: SecureHomeOptions = {}): Promise<SecureHome> {
  // The real path: the path guard hands the policy real paths, so policy roots must be real too.
  const home = realpathSync(tempDir('warden-sec-'));
  const db = join(home, 'warden.db');
  const writePolicy = (yaml: string) => writeFileSync(join(home, 'policy.yaml'), yaml);
  if (options.policy !== undefined)
    writePolicy(typeof options.policy === 'string' ? options.policy : options.policy(home));
  if (options.secretsFile) {
    const text = Object.entries(options.secretsFile)
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}\n`)
      .join('');
    writeFileSync(join(home, 'secrets.yaml'), text, { mode: 0o600 });
  }
  const store = await openSqliteStore({ file: db });
  const kernel = new Kernel({ store });
  const security = await Security.open({
    kernel,
    home,
    env: {},
    ...options.security,
  });
  const workers: Worker[] = [];
  return {
    home,
    db,
    store,
    kernel,
    security,
    writePolicy,
    async startWorker(agents = {}) {
      const registry = new AgentRegistry();
      for (const [name, fn] of Object.entries(agents)) registry.register(name, fn);
      const worker = new Worker({
        kernel,
        agents: registry,
        tools: security.tools,
        leaseMs: 30_000,
      });
      workers.push(worker);
      await worker.start();
      return worker;
    },
    events: (sessionId) => store.readEvents({ sessionId, limit: 10_000 }),
    async close() {
      for (const w of workers.splice(0)) await w.stop();
      await security.close();
      kernel.close();
      await store.close();
    },
  };
}

/** A workflow of one stage `stage` whose agent is the TypeScript agent `agent`. */
export function oneStage(workflow: string, stage: string, agent: string): LoadedWorkflow {
  return buildWorkflow(
    { name: workflow, stages: [{ name: stage, agent: { kind: 'typescript', name: agent } }] },
    workflow,
    { agents: new Set([agent]), routingFunctions: new Set() },
  );
}

/** A promise and the function that settles it (for agents that wait on the test). */
export function gate<T = void>(): { promise: Promise<T>; open(value: T): void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}
