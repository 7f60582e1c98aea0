/**
 * The built-in tools (DESIGN.md §7): `http.fetch`, `fs.read`, `fs.write`, `fs.list`,
 * `shell.exec`, `kv.get`, `kv.set`, `task.submit`, `run.spawn`. Each declares its JSON Schema
 * and, in `inspect`, runs the guards that must see the call before the policy decides and names
 * the capabilities it needs: the URL (`http.request`), the real path (`fs.*`), the parsed
 * command and its risk (`shell.exec`), the key, lane or workflow. They never decide anything
 * themselves: the tool path (security/tool-path.ts) does, for every call.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';

import { WardenError } from '../../core/index.ts';
import type { Kernel } from '../../kernel/index.ts';
import type { JobQueue } from '../../queue/index.ts';
import type { ToolOutput } from '../../runtime/index.ts';
import { analyzeCommand } from '../guards/command-risk.ts';
import { resolveInside } from '../guards/path-guard.ts';
import { guardedFetch, type HostResolver } from '../guards/safe-fetch.ts';
import { checkUrlSyntax } from '../guards/ssrf.ts';
import type { GuardedTool } from './guarded-tool.ts';

export interface BuiltinToolsOptions {
  readonly kernel: Kernel;
  /** For `task.submit`; without it the tool is not offered. */
  readonly queue?: JobQueue;
  /** Relative paths and commands run here; the path guard resolves symlinks and `..` first. */
  readonly workspace: string;
  /** Roots the path guard lets through to the policy (default: `/`, the policy decides). */
  readonly fsRoots?: readonly string[];
  /** Addresses the SSRF guard lets through (CIDRs), e.g. an internal API you trust. */
  readonly httpAllow?: readonly string[];
  readonly httpResolve?: HostResolver;
  readonly httpMaxBytes?: number;
  /** Largest file `fs.read` returns, in bytes. @default 1 MiB */
  readonly fsMaxBytes?: number;
  /** Bytes of stdout and of stderr `shell.exec` keeps. @default 256 KiB */
  readonly shellMaxOutput?: number;
  /** Loads a workflow by name for `run.spawn` (from the workflows directory). */
  readonly loadWorkflow?: (name: string) => Promise<unknown>;
}

const MIB = 1024 * 1024;

export function builtinTools(options: BuiltinToolsOptions): GuardedTool[] {
  const roots = options.fsRoots ?? ['/'];
  const realPath = (path: string, mode: 'read' | 'write' | 'list') =>
    resolveInside(path, roots, { mode, base: options.workspace });
  const tools: GuardedTool[] = [
    {
      name: 'http.fetch',
      description:
        'Fetch a URL over http or https (GET by default). Only hosts the policy allows; private and internal addresses are refused.',
      effect: 'read',
      inputSchema: {
        type: 'object',
        required: ['url'],
        additionalProperties: false,
        properties: {
          url: { type: 'string', minLength: 1, maxLength: 8192 },
          method: { enum: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] },
          headers: {
            type: 'object',
            additionalProperties: {
              oneOf: [
                { type: 'string' },
                {
                  type: 'object',
                  required: ['secret'],
                  additionalProperties: false,
                  properties: { secret: { type: 'string' } },
                },
              ],
            },
          },
          body: { type: 'string', maxLength: 1_048_576 },
        },
      },
      inspect: (args) => {
        const url = checkUrlSyntax(String(args.url));
        const method = typeof args.method === 'string' ? args.method : 'GET';
        return Promise.resolve({
          checks: [{ action: 'http.request', resource: `url:${url.href}`, context: { method } }],
          args: { ...args, url: url.href },
        });
      },
      execute: async (args, run) => {
        const response = await guardedFetch(
          {
            url: String(args.url),
            ...(typeof args.method === 'string' ? { method: args.method } : {}),
            ...(args.headers ? { headers: args.headers as Record<string, string> } : {}),
            ...(typeof args.body === 'string' ? { body: args.body } : {}),
          },
          {
            ...(options.httpAllow ? { allow: options.httpAllow } : {}),
            ...(options.httpResolve ? { resolve: options.httpResolve } : {}),
            ...(options.httpMaxBytes ? { maxBytes: options.httpMaxBytes } : {}),
            // Every redirect is a new request: the policy decides its URL again.
            checkRedirect: (url) =>
              run.authorize?.('http.request', `url:${url.href}`, { method: 'GET', redirect: true }),
          },
          run.signal,
        );
        return {
          content: {
            status: response.status,
            url: response.url,
            headers: pickHeaders(response.headers),
            body: response.body,
            bytes: response.bytes,
            ...(response.redirects.length ? { redirects: response.redirects } : {}),
          },
          is_error: response.status >= 400,
        };
      },
    },
    {
      name: 'fs.read',
      description: 'Read a text file (UTF-8) the policy allows.',
      effect: 'read',
      inputSchema: pathSchema(),
      inspect: async (args) => {
        const path = await realPath(String(args.path), 'read');
        return {
          checks: [{ action: 'fs.read', resource: `path:${path}` }],
          args: { ...args, path },
        };
      },
      execute: async (args) => {
        const path = String(args.path);
        const info = await stat(path);
        const max = options.fsMaxBytes ?? MIB;
        if (info.size > max)
          throw new WardenError(
            'TOOL_ERROR',
            `${path} is ${info.size} bytes; fs.read returns at most ${max}`,
          );
        return { content: { path, text: await readFile(path, 'utf8'), bytes: info.size } };
      },
    },
    {
      name: 'fs.write',
      description:
        'Write a text file (UTF-8) where the policy allows, creating parent directories.',
      effect: 'write',
      inputSchema: {
        type: 'object',
        required: ['path', 'text'],
        additionalProperties: false,
        properties: {
          path: { type: 'string', minLength: 1, maxLength: 4096 },
          text: { type: 'string', maxLength: 4 * MIB },
        },
      },
      inspect: async (args) => {
        const path = await realPath(String(args.path), 'write');
        return {
          checks: [{ action: 'fs.write', resource: `path:${path}` }],
          args: { ...args, path },
        };
      },
      execute: async (args) => {
        const path = String(args.path);
        await mkdir(dirname(path), { recursive: true });
        const text = String(args.text);
        await writeFile(path, text, { encoding: 'utf8', mode: 0o644 });
        return { content: { path, bytes: Buffer.byteLength(text) } };
      },
    },
    {
      name: 'fs.list',
      description: 'List a directory the policy allows (names, kinds and sizes).',
      effect: 'read',
      inputSchema: pathSchema(),
      inspect: async (args) => {
        const path = await realPath(String(args.path), 'list');
        return {
          checks: [{ action: 'fs.list', resource: `path:${path}` }],
          args: { ...args, path },
        };
      },
      execute: async (args) => {
        const path = String(args.path);
        const entries = await readdir(path, { withFileTypes: true });
        const shown = entries.slice(0, 1_000).map((e) => ({
          name: e.name,
          kind: e.isDirectory()
            ? 'dir'
            : e.isSymbolicLink()
              ? 'link'
              : e.isFile()
                ? 'file'
                : 'other',
        }));
        return { content: { path, entries: shown, total: entries.length } };
      },
    },
    {
      name: 'shell.exec',
      description:
        'Run a shell command (sh -c) in the workspace. Commands are parsed and scored for risk; the policy decides by command prefix and risk.',
      effect: 'execute',
      inputSchema: {
        type: 'object',
        required: ['command'],
        additionalProperties: false,
        properties: {
          command: { type: 'string', minLength: 1, maxLength: 16_384 },
          cwd: { type: 'string', minLength: 1, maxLength: 4096 },
        },
      },
      inspect: async (args) => {
        const command = String(args.command);
        const risk = await analyzeCommand(command, { workspace: options.workspace });
        // Critical commands (download-and-execute, fork bombs, rm -rf /, unparseable text) are
        // blocked by the guard whatever the policy says, and kept in quarantine.
        if (risk.level === 'critical')
          throw new WardenError(
            'GUARD_BLOCKED',
            `shell.exec blocked: the command's risk is critical (${risk.score}): ${risk.reasons.map((r) => r.message).join('; ')}`,
            {
              details: {
                guard: 'command',
                reasons: risk.reasons.map((r) => `${r.code}: ${r.message}`),
                command,
                score: risk.score,
              },
            },
          );
        const cwd = await realPath(
          typeof args.cwd === 'string' ? args.cwd : options.workspace,
          'list',
        );
        const findings = {
          risk: {
            score: risk.score,
            level: risk.level,
            reasons: risk.reasons.map((r) => r.code),
            simple: risk.simple,
          },
        };
        return {
          checks: [
            {
              action: 'shell.exec',
              resource: `command:${command}`,
              // `risk` is the level the policy compares (max_command_risk); the rest explains it.
              context: {
                risk: risk.level,
                risk_score: risk.score,
                risk_reasons: findings.risk.reasons,
                simple: risk.simple,
                cwd,
              },
            },
          ],
          args: { command, cwd },
          findings,
        };
      },
      execute: (args, run) =>
        runShell(
          String(args.command),
          String(args.cwd),
          run.signal,
          options.shellMaxOutput ?? 256 * 1024,
        ),
    },
    {
      name: 'kv.get',
      description: 'Read a value from the key-value store.',
      effect: 'read',
      inputSchema: kvSchema(false),
      inspect: (args) =>
        Promise.resolve({
          checks: [
            { action: 'kv.get', resource: `kv:${String(args.namespace)}/${String(args.key)}` },
          ],
        }),
      execute: async (args) => {
        const found = await options.kernel.store.kvGet(String(args.namespace), String(args.key));
        return { content: found ? { found: true, ...found } : { found: false } };
      },
    },
    {
      name: 'kv.set',
      description:
        'Write a JSON value to the key-value store (optionally only at an expected version).',
      effect: 'write',
      inputSchema: kvSchema(true),
      inspect: (args) =>
        Promise.resolve({
          checks: [
            { action: 'kv.set', resource: `kv:${String(args.namespace)}/${String(args.key)}` },
          ],
        }),
      execute: async (args) => {
        const namespace = String(args.namespace);
        const key = String(args.key);
        await options.kernel.store.commit([
          {
            op: 'kv.set',
            namespace,
            key,
            value: args.value,
            ...(args.expected_version === undefined
              ? {}
              : { expected_version: args.expected_version as number | null }),
            now: options.kernel.clock.now(),
          },
        ]);
        const stored = await options.kernel.store.kvGet(namespace, key);
        return { content: { namespace, key, version: stored?.version ?? null } };
      },
    },
    {
      name: 'run.spawn',
      description: 'Start another workflow as a child run of this one.',
      effect: 'execute',
      inputSchema: {
        type: 'object',
        required: ['workflow'],
        additionalProperties: false,
        properties: {
          workflow: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,128}$' },
          input: {},
        },
      },
      inspect: (args) =>
        Promise.resolve({
          checks: [{ action: 'run.spawn', resource: `workflow:${String(args.workflow)}` }],
        }),
      execute: async (args, run) => {
        if (!options.loadWorkflow)
          throw new WardenError(
            'TOOL_ERROR',
            'run.spawn needs a workflows directory (tools.workflows in config.yaml)',
          );
        const workflow = await options.loadWorkflow(String(args.workflow));
        const child = await options.kernel.startRun({
          workflow: workflow as Parameters<Kernel['startRun']>[0]['workflow'],
          input: args.input ?? {},
          ...(run.caller ? { parentPid: run.caller.pid } : {}),
        });
        return { content: { pid: child.pid, session_id: child.session_id, state: child.state } };
      },
    },
  ];
  if (options.queue) {
    const queue = options.queue;
    tools.push({
      name: 'task.submit',
      description: 'Submit a job to a lane of the durable queue.',
      effect: 'write',
      inputSchema: {
        type: 'object',
        required: ['lane', 'name'],
        additionalProperties: false,
        properties: {
          lane: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$' },
          name: { type: 'string', minLength: 1, maxLength: 128 },
          payload: {},
          idempotency_key: { type: 'string', minLength: 1, maxLength: 256 },
        },
      },
      inspect: (args) =>
        Promise.resolve({
          checks: [
            {
              action: 'task.submit',
              resource: `lane:${String(args.lane)}`,
              context: { name: String(args.name) },
            },
          ],
        }),
      execute: async (args) => {
        const job = await queue.submit(String(args.name), args.payload ?? null, {
          lane: String(args.lane),
          ...(typeof args.idempotency_key === 'string'
            ? { idempotencyKey: args.idempotency_key }
            : {}),
        });
        return { content: job };
      },
    });
  }
  return tools;
}

function pathSchema(): Record<string, unknown> {
  return {
    type: 'object',
    required: ['path'],
    additionalProperties: false,
    properties: { path: { type: 'string', minLength: 1, maxLength: 4096 } },
  };
}

function kvSchema(write: boolean): Record<string, unknown> {
  const properties: Record<string, unknown> = {
    namespace: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$' },
    key: { type: 'string', minLength: 1, maxLength: 256 },
  };
  if (write) {
    properties.value = {};
    properties.expected_version = { type: ['integer', 'null'], minimum: 0 };
  }
  return {
    type: 'object',
    required: write ? ['namespace', 'key', 'value'] : ['namespace', 'key'],
    additionalProperties: false,
    properties,
  };
}

/** Response headers a model may see (never cookies or auth challenges). */
function pickHeaders(headers: Readonly<Record<string, string | string[]>>): Record<string, string> {
  const keep = ['content-type', 'content-length', 'last-modified', 'etag', 'location'];
  const out: Record<string, string> = {};
  for (const name of keep) {
    const value = headers[name];
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/**
 * Runs `sh -c command` with a minimal environment (no inherited variables, so no secrets),
 * in its own process group so a timeout or cancel kills everything it started.
 */
function runShell(
  command: string,
  cwd: string,
  signal: AbortSignal,
  maxOutput: number,
): Promise<ToolOutput> {
  if (!isAbsolute(cwd)) cwd = resolve(cwd);
  return new Promise((resolvePromise, reject) => {
    const child = spawn('/bin/sh', ['-c', command], {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: cwd, LANG: 'C.UTF-8' },
    });
    const out = new Capture(maxOutput);
    const err = new Capture(maxOutput);
    child.stdout.on('data', (d: Buffer) => out.add(d));
    child.stderr.on('data', (d: Buffer) => err.add(d));
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    signal.addEventListener('abort', kill, { once: true });
    child.on('error', (error) => {
      signal.removeEventListener('abort', kill);
      reject(new WardenError('TOOL_ERROR', `shell.exec could not start: ${error.message}`));
    });
    child.on('close', (code, killedBy) => {
      signal.removeEventListener('abort', kill);
      if (signal.aborted) {
        reject(
          signal.reason instanceof Error
            ? signal.reason
            : new WardenError('CANCELED', 'shell.exec aborted'),
        );
        return;
      }
      resolvePromise({
        content: {
          exit_code: code,
          ...(killedBy ? { signal: killedBy } : {}),
          stdout: out.text(),
          stderr: err.text(),
          ...(out.cut || err.cut ? { truncated: true } : {}),
        },
        is_error: code !== 0,
      });
    });
  });
}

class Capture {
  readonly #max: number;
  readonly #chunks: Buffer[] = [];
  #size = 0;
  cut = false;

  constructor(max: number) {
    this.#max = max;
  }

  add(chunk: Buffer): void {
    const room = this.#max - this.#size;
    if (room <= 0) {
      this.cut = true;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept !== chunk) this.cut = true;
    this.#chunks.push(kept);
    this.#size += kept.length;
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}
