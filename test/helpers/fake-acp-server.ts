/**
 * A small ACP server that follows docs/protocol/acp.md closely enough to test the client
 * against it: bearer auth at the upgrade (401, tokens in the URL refused, 403 for an Origin
 * not allowed), `system.hello` first, typed errors with `data`, sessions with a sequential
 * event log (replay then live, pruning for REPLAY_GAP), an in-memory job queue with attempt
 * tokens and long-polled claims, and hooks to misbehave on purpose: kill connections, send
 * `system.backpressure` then close 1013, `system.shutdown` then close 1001, delay or fail a
 * method, skip an event.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

import { WebSocket, WebSocketServer } from 'ws';

import { ERROR_CATALOGUE, type ErrorCode } from '../../src/core/index.ts';

interface Conn {
  readonly ws: WebSocket;
  hello: boolean;
}

interface FakeEvent {
  session_id: string;
  seq: number;
  type: string;
  ts: number;
  trace_id: string;
  process_id: null;
  task_id: null;
  attempt: null;
  data: unknown;
  prev_hash: string;
  hash: string;
}

interface Sub {
  readonly id: string;
  readonly conn: Conn;
  readonly sessionId: string;
  cursor: number;
}

export interface FakeTask {
  id: string;
  kind: 'job';
  name: string;
  lane: string;
  session_id: string;
  process_id: null;
  payload: unknown;
  state: 'queued' | 'running' | 'succeeded' | 'failed';
  priority: number;
  attempts: number;
  max_attempts: number;
  lease_expires_at: number | null;
  last_error: unknown;
  result: unknown;
  created_at: number;
  updated_at: number;
  token: string | null;
  heartbeats: number;
  progress: unknown[];
}

interface ClaimWaiter {
  readonly conn: Conn;
  readonly lanes: string[];
  readonly limit: number;
  readonly leaseMs: number;
  readonly answer: (claims: unknown[]) => void;
}

class RpcError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(
    code: ErrorCode,
    message: string,
    details?: Record<string, unknown>,
    retryAfterMs?: number,
  ) {
    super(message);
    this.code = code;
    this.details = details;
    this.retryAfterMs = retryAfterMs;
  }
}

export interface FakeAcpServerOptions {
  readonly token?: string;
  readonly allowedOrigins?: readonly string[];
  /** Send a subscription's first events before the answer to `events.subscribe`. */
  readonly eventsBeforeAnswer?: boolean;
}

export class FakeAcpServer {
  readonly token: string;
  /** Every upgrade request: its URL (path and query) and headers. */
  readonly upgrades: { url: string; headers: IncomingMessage['headers'] }[] = [];
  /** Every request, in order, with the connection number it came on. */
  readonly calls: { conn: number; method: string; params: Record<string, unknown> }[] = [];
  readonly conns = new Set<Conn>();
  readonly tasks = new Map<string, FakeTask>();
  readonly log = new Map<string, FakeEvent[]>();
  readonly pruned = new Map<string, number>();
  /** Answer the method after this many ms. */
  readonly delays = new Map<string, number>();
  /** Fail the next call of the method with this error. */
  readonly failNext = new Map<string, RpcError>();
  readonly #subs = new Map<string, Sub>();
  readonly #claimWaiters = new Set<ClaimWaiter>();
  readonly #http: Server;
  readonly #wss = new WebSocketServer({ noServer: true });
  readonly #options: FakeAcpServerOptions;
  #connCount = 0;
  #skipOnce = false;
  url = '';

  private constructor(options: FakeAcpServerOptions) {
    this.#options = options;
    this.token = options.token ?? 'secret-token';
    this.#http = createServer((_req, res) => res.writeHead(404).end());
    this.#http.on('upgrade', (req, socket, head) => this.#upgrade(req, socket, head));
  }

  static async start(options: FakeAcpServerOptions = {}): Promise<FakeAcpServer> {
    const server = new FakeAcpServer(options);
    await new Promise<void>((resolve) => server.#http.listen(0, '127.0.0.1', resolve));
    const { port } = server.#http.address() as AddressInfo;
    server.url = `ws://127.0.0.1:${port}/acp`;
    return server;
  }

  /** Connections open on this side (not closing). */
  get openConnections(): number {
    return [...this.conns].filter((c) => c.ws.readyState === WebSocket.OPEN).length;
  }

  get parkedClaims(): number {
    return this.#claimWaiters.size;
  }

  /** Schedules `error` as the next answer to `method`. */
  fail(
    method: string,
    code: ErrorCode,
    message: string,
    details?: Record<string, unknown>,
    retryAfterMs?: number,
  ): void {
    this.failNext.set(method, new RpcError(code, message, details, retryAfterMs));
  }

  /** Appends `n` events to the session (created if new) and sends them to subscribers. */
  append(sessionId: string, n = 1): void {
    const log = this.#log(sessionId);
    for (let i = 0; i < n; i++) {
      const seq = log.length === 0 ? (this.pruned.get(sessionId) ?? 0) + 1 : log.at(-1)!.seq + 1;
      log.push({
        session_id: sessionId,
        seq,
        type: 'test.event',
        ts: Date.now(),
        trace_id: 'tr_fake',
        process_id: null,
        task_id: null,
        attempt: null,
        data: { n: seq },
        prev_hash: '',
        hash: `h${seq}`,
      });
    }
    for (const sub of this.#subs.values()) if (sub.sessionId === sessionId) this.#pump(sub);
  }

  /** Drops the session's events up to `seq` (retention). */
  prune(sessionId: string, seq: number): void {
    const log = this.#log(sessionId);
    this.log.set(
      sessionId,
      log.filter((e) => e.seq > seq),
    );
    this.pruned.set(sessionId, seq);
  }

  /** The next event sent to any subscriber skips one seq (a bug the client must survive). */
  skipOneEvent(): void {
    this.#skipOnce = true;
  }

  /** Drops every connection without a closing handshake (a network failure). */
  killAll(): void {
    for (const conn of this.conns) conn.ws.terminate();
  }

  /** `system.backpressure`, then close 1013, on every connection. */
  backpressureAll(): void {
    for (const conn of this.conns) {
      this.#notify(conn, 'system.backpressure', {
        buffered_bytes: 9_000_000,
        high_water_bytes: 8_388_608,
        message: 'outbound buffer full; reconnect and subscribe again from your last seq',
      });
      conn.ws.close(1013, 'backpressure');
    }
  }

  /** `system.shutdown`, then close 1001, on every connection. */
  shutdownAll(): void {
    for (const conn of this.conns) {
      this.#notify(conn, 'system.shutdown', { reason: 'test', grace_ms: 0 });
      conn.ws.close(1001, 'shutting down');
    }
  }

  submit(name: string, payload: unknown = {}, lane = 'default'): FakeTask {
    const now = Date.now();
    const task: FakeTask = {
      id: `tsk_${randomUUID()}`,
      kind: 'job',
      name,
      lane,
      session_id: 'ses_system',
      process_id: null,
      payload,
      state: 'queued',
      priority: 2,
      attempts: 0,
      max_attempts: 3,
      lease_expires_at: null,
      last_error: null,
      result: null,
      created_at: now,
      updated_at: now,
      token: null,
      heartbeats: 0,
      progress: [],
    };
    this.tasks.set(task.id, task);
    this.#wakeClaims();
    return task;
  }

  /** Ends the task's attempt on the server side, as a lease expiry would. */
  loseLease(taskId: string): void {
    const task = this.tasks.get(taskId)!;
    task.token = null;
    task.state = 'queued';
  }

  async close(): Promise<void> {
    for (const conn of this.conns) conn.ws.terminate();
    this.#wss.close();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgrades.push({ url: req.url ?? '', headers: req.headers });
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/acp') return refuse(404, 'Not Found');
    if (['token', 'access_token', 'auth'].some((p) => url.searchParams.has(p))) {
      return refuse(401, 'Unauthorized');
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return refuse(401, 'Unauthorized');
    const origin = req.headers.origin;
    if (origin !== undefined && !(this.#options.allowedOrigins ?? []).includes(origin)) {
      return refuse(403, 'Forbidden');
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws));
  }

  #accept(ws: WebSocket): void {
    const conn: Conn = { ws, hello: false };
    const number = ++this.#connCount;
    this.conns.add(conn);
    ws.on('message', (data) => {
      const msg = JSON.parse((data as Buffer).toString('utf8')) as {
        id?: number;
        method: string;
        params?: Record<string, unknown>;
      };
      const params = msg.params ?? {};
      this.calls.push({ conn: number, method: msg.method, params });
      void this.#answer(conn, msg.id, msg.method, params);
    });
    ws.on('close', () => {
      this.conns.delete(conn);
      for (const sub of [...this.#subs.values()]) if (sub.conn === conn) this.#subs.delete(sub.id);
      for (const w of [...this.#claimWaiters]) if (w.conn === conn) this.#claimWaiters.delete(w);
    });
  }

  async #answer(
    conn: Conn,
    id: number | undefined,
    method: string,
    params: Record<string, unknown>,
  ) {
    const delay = this.delays.get(method);
    if (delay !== undefined) await new Promise((r) => setTimeout(r, delay));
    let after: (() => void) | undefined;
    let reply: object;
    try {
      const scripted = this.failNext.get(method);
      if (scripted !== undefined) {
        this.failNext.delete(method);
        throw scripted;
      }
      const result = await this.#handle(conn, method, params, (fn) => (after = fn));
      reply = { jsonrpc: '2.0', id, result };
    } catch (error) {
      if (!(error instanceof RpcError)) throw error;
      const spec = ERROR_CATALOGUE[error.code];
      reply = {
        jsonrpc: '2.0',
        id,
        error: {
          code: spec.jsonrpc,
          message: error.message,
          data: {
            code: error.code,
            message: error.message,
            retryable: spec.retryable,
            ...(error.retryAfterMs === undefined ? {} : { retry_after_ms: error.retryAfterMs }),
            ...(error.details === undefined ? {} : { details: error.details }),
          },
        },
      };
      if (error.code === 'PROTOCOL_MISMATCH') after = () => conn.ws.close(1002, 'protocol');
    }
    if (id !== undefined && conn.ws.readyState === WebSocket.OPEN)
      conn.ws.send(JSON.stringify(reply));
    after?.();
  }

  #handle(
    conn: Conn,
    method: string,
    p: Record<string, unknown>,
    afterAnswer: (fn: () => void) => void,
  ): unknown {
    if (method === 'system.hello') {
      if (conn.hello) throw new RpcError('INVALID_STATE', 'hello was already said');
      const range = p.protocol as { min: number; max: number };
      if (range.min > 1 || range.max < 1) {
        throw new RpcError('PROTOCOL_MISMATCH', 'no common protocol version', {
          server: { min: 1, max: 1 },
        });
      }
      conn.hello = true;
      return {
        protocol: 1,
        server: { name: 'warden', version: '0.0.0-fake', protocol: { min: 1, max: 1 } },
        connection_id: `conn_${this.#connCount}`,
        principal: { kind: 'token', id: 'tok_admin', name: 'admin' },
        scopes: ['admin'],
        limits: {
          max_frame_bytes: 1_048_576,
          replay_page_size: 1000,
          outbound_high_water_bytes: 8_388_608,
        },
      };
    }
    if (!conn.hello) throw new RpcError('HANDSHAKE_REQUIRED', 'say system.hello first');
    switch (method) {
      case 'system.ping':
        return { now: Date.now() };
      case 'system.status':
        return { connections: this.conns.size };
      case 'session.get':
        throw new RpcError('NOT_FOUND', `session '${String(p.session_id)}' does not exist`, {
          what: 'session',
          id: p.session_id,
        });
      case 'events.subscribe':
        return this.#subscribe(conn, p, afterAnswer);
      case 'events.unsubscribe':
        this.#subs.delete(String(p.subscription_id));
        return { ok: true };
      case 'task.submit':
        return {
          task: this.#public(
            this.submit(String(p.name), p.payload, (p.lane as string) ?? 'default'),
          ),
          deduplicated: false,
        };
      case 'task.get':
        return { task: this.#public(this.#task(p)), attempts: [] };
      case 'task.claim':
        return this.#claim(conn, p);
      case 'task.heartbeat': {
        const task = this.#leased(p);
        task.heartbeats++;
        task.lease_expires_at = Date.now() + Number(p.lease_ms ?? 30_000);
        return { lease_expires_at: task.lease_expires_at };
      }
      case 'task.progress':
        this.#leased(p).progress.push(p.data);
        return { ok: true };
      case 'task.complete': {
        const task = this.#leased(p);
        Object.assign(task, { state: 'succeeded', result: p.result ?? null, token: null });
        return { task: this.#public(task) };
      }
      case 'task.fail': {
        const task = this.#leased(p);
        const error = p.error as { retryable?: boolean };
        const again = error.retryable !== false && task.attempts < task.max_attempts;
        Object.assign(task, {
          state: again ? 'queued' : 'failed',
          last_error: p.error,
          token: null,
        });
        return { task: this.#public(task) };
      }
      case 'task.release': {
        const task = this.#leased(p);
        Object.assign(task, { state: 'queued', token: null, attempts: task.attempts - 1 });
        this.#wakeClaims();
        return { task: this.#public(task) };
      }
    }
    throw new RpcError('NOT_FOUND', `method ${method} not found`);
  }

  #subscribe(conn: Conn, p: Record<string, unknown>, afterAnswer: (fn: () => void) => void) {
    const sessionId = String(p.session_id);
    const fromSeq = Number(p.from_seq ?? 0);
    const pruned = this.pruned.get(sessionId) ?? 0;
    if (fromSeq > 0 && fromSeq < pruned) {
      throw new RpcError('REPLAY_GAP', `events of ${sessionId} up to ${pruned} were pruned`, {
        session_id: sessionId,
        after_seq: fromSeq,
        oldest_seq: pruned + 1,
      });
    }
    const sub: Sub = { id: `sub_${randomUUID()}`, conn, sessionId, cursor: fromSeq };
    this.#subs.set(sub.id, sub);
    if (this.#options.eventsBeforeAnswer) this.#pump(sub);
    else afterAnswer(() => this.#pump(sub));
    return { subscription_id: sub.id, session_id: sessionId, from_seq: fromSeq };
  }

  #pump(sub: Sub): void {
    if (sub.conn.ws.readyState !== WebSocket.OPEN) return;
    for (const event of this.#log(sub.sessionId)) {
      if (event.seq <= sub.cursor) continue;
      if (this.#skipOnce) {
        this.#skipOnce = false;
        continue; // sub.cursor stays behind: this event is never sent on this subscription
      }
      sub.cursor = event.seq;
      this.#notify(sub.conn, 'events.event', { subscription_id: sub.id, event });
    }
  }

  #claim(conn: Conn, p: Record<string, unknown>): unknown {
    const waiter = {
      conn,
      lanes: p.lanes as string[],
      limit: Number(p.limit ?? 1),
      leaseMs: Number(p.lease_ms ?? 30_000),
    };
    const claims = this.#take(waiter);
    const waitMs = Number(p.wait_ms ?? 0);
    if (claims.length > 0 || waitMs === 0) return { claims };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#claimWaiters.delete(parked);
        resolve({ claims: [] });
      }, waitMs);
      const parked: ClaimWaiter = {
        ...waiter,
        answer: (claims) => {
          clearTimeout(timer);
          resolve({ claims });
        },
      };
      this.#claimWaiters.add(parked);
    });
  }

  #take(w: { lanes: string[]; limit: number; leaseMs: number }): unknown[] {
    const claims: unknown[] = [];
    for (const task of this.tasks.values()) {
      if (claims.length >= w.limit) break;
      if (task.state !== 'queued' || !w.lanes.includes(task.lane)) continue;
      task.state = 'running';
      task.attempts++;
      task.token = `att_${randomUUID()}`;
      task.lease_expires_at = Date.now() + w.leaseMs;
      claims.push({
        task: this.#public(task),
        attempt: task.attempts,
        attempt_token: task.token,
        lease_expires_at: task.lease_expires_at,
      });
    }
    return claims;
  }

  #wakeClaims(): void {
    for (const waiter of [...this.#claimWaiters]) {
      if (waiter.conn.ws.readyState !== WebSocket.OPEN) continue;
      const claims = this.#take(waiter);
      if (claims.length === 0) continue;
      this.#claimWaiters.delete(waiter);
      waiter.answer(claims);
    }
  }

  #task(p: Record<string, unknown>): FakeTask {
    const task = this.tasks.get(String(p.task_id));
    if (task === undefined)
      throw new RpcError('NOT_FOUND', `task ${String(p.task_id)} does not exist`);
    return task;
  }

  #leased(p: Record<string, unknown>): FakeTask {
    const task = this.#task(p);
    if (task.token === null || task.token !== p.attempt_token) {
      throw new RpcError('LEASE_LOST', `task ${task.id} is not running under this lease`, {
        task_id: task.id,
      });
    }
    return task;
  }

  #public(task: FakeTask): Record<string, unknown> {
    const { token: _token, heartbeats: _h, progress: _p, ...rest } = task;
    return rest;
  }

  #log(sessionId: string): FakeEvent[] {
    let log = this.log.get(sessionId);
    if (log === undefined) this.log.set(sessionId, (log = []));
    return log;
  }

  #notify(conn: Conn, method: string, params: unknown): void {
    if (conn.ws.readyState === WebSocket.OPEN)
      conn.ws.send(JSON.stringify({ jsonrpc: '2.0', method, params }));
  }
}
