/**
 * A raw `ws` ACP client with as little work per frame as a real consumer can do: every frame is
 * JSON-parsed and every event's seq checked against the previous one (gaps and duplicates
 * counted). Requests are matched to answers by id; nothing else is kept.
 */
import WebSocket from 'ws';

export interface RawAcp {
  readonly ws: WebSocket;
  call(method: string, params: unknown): Promise<Record<string, unknown>>;
  close(): Promise<void>;
  /** Called for every notification (after JSON.parse). */
  onNotification:
    ((msg: { method: string; params: Record<string, unknown> }, raw: Buffer) => void) | null;
  /** Close code and reason once closed. */
  closed: { code: number; reason: string } | null;
}

export async function connectRaw(
  url: string,
  token: string,
  options: { hello?: boolean } = {},
): Promise<RawAcp> {
  const ws = new WebSocket(url, {
    headers: { Authorization: `Bearer ${token}` },
    perMessageDeflate: false,
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let nextId = 0;
  const pending = new Map<
    number,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  const acp: RawAcp = {
    ws,
    onNotification: null,
    closed: null,
    call(method, params) {
      const id = ++nextId;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      });
    },
    close() {
      if (ws.readyState === ws.CLOSED) return Promise.resolve();
      return new Promise((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1000);
        setTimeout(() => ws.terminate(), 1_000).unref();
      });
    },
  };
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString()) as {
      id?: number;
      method?: string;
      params?: Record<string, unknown>;
      result?: Record<string, unknown>;
      error?: { message: string; data?: { code?: string } };
    };
    if (msg.id !== undefined && msg.method === undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error)
        p?.reject(new Error(`${msg.error.data?.code ?? 'ERROR'}: ${msg.error.message}`));
      else p?.resolve(msg.result ?? {});
    } else if (msg.method)
      acp.onNotification?.({ method: msg.method, params: msg.params ?? {} }, data);
  });
  ws.on('close', (code, reason) => {
    acp.closed = { code, reason: reason.toString() };
    for (const p of pending.values()) p.reject(new Error(`closed ${code}`));
    pending.clear();
  });
  ws.on('error', () => undefined);
  if (options.hello ?? true)
    await acp.call('system.hello', {
      protocol: { min: 1, max: 1 },
      client: { name: 'bench-acp', version: '0' },
    });
  return acp;
}

export interface StreamResult {
  /** Events received (gaps and duplicates included). */
  readonly received: number;
  readonly gaps: number;
  readonly duplicates: number;
  /** performance.now() of the first and the last event. */
  readonly firstAt: number;
  readonly lastAt: number;
  readonly frameBytes: number;
  /** One frame as received (for the ceiling server), the one of seq sampleSeq. */
  readonly sample?: string;
  readonly closed: { code: number; reason: string } | null;
  readonly backpressure: boolean;
  readonly timedOut: boolean;
}

/**
 * Subscribes to a session from `fromSeq` and counts events until seq `lastSeq` has arrived (or
 * the connection closes, or `timeoutMs` passes). `onSubscribed` runs once the subscription is
 * confirmed (to start a producer). Resolves with the counts and the clock readings.
 */
export async function stream(
  acp: RawAcp,
  options: {
    sessionId: string;
    fromSeq: number;
    lastSeq: number;
    timeoutMs: number;
    onSubscribed?: () => void;
    sampleSeq?: number;
  },
): Promise<StreamResult & { subscribeSentAt: number }> {
  let last = options.fromSeq;
  let received = 0;
  let gaps = 0;
  let duplicates = 0;
  let firstAt = 0;
  let lastAt = 0;
  let frameBytes = 0;
  let sample: string | undefined;
  let backpressure = false;
  let finish!: (timedOut: boolean) => void;
  const done = new Promise<boolean>((resolve) => (finish = resolve));
  acp.onNotification = (msg, raw) => {
    if (msg.method === 'system.backpressure') backpressure = true;
    if (msg.method !== 'events.event') return;
    const seq = (msg.params.event as { seq: number }).seq;
    const now = performance.now();
    if (received === 0) firstAt = now;
    lastAt = now;
    received++;
    frameBytes += raw.length;
    if (seq === options.sampleSeq) sample = raw.toString();
    if (seq <= last) duplicates++;
    else {
      if (seq !== last + 1) gaps += seq - last - 1;
      last = seq;
    }
    if (last >= options.lastSeq) finish(false);
  };
  acp.ws.once('close', () => finish(false));
  const timer = setTimeout(() => finish(true), options.timeoutMs);
  const subscribeSentAt = performance.now();
  await acp.call('events.subscribe', { session_id: options.sessionId, from_seq: options.fromSeq });
  options.onSubscribed?.();
  const timedOut = await done;
  clearTimeout(timer);
  acp.onNotification = null;
  return {
    subscribeSentAt,
    received,
    gaps: gaps + Math.max(0, options.lastSeq - last),
    duplicates,
    firstAt,
    lastAt,
    frameBytes: received ? frameBytes / received : 0,
    ...(sample === undefined ? {} : { sample }),
    closed: acp.closed,
    backpressure,
    timedOut,
  };
}
