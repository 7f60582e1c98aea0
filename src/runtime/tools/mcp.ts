/**
 * An MCP server as a Warden {@link ToolSource} (DESIGN.md §7, docs/mcp.md). Each MCP tool becomes
 * a Warden tool named `mcp.<server>.<tool>`, so policies, trust levels, approvals, the effect
 * journal and the audit see it like any built-in: this module never decides anything itself.
 *
 * Connection lifecycle:
 * - `idle` → first `list()` or `execute()` → `connecting` (start the process or open the HTTP
 *   session, then the MCP handshake within `startup_timeout` / `timeout`) → `connected`.
 * - `connected` → the process exits, or an HTTP request fails below MCP → `dead`. A dead
 *   connection is never retried in the middle of a call (the call may have had its effect; the
 *   error says so); the **next** call starts a fresh connection, once, and fails with TOOL_ERROR
 *   if that does not work either.
 * - any state → `close()` → `closed` (final): the process group is killed, the HTTP session
 *   dropped; later calls fail with INVALID_STATE.
 *
 * Secrets (`{secret: NAME}` in `env` / `headers`) are resolved at each connect, so a rotated
 * secret is picked up on the next restart; a missing one fails with the resolver's own error
 * (SECRET_MISSING). Their values are masked in every error message this module builds.
 */
// The layer rule's `**/client/**` pattern means Warden's src/client; these are the MCP SDK's.
// eslint-disable-next-line no-restricted-imports
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
// eslint-disable-next-line no-restricted-imports
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ErrorCode as McpErrorCode,
  McpError,
  type Tool as McpTool,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

import {
  coerceError,
  deepFreeze,
  isWardenError,
  type McpConfigValue,
  type McpServerConfig,
  truncateText,
  WardenError,
} from '../../core/index.ts';
import { MCP_MAX_OUTPUT_BYTES, mcpResultToOutput } from './mcp-output.ts';
import { McpStdioTransport } from './mcp-stdio.ts';
import type { JsonSchema, Tool, ToolExecution, ToolOutput, ToolSource } from './types.ts';

export interface McpToolSourceOptions {
  /** The value of a secret by name; throws SECRET_MISSING (a WardenError) when it is not set. */
  readonly resolveSecret: (name: string) => string;
  /** The bound on one tool output (UTF-8 text or JSON). @default 256 KiB */
  readonly maxOutputBytes?: number;
  /** How much of a stdio server's stderr is kept for error messages. @default 16 KiB */
  readonly maxStderrBytes?: number;
  /** How Warden introduces itself in the handshake. @default {name: 'warden', version: '0.1.0'} */
  readonly clientInfo?: { readonly name: string; readonly version: string };
}

/** The longest tool name part after `mcp.<server>.`, and the most tools read from one server. */
const MAX_TOOL_NAME = 64;
const MAX_TOOLS = 1_000;
const MAX_DESCRIPTION_BYTES = 8 * 1024;
/** Stderr quoted in an error message: its last bytes (error messages are bounded to 4 KiB). */
const STDERR_IN_MESSAGE = 1_024;
const CONNECTION_CLOSED: number = McpErrorCode.ConnectionClosed;
const REQUEST_TIMEOUT: number = McpErrorCode.RequestTimeout;

interface Connection {
  readonly client: Client;
  readonly transport: McpStdioTransport | StreamableHTTPClientTransport;
  alive: boolean;
}

export class McpToolSource implements ToolSource {
  /** `mcp.<server>`: the prefix of every tool name from this server. */
  readonly name: string;
  readonly #config: McpServerConfig;
  readonly #resolveSecret: (name: string) => string;
  readonly #maxOutputBytes: number;
  readonly #maxStderrBytes: number;
  readonly #clientInfo: { readonly name: string; readonly version: string };
  #conn: Connection | null = null;
  #connecting: Promise<Connection> | null = null;
  #tools: readonly Tool[] | null = null;
  #warnings: string[] = [];
  /** Resolved secret values of the current connection, masked in error messages. */
  #secretValues: string[] = [];
  #closing: Promise<void> | null = null;

  constructor(config: McpServerConfig, options: McpToolSourceOptions) {
    this.name = `mcp.${config.name}`;
    this.#config = config;
    this.#resolveSecret = options.resolveSecret;
    this.#maxOutputBytes = options.maxOutputBytes ?? MCP_MAX_OUTPUT_BYTES;
    this.#maxStderrBytes = options.maxStderrBytes ?? 16 * 1024;
    this.#clientInfo = options.clientInfo ?? { name: 'warden', version: '0.1.0' };
  }

  /** Problems found by the last listing: renamed tools, skipped duplicates. */
  get warnings(): readonly string[] {
    return [...this.#warnings];
  }

  /** The stdio server's process id while it runs (null for HTTP, or when not running). */
  get pid(): number | null {
    const transport = this.#conn?.transport;
    return transport instanceof McpStdioTransport ? transport.pid : null;
  }

  /**
   * The server's tools as Warden tools (connecting first if needed). The listing is kept until
   * the server reports its tool list changed or the connection is replaced. TOOL_ERROR when the
   * server cannot be reached; SECRET_MISSING from `resolveSecret`; CANCELED (or the abort reason
   * when it is a WardenError) when `signal` aborts; INVALID_STATE after `close()`.
   */
  async list(signal?: AbortSignal): Promise<readonly Tool[]> {
    if (this.#tools && this.#conn?.alive) return this.#tools;
    const listed = await this.#withConnection(signal, 'tools/list', async (client) => {
      const tools: McpTool[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor === undefined ? undefined : { cursor }, {
          signal,
          timeout: this.#config.timeout,
        });
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor !== undefined && tools.length < MAX_TOOLS);
      return tools;
    });
    this.#tools = this.#toTools(listed);
    return this.#tools;
  }

  /** Stops the server (or drops the HTTP session). Idempotent; later calls fail. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#connecting?.catch(() => undefined);
      const conn = this.#conn;
      this.#conn = null;
      if (conn) await closeQuietly(conn);
    })();
    return this.#closing;
  }

  #toTools(listed: readonly McpTool[]): readonly Tool[] {
    const warnings: string[] = [];
    const tools: Tool[] = [];
    const seen = new Set<string>();
    if (listed.length >= MAX_TOOLS) {
      warnings.push(`${this.name}: only the first ${MAX_TOOLS} tools are used`);
    }
    for (const tool of listed.slice(0, MAX_TOOLS)) {
      const local = tool.name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, MAX_TOOL_NAME);
      const name = `${this.name}.${local}`;
      if (local === '' || seen.has(local)) {
        warnings.push(
          `${this.name}: skipped tool '${tool.name}': ${local === '' ? 'it has no name' : `its name ${name} is already taken`}`,
        );
        continue;
      }
      if (local !== tool.name) warnings.push(`${this.name}: tool '${tool.name}' is named ${name}`);
      seen.add(local);
      tools.push(this.#toTool(tool, name));
    }
    this.#warnings = warnings;
    return Object.freeze(tools);
  }

  #toTool(tool: McpTool, name: string): Tool {
    const { $schema: _ignored, ...schema } = structuredClone(tool.inputSchema) as Record<
      string,
      unknown
    >;
    const description =
      tool.description ??
      tool.title ??
      `Tool '${tool.name}' of the MCP server '${this.#config.name}'`;
    return Object.freeze({
      name,
      description: truncateText(description, MAX_DESCRIPTION_BYTES),
      // The server's own schema; a draft-07 `$schema` is dropped so any validator reads it.
      inputSchema: deepFreeze({ type: 'object', ...schema }) as JsonSchema,
      // A server's hint, not a guarantee; anything not declared read-only counts as `execute`.
      effect: tool.annotations?.readOnlyHint === true ? 'read' : 'execute',
      execute: (args: Record<string, unknown>, run: ToolExecution) =>
        this.#call(tool.name, args, run),
    } satisfies Tool);
  }

  async #call(
    tool: string,
    args: Record<string, unknown>,
    run: ToolExecution,
  ): Promise<ToolOutput> {
    const result = await this.#withConnection(run.signal, tool, (client) =>
      client.callTool({ name: tool, arguments: args }, undefined, {
        signal: run.signal,
        timeout: this.#config.timeout,
      }),
    );
    return mcpResultToOutput(result, this.#maxOutputBytes);
  }

  /**
   * Runs `request` on the live connection (connecting first), mapping failures to WardenErrors.
   * An HTTP 404 means the server no longer knows the session (it restarted, or the session
   * expired) and did not run the request, so it alone is retried once on a new session.
   */
  async #withConnection<T>(
    signal: AbortSignal | undefined,
    what: string,
    request: (client: Client) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const conn = await this.#connection(signal);
      try {
        return await request(conn.client);
      } catch (error) {
        if (signal?.aborted) throw abortError(signal);
        if (attempt === 0 && error instanceof StreamableHTTPError && error.code === 404) {
          conn.alive = false;
          continue;
        }
        throw this.#callError(error, conn, what);
      }
    }
  }

  /** The live connection, or a new one (one attempt) when there is none or it died. */
  async #connection(signal?: AbortSignal): Promise<Connection> {
    if (signal?.aborted) throw abortError(signal);
    if (this.#closing) {
      throw new WardenError(
        'INVALID_STATE',
        `the MCP tool source ${this.name} is closed; open a new one to call its tools`,
      );
    }
    if (this.#conn?.alive) return this.#conn;
    if (this.#conn) {
      const dead = this.#conn;
      this.#conn = null;
      void closeQuietly(dead);
    }
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = null;
    });
    return abortable(this.#connecting, signal);
  }

  async #open(): Promise<Connection> {
    const secrets: string[] = [];
    const value = (v: McpConfigValue): string => {
      if (typeof v === 'string') return v;
      const resolved = this.#secret(v.secret);
      if (resolved !== '') secrets.push(resolved);
      return resolved;
    };
    const config = this.#config;
    let transport: McpStdioTransport | StreamableHTTPClientTransport;
    if (config.transport === 'stdio') {
      // Only PATH of Warden's environment; everything else the server gets is configured.
      const env: Record<string, string> = {};
      if (process.env.PATH !== undefined) env.PATH = process.env.PATH;
      for (const [key, v] of Object.entries(config.env)) env[key] = value(v);
      transport = new McpStdioTransport({
        command: config.command,
        args: config.args,
        env,
        cwd: config.cwd,
        maxStderrBytes: this.#maxStderrBytes,
      });
    } else {
      const headers: Record<string, string> = {};
      for (const [key, v] of Object.entries(config.headers)) headers[key] = value(v);
      transport = new StreamableHTTPClientTransport(new URL(config.url), {
        requestInit: { headers },
      });
    }
    this.#secretValues = secrets;
    const client = new Client({ ...this.#clientInfo }, { capabilities: {} });
    const conn: Connection = { client, transport, alive: true };
    client.onclose = () => {
      conn.alive = false;
    };
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      this.#tools = null;
    });
    const timeout = config.transport === 'stdio' ? config.startup_timeout : config.timeout;
    try {
      await client.connect(transport, { timeout });
    } catch (error) {
      conn.alive = false;
      await closeQuietly(conn);
      throw this.#connectError(error, transport, timeout);
    }
    if (this.#closing) {
      // close() was called during the handshake: it waits for this, then finds no connection.
      await closeQuietly(conn);
      throw new WardenError('INVALID_STATE', `the MCP tool source ${this.name} was closed`);
    }
    this.#conn = conn;
    return conn;
  }

  #secret(name: string): string {
    try {
      return this.#resolveSecret(name);
    } catch (error) {
      throw coerceError(error, 'SECRET_MISSING');
    }
  }

  #connectError(
    error: unknown,
    transport: Connection['transport'],
    timeoutMs: number,
  ): WardenError {
    const server = `MCP server '${this.#config.name}'`;
    const why = errorText(error);
    let message: string;
    const details: Record<string, unknown> = {
      server: this.#config.name,
      transport: this.#config.transport,
    };
    if (transport instanceof McpStdioTransport) {
      const exit = transport.exit;
      details.command = this.#config.transport === 'stdio' ? this.#config.command : undefined;
      if (isTimeout(error)) {
        message = `${server} did not complete the MCP handshake within ${timeoutMs} ms: check that its command starts an MCP server on stdio, or raise startup_timeout`;
      } else if (exit !== null && (exit.code !== null || exit.signal !== null)) {
        details.exit_code = exit.code;
        details.exit_signal = exit.signal;
        message = `${server} exited (${exitText(exit)}) before completing the MCP handshake: check its command, args, cwd and env (it sees only PATH and its configured env)`;
      } else {
        message = `${server} could not be started (${why}): check that its command is installed and on PATH, and its cwd exists`;
      }
      const stderr = transport.stderrTail();
      if (stderr.trim() !== '') message += `; its stderr ends: ${tail(stderr)}`;
    } else {
      const where = this.#config.transport === 'http' ? displayUrl(this.#config.url) : '';
      message = isTimeout(error)
        ? `${server} at ${where} did not complete the MCP handshake within ${timeoutMs} ms: check the url, or raise timeout`
        : `${server} at ${where} could not be reached (${why}): check the url, that the server is running, and its headers (HTTP 401/403 mean the credentials were refused)`;
    }
    return new WardenError('TOOL_ERROR', this.#mask(message), { cause: error, details });
  }

  #callError(error: unknown, conn: Connection, tool: string): WardenError {
    if (isWardenError(error)) return error;
    const server = `MCP server '${this.#config.name}'`;
    const details: Record<string, unknown> = { server: this.#config.name, tool };
    let message: string;
    if (isTimeout(error)) {
      message = `${server} did not answer ${tool} within ${this.#config.timeout} ms: check the server, or raise its timeout`;
    } else if (error instanceof McpError && error.code !== CONNECTION_CLOSED) {
      // The server answered with a JSON-RPC error: the connection itself is fine.
      details.mcp_code = error.code;
      message = `${server} rejected ${tool}: ${error.message}`;
    } else if (lostConnection(error, conn)) {
      conn.alive = false; // the next call reconnects
      const transport = conn.transport;
      if (transport instanceof McpStdioTransport) {
        const exit = transport.exit;
        message = `${server} ${exit ? `exited (${exitText(exit)})` : 'lost its connection'} during ${tool}; it may or may not have taken effect, and the server is restarted on the next call`;
        const stderr = transport.stderrTail();
        if (stderr.trim() !== '') message += `; its stderr ends: ${tail(stderr)}`;
      } else {
        message = `${server} failed during ${tool} (${errorText(error)}); it may or may not have taken effect, and the next call reconnects: check that the server is running`;
      }
    } else {
      // Typically an answer that is not a valid MCP result: the connection itself is fine.
      message = `${server} gave an invalid answer to ${tool} (${errorText(error)}): check that the server implements MCP correctly`;
    }
    return new WardenError('TOOL_ERROR', this.#mask(message), { cause: error, details });
  }

  /** The message with every resolved secret value replaced by `[secret]`. */
  #mask(message: string): string {
    let out = message;
    for (const secret of this.#secretValues) out = out.split(secret).join('[secret]');
    return out;
  }
}

function abortError(signal: AbortSignal): WardenError {
  const reason: unknown = signal.reason;
  if (isWardenError(reason)) return reason;
  return new WardenError('CANCELED', 'the MCP tool call was aborted', { cause: reason });
}

/** `promise`, or an abort error as soon as `signal` aborts (the work itself goes on, shared). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function closeQuietly(conn: Connection): Promise<void> {
  conn.alive = false;
  try {
    await conn.client.close();
  } catch {
    // Closing a broken connection can fail; the transport is released either way.
  }
  // Client.close() does not wait for a transport that never connected.
  if (conn.transport instanceof McpStdioTransport) await conn.transport.close();
}

/** True when `error` means the connection is gone (the process exited, HTTP failed). */
function lostConnection(error: unknown, conn: Connection): boolean {
  if (!conn.alive) return true;
  if (conn.transport instanceof McpStdioTransport) return conn.transport.exit !== null;
  return (
    (error instanceof McpError && error.code === CONNECTION_CLOSED) ||
    error instanceof StreamableHTTPError ||
    error instanceof TypeError // fetch: refused, reset, DNS
  );
}

function isTimeout(error: unknown): boolean {
  return error instanceof McpError && error.code === REQUEST_TIMEOUT;
}

function errorText(error: unknown): string {
  let text = error instanceof Error ? error.message : String(error);
  if (error instanceof StreamableHTTPError && error.code !== undefined && error.code > 0) {
    text = `HTTP ${error.code}: ${text}`;
  }
  return text.length <= 500 ? text : `${text.slice(0, 500)}…`;
}

function exitText(exit: { code: number | null; signal: string | null }): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`;
}

function tail(text: string): string {
  const trimmed = text.trim();
  return trimmed.length <= STDERR_IN_MESSAGE ? trimmed : `…${trimmed.slice(-STDERR_IN_MESSAGE)}`;
}

/** The URL without its query and fragment (which may carry tokens). */
function displayUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}
