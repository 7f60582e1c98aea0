/** Runs the real `warden` CLI in a child process (Node strips the TypeScript types). */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Kernel } from '../../src/kernel/index.ts';
import { openSqliteStore, type Store } from '../../src/store/index.ts';

export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  readonly home: string;
  readonly input?: string;
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
  /** Run the CLI as this user, with a Node binary it can execute (see unprivileged.ts). */
  readonly user?: {
    readonly uid: number;
    readonly gid: number;
    readonly node: string;
    /** The checkout to run the CLI from (a copy this user can read, or the repository). */
    readonly root: string;
  };
}

export function spawnCli(args: readonly string[], options: CliOptions): ChildProcess {
  const user = options.user;
  return spawn(
    user?.node ?? process.execPath,
    [user ? join(user.root, 'src/cli/main.ts') : CLI, ...args],
    {
      cwd: user?.root ?? REPO,
      env: { ...process.env, WARDEN_HOME: options.home, NO_COLOR: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    },
  );
}

export function runCli(args: readonly string[], options: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, options);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin!.end(options.input ?? '');
  });
}

/** Parses the JSON a `--json` command printed on stdout. */
export function json<T = unknown>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`expected JSON on stdout, got:\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}

/**
 * `warden init` in `home`, then the store and a kernel on its database in this process: a test
 * drives runs here while the CLI under test works on the same database from another process.
 */
export async function initHomeWithKernel(
  home: string,
): Promise<{ store: Store; kernel: Kernel; close(): Promise<void> }> {
  const init = await runCli(['init'], { home });
  if (init.code !== 0) throw new Error(`warden init failed:\n${init.stderr}`);
  const store = await openSqliteStore({ file: join(home, 'warden.db') });
  const kernel = new Kernel({ store });
  return {
    store,
    kernel,
    close: async () => {
      kernel.close();
      await store.close();
    },
  };
}
