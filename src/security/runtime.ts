/**
 * Everything a worker needs to let agents act safely, assembled once per process (daemon or
 * `warden run`): the policy (PDP, versions, grants), the audit log, secrets and redaction,
 * quarantine, the built-in tools and pooled MCP servers, and the tool path joining them.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import {
  canonicalJson,
  type McpServerConfig,
  type MethodScopeTable,
  parseWorkflowText,
  type QuarantineRecord,
  WardenError,
} from '../core/index.ts';
import type { Kernel } from '../kernel/index.ts';
import type { JobQueue } from '../queue/index.ts';
import { McpToolSource, type StepToolsFactory, type ToolSource } from '../runtime/index.ts';
import { AuditLog } from './audit-log.ts';
import { GrantService } from './grants.ts';
import { scoreInjection } from './guards/prompt-injection.ts';
import type { HostResolver } from './guards/safe-fetch.ts';
import { PolicyService } from './policy-service.ts';
import type { Redactor } from './redact.ts';
import { secretNames, SecretStore } from './secrets.ts';
import { createCatalog } from './tool-catalog.ts';
import { createToolPath, type QuarantineEntry } from './tool-path.ts';
import { ArgsValidator } from './tools/args-validator.ts';
import { builtinTools } from './tools/builtins.ts';

export interface SecurityOptions {
  readonly kernel: Kernel;
  /** WARDEN_HOME: policy files (none: deny all) and secrets.yaml. */
  readonly home: string;
  readonly queue?: JobQueue;
  /** Where relative paths and commands run. @default `<home>/workspace` */
  readonly workspace?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly tools?: {
    readonly timeoutMs?: number;
    readonly approvalTtlMs?: number;
    readonly httpAllow?: readonly string[];
    readonly httpResolve?: HostResolver;
    readonly httpMaxBytes?: number;
  };
  /** Prompt-injection screening of tool answers; `off` skips it. */
  readonly injection?: {
    readonly mode?: 'enforce' | 'off';
    readonly reviewAt?: number;
    readonly blockAt?: number;
  };
  readonly loadWorkflow?: (name: string) => Promise<unknown>;
  /** ACP method → scope (the daemon passes its dispatcher's table). */
  readonly methodScopes?: MethodScopeTable;
}

/** The `tools:` and `security:` sections of config.yaml, as resolved. */
export interface SecurityConfig {
  readonly tools: {
    readonly workspace: string;
    readonly workflows: string;
    readonly timeout: number;
    readonly approval_ttl: number;
    readonly http: { readonly allow: readonly string[]; readonly max_bytes: number };
  };
  readonly security: {
    readonly injection: {
      readonly mode: 'enforce' | 'off';
      readonly review_at: number;
      readonly block_at: number;
    };
  };
}

/** SecurityOptions from the resolved configuration (paths relative to the home). */
export function securityOptionsOf(
  config: SecurityConfig,
  base: { kernel: Kernel; home: string; queue?: JobQueue },
): SecurityOptions {
  return {
    ...base,
    workspace: resolve(base.home, config.tools.workspace),
    loadWorkflow: workflowLoader(resolve(base.home, config.tools.workflows)),
    tools: {
      timeoutMs: config.tools.timeout,
      approvalTtlMs: config.tools.approval_ttl,
      httpAllow: config.tools.http.allow,
      httpMaxBytes: config.tools.http.max_bytes,
    },
    injection: {
      mode: config.security.injection.mode,
      reviewAt: config.security.injection.review_at,
      blockAt: config.security.injection.block_at,
    },
  };
}

export class Security {
  readonly policy: PolicyService;
  readonly audit: AuditLog;
  readonly grants: GrantService;
  readonly secrets: SecretStore;
  readonly redactor: Redactor;
  /** The tool path, for `new Worker({ tools })`. */
  readonly tools: StepToolsFactory;
  readonly #kernel: Kernel;
  readonly #mcp = new Map<string, McpToolSource>();

  private constructor(options: SecurityOptions, policy: PolicyService, secrets: SecretStore) {
    const { kernel } = options;
    this.#kernel = kernel;
    this.policy = policy;
    this.secrets = secrets;
    this.redactor = secrets.redactor();
    const redact = <T>(value: T): T => this.redactor.redact(value);
    this.audit = new AuditLog(kernel.store, () => kernel.clock.now(), redact);
    this.grants = new GrantService(kernel);
    const workspace = options.workspace ?? join(options.home, 'workspace');
    const builtins = builtinTools({
      kernel,
      workspace,
      ...(options.queue ? { queue: options.queue } : {}),
      ...(options.tools?.httpAllow ? { httpAllow: options.tools.httpAllow } : {}),
      ...(options.tools?.httpResolve ? { httpResolve: options.tools.httpResolve } : {}),
      ...(options.tools?.httpMaxBytes ? { httpMaxBytes: options.tools.httpMaxBytes } : {}),
      ...(options.loadWorkflow ? { loadWorkflow: options.loadWorkflow } : {}),
    });
    const injection = options.injection ?? {};
    this.tools = createToolPath({
      kernel,
      pinPolicy: () => policy.pin(),
      audit: (entries) => this.audit.record(entries),
      quarantine: (entry) => this.quarantine(entry),
      useGrant: (id) => this.grants.use(id),
      resolveSecrets: (value) => secrets.resolveRefs(value),
      secretNames,
      redact,
      catalog: createCatalog(builtins, (step) => {
        const agent = step.stage.agent;
        const servers = agent && 'mcp' in agent ? (agent.mcp ?? []) : [];
        return servers.map((server) => this.#mcpSource(server));
      }),
      validator: new ArgsValidator(),
      ...(injection.mode === 'off'
        ? {}
        : {
            scoreInjection: (text: string) =>
              scoreInjection(text, {
                ...(injection.reviewAt === undefined ? {} : { reviewAt: injection.reviewAt }),
                ...(injection.blockAt === undefined ? {} : { blockAt: injection.blockAt }),
              }),
          }),
      ...(options.tools?.timeoutMs ? { defaultTimeoutMs: options.tools.timeoutMs } : {}),
      ...(options.tools?.approvalTtlMs ? { approvalTtlMs: options.tools.approvalTtlMs } : {}),
    });
  }

  static async open(options: SecurityOptions): Promise<Security> {
    const secrets = SecretStore.load({ home: options.home, env: options.env ?? process.env });
    // Relative paths and commands run in the workspace: it exists before the first call.
    await mkdir(options.workspace ?? join(options.home, 'workspace'), { recursive: true });
    const policy = await PolicyService.open({
      kernel: options.kernel,
      home: options.home,
      ...(options.methodScopes ? { methodScopes: options.methodScopes } : {}),
    });
    return new Security(options, policy, secrets);
  }

  /** Keeps a blocked action with its context (redacted); answers its id. */
  async quarantine(entry: QuarantineEntry): Promise<string> {
    const kernel = this.#kernel;
    const id = kernel.ids.next('qtn');
    const record: QuarantineRecord = this.redactor.redact({
      id,
      ts: kernel.clock.now(),
      trace_id: entry.trace_id,
      kind: entry.kind,
      principal: entry.principal,
      action: entry.action,
      resource: entry.resource,
      reasons: [...entry.reasons],
      context: entry.context,
      process_id: entry.process_id,
      session_id: entry.session_id,
    });
    await kernel.store.commit([
      { op: 'quarantine.add', record },
      {
        op: 'event',
        event: {
          session_id: entry.session_id,
          type: 'quarantine.added',
          trace_id: entry.trace_id,
          process_id: entry.process_id,
          data: {
            id,
            kind: entry.kind,
            principal: entry.principal,
            action: entry.action,
            resource: record.resource,
          },
        },
      },
    ]);
    return id;
  }

  async close(): Promise<void> {
    this.policy.close();
    await this.audit.flush();
    const sources = [...this.#mcp.values()];
    this.#mcp.clear();
    await Promise.allSettled(sources.map((s) => s.close()));
  }

  /** One connection per distinct server configuration, shared by every step that names it. */
  #mcpSource(config: McpServerConfig): ToolSource {
    const key = createHash('sha256').update(canonicalJson(config)).digest('hex');
    let source = this.#mcp.get(key);
    if (!source) {
      source = new McpToolSource(config, { resolveSecret: (name) => this.secrets.get(name) });
      this.#mcp.set(key, source);
    }
    return source;
  }
}

/** `run.spawn`'s workflows: `<dir>/<name>.yaml` (or `.yml`), parsed and validated like `warden run`. */
export function workflowLoader(dir: string): (name: string) => Promise<unknown> {
  return async (name) => {
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(name) || name.startsWith('.'))
      throw new WardenError('INVALID_PARAMS', `run.spawn: '${name}' is not a workflow name`);
    for (const ext of ['.yaml', '.yml']) {
      const file = join(dir, `${name}${ext}`);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue;
      }
      return parseWorkflowText(text, file);
    }
    throw new WardenError(
      'TOOL_ERROR',
      `run.spawn: no workflow '${name}' in ${dir} (put it in ${join(dir, `${name}.yaml`)}; tools.workflows names the directory)`,
    );
  };
}
