/**
 * Several `warden serve` nodes sharing one PostgreSQL schema, with no other coordinator
 * (docs/scale-out.md): each node has its own home (config.yaml naming the same `store:` URL, its
 * own fixed listen port so it comes back on the same URL after a kill) and all homes share one
 * admin token, so a client can move from node to node with the same credentials.
 *
 * Also here: restarting the local PostgreSQL server (only the multi-node chaos test may do it).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { runCli } from './cli.ts';
import { type DaemonProcess, startDaemon } from './daemon.ts';
import { pgQuery } from './postgres.ts';
import { tempDir } from './tmp.ts';
import { sleep } from './wait.ts';

const exec = promisify(execFile);

export interface ClusterNodeOptions {
  /** Extra environment of this node's daemon (e.g. WARDEN_TEST_CLOCK_SKEW_MS). */
  readonly env?: Record<string, string>;
}

export interface ClusterOptions {
  /** The store every node names: `postgres://…?schema=…`, or a shared SQLite file's path. */
  readonly storeUrl: string;
  readonly nodes: number | readonly ClusterNodeOptions[];
  /** Extra config.yaml text (YAML, top-level keys other than store/server). */
  readonly configYaml?: string;
  /** `postgres.pool_size` of each node. @default 4 */
  readonly poolSize?: number;
}

export interface ClusterNode {
  readonly index: number;
  readonly home: string;
  readonly listen: string;
  /** ws://…/acp: the same across restarts. */
  readonly acpUrl: string;
  readonly env: Record<string, string>;
  /** The running daemon, or null while the node is down. */
  daemon: DaemonProcess | null;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class PgCluster {
  readonly nodes: ClusterNode[];
  readonly token: string;
  readonly tokenFile: string;

  private constructor(nodes: ClusterNode[], token: string) {
    this.nodes = nodes;
    this.token = token;
    this.tokenFile = join(nodes[0]!.home, 'auth.token');
  }

  /** Creates the homes (`warden init` on each, against the shared store); starts nothing. */
  static async create(options: ClusterOptions): Promise<PgCluster> {
    const specs: readonly ClusterNodeOptions[] =
      typeof options.nodes === 'number'
        ? Array.from({ length: options.nodes }, () => ({}))
        : options.nodes;
    const nodes: ClusterNode[] = [];
    for (const [index, spec] of specs.entries()) {
      const home = tempDir(`warden-node${index}-`);
      mkdirSync(home, { recursive: true, mode: 0o700 });
      const listen = `127.0.0.1:${await freePort()}`;
      writeFileSync(
        join(home, 'config.yaml'),
        [
          ...(options.storeUrl.startsWith('postgres')
            ? [
                `store: '${options.storeUrl}'`,
                'postgres:',
                `  pool_size: ${options.poolSize ?? 4}`,
                // Long enough to ride out a PostgreSQL restart (a few seconds) without failing calls.
                '  retry: 60s',
              ]
            : // A shared SQLite file (one machine): the same harness on the embedded store.
              [`database: '${options.storeUrl}'`]),
          'server:',
          `  listen: '${listen}'`,
          '  log_level: info',
          '  shutdown_grace: 2s',
          options.configYaml ?? '',
        ].join('\n'),
        { mode: 0o600 },
      );
      // Sequential: the first init migrates the schema, the others find it ready.
      const init = await runCli(['init'], { home });
      if (init.code !== 0) throw new Error(`warden init (node ${index}) failed:\n${init.stderr}`);
      nodes.push({
        index,
        home,
        listen,
        acpUrl: `ws://${listen}/acp`,
        env: { ...spec.env },
        daemon: null,
      });
    }
    // One admin token for every node (each home's auth.token), so clients can fail over.
    const token = `chaos-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    for (const node of nodes) writeFileSync(join(node.home, 'auth.token'), `${token}\n`);
    return new PgCluster(nodes, token);
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.acpUrl);
  }

  /** Starts the node's daemon, retrying while it cannot start (PostgreSQL restarting, port in TIME_WAIT). */
  async start(index: number, timeoutMs = 90_000): Promise<DaemonProcess> {
    const node = this.nodes[index]!;
    if (node.daemon) throw new Error(`node ${index} is already running`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        node.daemon = await startDaemon(node.home, {
          listen: node.listen,
          env: node.env,
          timeoutMs: 60_000,
        });
        return node.daemon;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(500);
      }
    }
  }

  async startAll(): Promise<void> {
    for (const node of this.nodes) await this.start(node.index);
  }

  /** SIGKILLs the node's daemon and waits until the process is gone. */
  async kill(index: number): Promise<void> {
    const node = this.nodes[index]!;
    const daemon = node.daemon;
    node.daemon = null;
    if (daemon) await daemon.stop('SIGKILL');
  }

  async stopAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        const daemon = node.daemon;
        node.daemon = null;
        await daemon?.stop(signal);
      }),
    );
  }

  /** `warden <args>` on a node's home (the CLI opens the shared store directly). */
  cli(args: readonly string[], index = 0) {
    return runCli(args, { home: this.nodes[index]!.home, timeoutMs: 180_000 });
  }
}

/**
 * Restarts the local PostgreSQL cluster (`pg_ctlcluster <version> <name> restart -m fast`: every
 * connection is cut) and waits until it accepts connections again. Returns how long the server
 * was unavailable to this process (ms).
 */
export async function restartPostgres(): Promise<number> {
  const { stdout } = await exec('pg_lsclusters', ['--no-header']);
  const line = stdout.split('\n').find((l) => /\bonline\b/.test(l));
  if (!line) throw new Error(`no online PostgreSQL cluster in pg_lsclusters:\n${stdout}`);
  const [version, name] = line.trim().split(/\s+/) as [string, string];
  const started = Date.now();
  await exec('pg_ctlcluster', [version, name, 'restart', '-m', 'fast']);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await pgQuery('SELECT 1');
      return Date.now() - started;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}
