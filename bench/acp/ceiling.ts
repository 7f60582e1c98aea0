/**
 * The ceiling: a plain `ws` server (forked by run.ts) that sends one client pre-serialised
 * `events.event` frames — a frame Warden really sent, with its seq rewritten, so the JSON is the
 * same size — as fast as it can, with the flow control of Warden's replay: pages of
 * `pageSize` frames, and before the next page a wait until `bufferedAmount` is at most a quarter
 * of the high-water mark (checked after 1 ms, then every 5 ms). No database, no JSON work.
 * With `cork`, each page is written between `socket.cork()` and `uncork()`, so the kernel gets
 * a page in a few large writes instead of one write per frame: what batching could gain.
 */
import { WebSocketServer } from 'ws';

export interface CeilingConfig {
  readonly sample: string;
  readonly sampleSeq: number;
  readonly total: number;
  readonly pageSize: number;
  readonly highWaterBytes: number;
  readonly cork: boolean;
}

const config = await new Promise<CeilingConfig>((resolve) =>
  process.once('message', (m) => resolve(m as CeilingConfig)),
);
const seqText = `"seq":${config.sampleSeq},`;
if (!config.sample.includes(seqText)) throw new Error('the sample frame has no seq to rewrite');
const [head, tail] = [
  config.sample.slice(0, config.sample.indexOf(seqText)),
  config.sample.slice(config.sample.indexOf(seqText) + seqText.length),
];
const frames = Array.from({ length: config.total }, (_, i) => `${head}"seq":${i + 1},${tail}`);
const low = config.highWaterBytes / 4;

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (ws) => {
  const flushed = () =>
    new Promise<void>((resolve) => {
      const check = () => (ws.bufferedAmount <= low ? resolve() : setTimeout(check, 5));
      setTimeout(check, 1);
    });
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString()) as { id: number; method: string };
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {} }));
    if (msg.method !== 'events.subscribe') return;
    setImmediate(() => {
      void (async () => {
        for (let i = 0; i < frames.length; i += config.pageSize) {
          const end = Math.min(frames.length, i + config.pageSize);
          // ws keeps its socket in `_socket` (not in its types).
          const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
          if (config.cork) socket.cork();
          for (let k = i; k < end; k++) ws.send(frames[k]!);
          if (config.cork) socket.uncork();
          if (ws.bufferedAmount > low) await flushed();
        }
      })();
    });
  });
});
wss.on('listening', () => process.send!({ port: (wss.address() as { port: number }).port }));
process.on('message', () => wss.close(() => process.exit(0)));
