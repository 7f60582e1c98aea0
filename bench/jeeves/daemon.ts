/**
 * A `warden serve` child with its gRPC listener on: a home made by `warden init` (embedded
 * SQLite, `durability: fast`, the defaults), plus `server.grpc.listen: 127.0.0.1:0` and
 * `server.grpc.anonymous` so the jeeves client can call without a token, as the original
 * Python client does. Started by bench/acp/daemon.ts (the same spawn and `ready` line).
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { type Daemon, initHome, startDaemon } from '../acp/daemon.ts';

export interface GrpcDaemon {
  readonly daemon: Daemon;
  /** host:port of the gRPC listener. */
  readonly grpcAddress: string;
  /** The home's config.yaml as the daemon read it (for the report). */
  readonly config: string;
}

export const ANONYMOUS_USER = 'jeeves-bench';

/** `warden init`, then the gRPC listener turned on in the home's config.yaml. */
export function initGrpcHome(home: string): void {
  initHome(home);
  appendFileSync(
    join(home, 'config.yaml'),
    `\nserver:\n  grpc:\n    listen: 127.0.0.1:0\n    anonymous: ${ANONYMOUS_USER}\n`,
  );
}

export async function startGrpcDaemon(
  home: string,
  options: { nodeOptions?: string } = {},
): Promise<GrpcDaemon> {
  initGrpcHome(home);
  // NODE_OPTIONS reaches the child through bench/acp/daemon.ts's env (process.env + home): the
  // profiled round passes --cpu-prof this way.
  const saved = process.env.NODE_OPTIONS;
  if (options.nodeOptions !== undefined) process.env.NODE_OPTIONS = options.nodeOptions;
  let daemon: Daemon;
  try {
    daemon = await startDaemon(home);
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
  const line = daemon.logs.find((l) => l.msg === 'gRPC listening');
  if (!line || typeof line.port !== 'number') {
    await daemon.stop();
    throw new Error('warden serve did not log "gRPC listening" before "ready"');
  }
  return {
    daemon,
    grpcAddress: `127.0.0.1:${String(line.port)}`,
    config: readFileSync(join(home, 'config.yaml'), 'utf8'),
  };
}
