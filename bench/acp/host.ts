/**
 * The daemon in a child process with an in-process producer beside it (forked with IPC by
 * run.ts): the same `Daemon.start` that `warden serve` runs, with the settings `warden serve`
 * derives from the home's config.yaml. On `{cmd: 'produce'}` it appends events to a session with
 * `daemon.store.commit` from the daemon's own process, so subscribers get them through the
 * event pump's in-memory fast path (a commit by this process, sent from `onCommit`), not a
 * store read. Between commits the producer yields to the event loop (setImmediate), as any
 * producer inside the daemon (kernel, queue) does between its commits.
 */
import { daemonSettings } from '../../src/cli/commands/serve.ts';
import { loadConfig } from '../../src/cli/config.ts';
import { Daemon } from '../../src/daemon/index.ts';
import { createLogger } from '../../src/protocols/http/index.ts';
import { ensureAdminToken } from '../../src/security/index.ts';

export interface ProduceCommand {
  readonly cmd: 'produce';
  readonly sessionId: string;
  readonly total: number;
  readonly batch: number;
}

const PAD = 'x'.repeat(64);
const home = process.env.WARDEN_HOME!;
const config = loadConfig({ home });
const settings = daemonSettings(config, { listen: '127.0.0.1:0' });
const logger = createLogger({ level: settings.server.log_level, base: { pid: process.pid } });
const admin = ensureAdminToken(config.home);
const daemon = await Daemon.start({
  settings,
  logger,
  version: 'bench',
  adminToken: () => admin.token,
});

process.on('message', (msg: ProduceCommand | { cmd: 'stop' } | { cmd: 'memory' }) => {
  if (msg.cmd === 'stop') {
    void daemon.stop('bench').then(() => process.exit(0));
    return;
  }
  if (msg.cmd === 'memory') {
    process.send!({ memory: process.memoryUsage() });
    return;
  }
  void (async () => {
    const t0 = performance.now();
    for (let i = 0; i < msg.total; i += msg.batch) {
      const n = Math.min(msg.batch, msg.total - i);
      await daemon.store.commit(
        Array.from({ length: n }, (_, k) => ({
          op: 'event' as const,
          event: {
            session_id: msg.sessionId,
            type: 'task.progress' as const,
            trace_id: 'tr_bench',
            data: { k: i + k, pad: PAD },
          },
        })),
      );
      await new Promise((resolve) => setImmediate(resolve));
    }
    process.send!({ produced: msg.total, seconds: (performance.now() - t0) / 1000 });
  })();
});
process.send!({ ready: daemon.url, token: admin.token, durability: settings.durability });
