/**
 * The daemon in a child process (forked with IPC by run.ts), as bench/acp/host.ts runs it: the
 * same `Daemon.start` that `warden serve` runs, with the settings `warden serve` derives from
 * the home's config.yaml (gRPC on). Every method of the daemon's store is wrapped to count its
 * calls, so the benchmark can say how many store reads and transactions one step of each
 * variant makes: a number that does not depend on the machine's load, unlike the timings.
 *
 * Messages: `{cmd: 'reset'}` zeroes the counts, `{cmd: 'counts'}` answers them, `{cmd: 'stop'}`.
 * Counts cover calls made through the store object the daemon holds (the kernel, queue, workers
 * and protocol layers); the heartbeat thread's own connection is not in them.
 */
import { daemonSettings } from '../../src/cli/commands/serve.ts';
import { loadConfig } from '../../src/cli/config.ts';
import { Daemon } from '../../src/daemon/index.ts';
import { createLogger } from '../../src/protocols/http/index.ts';
import { ensureAdminToken } from '../../src/security/index.ts';

export type CountCommand = { cmd: 'reset' } | { cmd: 'counts' } | { cmd: 'stop' };
export interface CountHostReady {
  readonly ready: string;
  readonly grpcPort: number;
  readonly token: string;
}

const home = process.env.WARDEN_HOME!;
const config = loadConfig({ home });
const settings = daemonSettings(config, { listen: '127.0.0.1:0' });
const logger = createLogger({ level: 'warn', base: { pid: process.pid } });
const admin = ensureAdminToken(config.home);
const daemon = await Daemon.start({
  settings,
  logger,
  version: 'bench',
  adminToken: () => admin.token,
});

const counts = new Map<string, number>();
const store = daemon.store as unknown as Record<string, unknown>;
// Own properties shadow the prototype's methods on the very object every layer holds; the
// originals run with the store as `this`, so its #private fields stay reachable.
for (
  let proto = Object.getPrototypeOf(store) as object | null;
  proto && proto !== Object.prototype;
  proto = Object.getPrototypeOf(proto) as object | null
) {
  for (const name of Object.getOwnPropertyNames(proto)) {
    const original = store[name];
    if (name === 'constructor' || typeof original !== 'function' || Object.hasOwn(store, name))
      continue;
    store[name] = function (this: unknown, ...args: unknown[]) {
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return (original as (...a: unknown[]) => unknown).apply(daemon.store, args);
    };
  }
}

process.on('message', (msg: CountCommand) => {
  if (msg.cmd === 'reset') {
    counts.clear();
    process.send!({ ok: true });
  } else if (msg.cmd === 'counts') {
    process.send!({ counts: Object.fromEntries(counts) });
  } else {
    void daemon.stop('bench').then(() => process.exit(0));
  }
});
process.send!({
  ready: daemon.url,
  grpcPort: daemon.grpcPort ?? 0,
  token: admin.token,
} satisfies CountHostReady);
