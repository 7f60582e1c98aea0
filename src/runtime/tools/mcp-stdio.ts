/**
 * The stdio transport for MCP servers Warden starts itself. The SDK's `StdioClientTransport`
 * always adds HOME, LOGNAME, SHELL, TERM and USER from Warden's own environment and kills only
 * the direct child; this one differs where that matters for a policy-guarded runtime:
 *
 * - the child gets exactly the environment it is given (the caller passes the configured `env`
 *   plus PATH), so none of Warden's secrets or settings leak into a third-party server;
 * - the child leads its own process group, and `close()` (and the child's exit) kills the whole
 *   group, so a wrapper such as `npx` or `sh -c` cannot leave its real server running;
 * - stderr is never inherited: its last `maxStderrBytes` are kept for error messages.
 *
 * Framing (one JSON-RPC message per line) reuses the SDK's `ReadBuffer` and `serializeMessage`.
 * Close sequence (as the MCP spec suggests): end stdin, wait `graceMs`; SIGTERM the group, wait
 * `graceMs`; SIGKILL the group and wait for the exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';

import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export interface McpStdioTransportOptions {
  readonly command: string;
  readonly args: readonly string[];
  /** The child's whole environment (nothing of Warden's is added). */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string | undefined;
  /** @default 16 KiB */
  readonly maxStderrBytes?: number;
  /** The largest single message accepted from the server. @default 16 MiB */
  readonly maxMessageBytes?: number;
  /** How long each step of the close sequence waits for the exit. @default 1000 ms */
  readonly graceMs?: number;
}

/** How the child ended: its exit code, or the signal that ended it. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class McpStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  readonly #options: McpStdioTransportOptions;
  readonly #maxStderrBytes: number;
  readonly #graceMs: number;
  readonly #readBuffer: ReadBuffer;
  #child: ChildProcess | null = null;
  #exited: Promise<void> | null = null;
  #exit: ChildExit | null = null;
  #stderr: Buffer[] = [];
  #stderrBytes = 0;
  #closing = false;

  constructor(options: McpStdioTransportOptions) {
    this.#options = options;
    this.#maxStderrBytes = options.maxStderrBytes ?? 16 * 1024;
    this.#graceMs = options.graceMs ?? 1_000;
    this.#readBuffer = new ReadBuffer({
      maxBufferSize: options.maxMessageBytes ?? 16 * 1024 * 1024,
    });
  }

  /** The child's process id while it runs. */
  get pid(): number | null {
    return this.#exit === null ? (this.#child?.pid ?? null) : null;
  }

  /** How the child ended, once it has. */
  get exit(): ChildExit | null {
    return this.#exit;
  }

  /** The last bytes the child wrote to stderr (at most `maxStderrBytes`). */
  stderrTail(): string {
    return Buffer.concat(this.#stderr).toString('utf8');
  }

  start(): Promise<void> {
    if (this.#child)
      return Promise.reject(new Error('the MCP stdio transport was already started'));
    return new Promise((resolve, reject) => {
      const child = spawn(this.#options.command, [...this.#options.args], {
        env: { ...this.#options.env },
        cwd: this.#options.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
        shell: false,
        // Its own process group, so close() can end whatever the command starts in turn.
        detached: process.platform !== 'win32',
        windowsHide: true,
      });
      this.#child = child;
      let spawned = false;
      let markExited = (): void => {};
      this.#exited = new Promise((done) => (markExited = done));
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        this.#killGroup('SIGKILL'); // whatever a wrapper started and left behind
        markExited();
        // 'close' waits for stdout to drain; a straggler holding the pipe must not delay it.
        setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
        }, this.#graceMs).unref();
      });
      child.once('close', () => this.onclose?.());
      child.once('error', (error) => {
        if (spawned) {
          this.onerror?.(error);
          return;
        }
        this.#exit ??= { code: null, signal: null };
        markExited();
        reject(error);
      });
      child.once('spawn', () => {
        spawned = true;
        resolve();
      });
      child.stdout?.on('data', (chunk: Buffer) => {
        try {
          this.#readBuffer.append(chunk);
          for (;;) {
            const message = this.#readBuffer.readMessage();
            if (message === null) break;
            this.onmessage?.(message);
          }
        } catch (error) {
          // A malformed or oversized message: the stream cannot be resynchronised.
          this.onerror?.(error instanceof Error ? error : new Error(String(error)));
          void this.close();
        }
      });
      child.stderr?.on('data', (chunk: Buffer) => this.#keepStderr(chunk));
      child.stdin?.on('error', (error) => this.onerror?.(error));
      child.stdout?.on('error', (error) => this.onerror?.(error));
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.#child?.stdin;
    if (!stdin || this.#exit !== null || stdin.destroyed) {
      return Promise.reject(new Error('the MCP server process is not running'));
    }
    return new Promise((resolve, reject) => {
      stdin.write(serializeMessage(message), (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Ends the child (and its process group); idempotent, resolves once it has exited. */
  async close(): Promise<void> {
    const child = this.#child;
    if (!child || this.#closing) {
      await this.#exited;
      return;
    }
    this.#closing = true;
    if (this.#exit === null) {
      child.stdin?.end();
      if (!(await this.#exitWithin(this.#graceMs))) {
        this.#killGroup('SIGTERM');
        if (!(await this.#exitWithin(this.#graceMs))) {
          this.#killGroup('SIGKILL');
          await this.#exitWithin(this.#graceMs * 5);
        }
      }
    }
    this.#readBuffer.clear();
  }

  #exitWithin(ms: number): Promise<boolean> {
    const exited = this.#exited;
    if (exited === null || this.#exit !== null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      void exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  #killGroup(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      if (process.platform === 'win32') this.#child?.kill(signal);
      else process.kill(-pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  }

  #keepStderr(chunk: Buffer): void {
    this.#stderr.push(chunk);
    this.#stderrBytes += chunk.length;
    while (this.#stderrBytes > this.#maxStderrBytes && this.#stderr.length > 0) {
      const first = this.#stderr[0]!;
      const excess = this.#stderrBytes - this.#maxStderrBytes;
      if (first.length <= excess) {
        this.#stderr.shift();
        this.#stderrBytes -= first.length;
      } else {
        this.#stderr[0] = first.subarray(excess);
        this.#stderrBytes -= excess;
      }
    }
  }
}
