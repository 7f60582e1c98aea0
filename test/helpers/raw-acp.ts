/** A bare JSON-RPC-over-WebSocket peer for protocol tests (no client library in between). */
import WebSocket from 'ws';

export interface RawPeer {
  readonly ws: WebSocket;
  /** Sends a request and resolves with the whole response frame. */
  call(method: string, params?: unknown): Promise<RpcFrame>;
  /** Sends raw text and resolves with the next frame that is not a notification. */
  sendRaw(text: string | Buffer, binary?: boolean): Promise<RpcFrame>;
  readonly notifications: RpcFrame[];
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export interface RpcFrame {
  jsonrpc?: string;
  id?: string | number | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown> & { [k: string]: unknown };
  error?: {
    code: number;
    message: string;
    data?: {
      code: string;
      retryable: boolean;
      details?: Record<string, unknown>;
      retry_after_ms?: number;
    };
  };
}

/** HTTP status of a refused upgrade, or 101 when the socket opened. */
export function upgradeStatus(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101, body: '' });
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('error', (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

export async function connectRaw(
  url: string,
  token: string | null,
  options: { hello?: boolean; maxPayload?: number } = {},
): Promise<RawPeer> {
  const ws = new WebSocket(url, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    maxPayload: options.maxPayload ?? 256 * 1024 * 1024,
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const waiting = new Map<string | number | null, (f: RpcFrame) => void>();
  const anyWaiters: Array<(f: RpcFrame) => void> = [];
  const notifications: RpcFrame[] = [];
  ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString()) as RpcFrame;
    if (frame.method !== undefined && frame.id === undefined) {
      notifications.push(frame);
      return;
    }
    const key = frame.id ?? null;
    const w = waiting.get(key);
    if (w) {
      waiting.delete(key);
      w(frame);
    } else anyWaiters.shift()?.(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  let next = 1;
  const peer: RawPeer = {
    ws,
    notifications,
    closed,
    close: () => ws.close(),
    call: (method, params) =>
      new Promise((resolve) => {
        const id = next++;
        waiting.set(id, resolve);
        ws.send(
          JSON.stringify({
            jsonrpc: '2.0',
            id,
            method,
            ...(params === undefined ? {} : { params }),
          }),
        );
      }),
    sendRaw: (text, binary = false) =>
      new Promise((resolve) => {
        anyWaiters.push(resolve);
        ws.send(text, { binary });
      }),
  };
  if (options.hello !== false) {
    const hello = await peer.call('system.hello', {
      protocol: { min: 1, max: 1 },
      client: { name: 'test' },
    });
    if (hello.error) throw new Error(`hello failed: ${JSON.stringify(hello.error)}`);
  }
  return peer;
}
