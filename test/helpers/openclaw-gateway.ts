/**
 * A `warden serve` with the OpenClaw gateway listener, and a raw OpenClaw protocol-4 client
 * written from the reference's frame schemas (reference/openclaw-gateway-v4.md §1–§2), not from
 * Warden's code: it sends what the shipped `openclaw` CLI sends and records every frame.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'vitest';
import WebSocket from 'ws';

import { runCli } from './cli.ts';
import { type DaemonProcess, startDaemon } from './daemon.ts';
import { tempDir } from './tmp.ts';

/** A chat workflow whose one `llm` stage echoes the message, one word per `chunkMs`. */
export function streamingChatWorkflow(chunkMs: number): string {
  return `name: chat
stages:
  - name: reply
    agent:
      kind: llm
      prompt: "{{input.prompt}}"
      script:
        - chunk_delay_ms: ${chunkMs}
    default_next: end
`;
}

/**
 * policy.yaml for a chat workflow whose `shell` stage runs `echo …`: `shell.exec` is allowed for
 * `echo` but asks a person every time (an exec approval).
 */
export const ASK_BEFORE_ECHO_POLICY = `version: 1
agents:
  chat/shell:
    tools: [shell.exec]
    commands: ["echo"]
    ask: [shell.exec]
`;

export interface GatewayDaemon {
  readonly daemon: DaemonProcess;
  readonly home: string;
  readonly url: string;
  /** The admin token (a Warden token is the gateway token in `token` mode). */
  readonly token: string;
  stop(): Promise<void>;
}

/** Starts a daemon whose config has `server.openclaw` on a free loopback port plus `openclaw` lines. */
export async function startGatewayDaemon(
  options: {
    openclaw?: readonly string[];
    extraConfig?: string;
    env?: Record<string, string>;
  } = {},
): Promise<GatewayDaemon> {
  const { env, ...homeOptions } = options;
  return startGatewayDaemonOnHome(await prepareGatewayHome(homeOptions), env ? { env } : {});
}

export interface Frame {
  readonly type: string;
  readonly id?: string;
  readonly ok?: boolean;
  readonly payload?: unknown;
  readonly error?: {
    code: string;
    message: string;
    details?: Record<string, unknown>;
    retryable?: boolean;
    retryAfterMs?: number;
  };
  readonly event?: string;
  readonly seq?: number;
}

/** What the shipped CLI sends for `openclaw gateway call <method> --token T` (§2.2). */
export function cliConnectParams(
  token: string | undefined,
  scopes: readonly string[] = ['operator.read'],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    minProtocol: 4,
    maxProtocol: 4,
    client: {
      id: 'cli',
      version: '2026.9.6',
      platform: 'linux',
      deviceFamily: 'Linux',
      mode: 'cli',
      instanceId: randomUUID(),
    },
    caps: [],
    ...(token === undefined ? {} : { auth: { token } }),
    role: 'operator',
    scopes,
    ...extra,
  };
}

export class RawGatewayClient {
  readonly frames: Frame[] = [];
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<() => void> = [];
  #next = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString('utf8') });
        this.#wake();
      }),
    );
    ws.on('message', (data: Buffer) => {
      this.frames.push(JSON.parse(data.toString('utf8')) as Frame);
      this.#wake();
    });
    ws.on('error', () => undefined);
  }

  static async open(url: string): Promise<RawGatewayClient> {
    const ws = new WebSocket(url);
    const client = new RawGatewayClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  /**
   * `open` with client options: a source address (`localAddress: '127.0.0.N'`, so tests that
   * fail auth on purpose do not rate-limit 127.0.0.1) or headers (`Origin`).
   */
  static async openWith(url: string, options: WebSocket.ClientOptions): Promise<RawGatewayClient> {
    const ws = new WebSocket(url, options);
    const client = new RawGatewayClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  /** Opens, waits for the challenge, sends `connect` and returns the hello-ok frame. */
  static async connect(
    url: string,
    token: string | undefined,
    scopes: readonly string[] = ['operator.read', 'operator.write'],
    extra: Record<string, unknown> = {},
  ): Promise<RawGatewayClient> {
    const client = await RawGatewayClient.open(url);
    await client.waitFor((f) => f.type === 'event' && f.event === 'connect.challenge');
    const res = await client.request('connect', cliConnectParams(token, scopes, extra));
    expect(res.ok, JSON.stringify(res.error)).toBe(true);
    return client;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** The first frame (at or after `from`) matching `match`, waiting up to `timeoutMs`. */
  async waitFor(match: (f: Frame) => boolean, timeoutMs = 10_000, from = 0): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.slice(from).find(match);
      if (found) return found;
      if (this.ws.readyState === WebSocket.CLOSED)
        throw new Error(
          `socket closed waiting; frames: ${JSON.stringify(this.frames).slice(0, 2000)}`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting; frames: ${JSON.stringify(this.frames).slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * Waits until `check()` holds, re-checking on every frame and on close (for counting
   * replies, where `waitFor`'s first match is not enough). Throws after `timeoutMs`.
   */
  async until(check: () => boolean, timeoutMs = 10_000, what = 'the condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `${what} did not hold within ${timeoutMs} ms; last frames: ${JSON.stringify(this.frames.slice(-5)).slice(0, 2000)}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends raw bytes as one frame: binary, or text (`binary: false` sends them unvalidated). */
  sendBytes(data: Buffer, binary: boolean): void {
    this.ws.send(data, { binary });
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  /** A fresh id in the CLI's `<n>:<uuid>` form. */
  nextId(): string {
    return `${this.#next++}:${randomUUID()}`;
  }

  /** Sends a `req` and returns its first `res` that is not an `accepted` ack (unless `ack`). */
  async request(
    method: string,
    params?: unknown,
    options: { ack?: boolean; timeoutMs?: number; id?: string } = {},
  ): Promise<Frame> {
    const id = options.id ?? this.nextId();
    const from = this.frames.length;
    this.send(
      params === undefined ? { type: 'req', id, method } : { type: 'req', id, method, params },
    );
    return this.waitFor(
      (f) =>
        f.type === 'res' &&
        f.id === id &&
        (options.ack === true || !(f.ok === true && isAccepted(f.payload))),
      options.timeoutMs ?? 10_000,
      from,
    );
  }

  /** `request` that must succeed; returns the payload. */
  async call<T = Record<string, unknown>>(method: string, params?: unknown): Promise<T> {
    const res = await this.request(method, params);
    expect(res.ok, `${method}: ${JSON.stringify(res.error)}`).toBe(true);
    return res.payload as T;
  }

  events(name?: string): Frame[] {
    return this.frames.filter(
      (f) => f.type === 'event' && (name === undefined || f.event === name),
    );
  }

  close(): void {
    this.ws.close();
  }
}

function isAccepted(payload: unknown): boolean {
  return (
    payload !== null &&
    typeof payload === 'object' &&
    (payload as { status?: unknown }).status === 'accepted'
  );
}

/**
 * A gateway home ready to start: `warden init`, `files` written (paths relative to the home, e.g.
 * the chat workflow or policy.yaml), and config.yaml as {@link startGatewayDaemon} writes it.
 * Start it (and restart it, on the same database) with {@link startGatewayDaemonOnHome}.
 */
export async function prepareGatewayHome(
  options: {
    openclaw?: readonly string[];
    extraConfig?: string;
    files?: Readonly<Record<string, string>>;
  } = {},
): Promise<string> {
  const home = tempDir('warden-openclaw-');
  const init = await runCli(['init'], { home });
  expect(init.code, init.stderr).toBe(0);
  for (const [name, text] of Object.entries(options.files ?? {}))
    writeFileSync(join(home, name), text);
  writeFileSync(
    join(home, 'config.yaml'),
    [
      'security:',
      '  watch_policy: false',
      'server:',
      '  openclaw:',
      '    listen: 127.0.0.1:0',
      ...(options.openclaw ?? []).map((l) => `    ${l}`),
      options.extraConfig ?? '',
    ].join('\n'),
  );
  return home;
}

/** Starts `warden serve` on an existing gateway home (a fresh one, or again after a stop). */
export async function startGatewayDaemonOnHome(
  home: string,
  options: { env?: Record<string, string> } = {},
): Promise<GatewayDaemon> {
  const daemon = await startDaemon(home, options.env ? { env: options.env } : undefined);
  const line = daemon.logs.find((l) => l.msg === 'OpenClaw gateway listening');
  expect(line, daemon.output()).toBeDefined();
  return {
    daemon,
    home,
    url: `ws://127.0.0.1:${String(line!.port)}`,
    token: daemon.token,
    stop: () => daemon.stop().then(() => undefined),
  };
}

/**
 * An `INVALID_REQUEST` answer (§3) whose message is non-empty and matches `names`: every such
 * answer must say what was wrong, so the pattern should name the field or the problem.
 */
export function expectInvalidRequest(res: Frame, names: RegExp): void {
  expect(res.ok, JSON.stringify(res)).toBe(false);
  expect(res.error?.code, JSON.stringify(res.error)).toBe('INVALID_REQUEST');
  expect(typeof res.error?.message).toBe('string');
  expect(res.error!.message.trim()).not.toBe('');
  expect(res.error!.message).toMatch(names);
}

/** §2.6: `FORBIDDEN` "missing scope: <scope>" with `details.code: MISSING_SCOPE`. */
export function expectMissingScope(res: Frame, scope: string): void {
  expect(res.ok, JSON.stringify(res)).toBe(false);
  expect(res.error).toMatchObject({
    code: 'FORBIDDEN',
    message: `missing scope: ${scope}`,
    details: { code: 'MISSING_SCOPE', missingScope: scope, requiredScopes: [scope] },
  });
}
