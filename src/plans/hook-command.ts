/**
 * Runs one hook command as the kit's ShellAgent does (reference A.6): argv without a shell, in
 * `cwd` relative to the directory `warden exec` runs in, its log `$ <argv>\n` + stdout +
 * (`\n[stderr]\n` + stderr when there is any). Unlike the kit, output streams to the log file
 * instead of memory (A.8 #12), a timeout can end it, and its whole process group is stopped on
 * timeout or cancel. Warden's own credentials are not passed on.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

import { WardenError } from '../core/index.ts';
import { commandLogHeader } from '../core/plan/index.ts';

export interface HookCommandOutcome {
  readonly rc: number | null;
  readonly log: string | null;
  readonly error: string | null;
  /** sha256 of the log file, when there is one. */
  readonly sha256: string | null;
  /** How long it ran (0 when it did not start). */
  readonly duration_ms: number;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
const KILL_GRACE_MS = 2_000;

/** The environment a hook command gets: this one, without Warden's secrets and tokens. */
export function hookEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env))
    if (!k.startsWith('WARDEN_SECRET_') && k !== 'WARDEN_TOKEN') out[k] = v;
  return out;
}

/** Python's `str(e)` for a missing file, so error records read like the kit's. */
function missing(path: string): string {
  return `[Errno 2] No such file or directory: '${path}'`;
}

export async function runHookCommand(
  argv: readonly string[],
  cwd: string | null,
  logPath: string,
  options: {
    readonly timeoutMs: number | null;
    /** The record's error when the timeout stops it (default `timed out after N s`). */
    readonly timeoutMessage?: string;
    readonly signal: AbortSignal;
  },
): Promise<HookCommandOutcome> {
  const dir = resolve(cwd ?? '.');
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    return { rc: null, log: null, error: missing(cwd ?? '.'), sha256: null, duration_ms: 0 };
  if (options.signal.aborted) throw canceled(options.signal);
  const errPath = `${logPath}.stderr`;
  const logFd = openSync(logPath, 'w');
  const errFd = openSync(errPath, 'w');
  writeSync(logFd, commandLogHeader(argv));
  let timedOut = false;
  const startedAt = performance.now();
  const outcome = await new Promise<{ code: number | null; signal: string | null } | Error>(
    (done) => {
      const child = spawn(argv[0]!, argv.slice(1), {
        cwd: dir,
        env: hookEnv(),
        stdio: ['ignore', logFd, errFd],
        detached: true, // its own process group: a timeout or cancel stops everything it started
      });
      const killGroup = (signal: NodeJS.Signals): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, signal);
        } catch {
          // already gone
        }
      };
      let grace: NodeJS.Timeout | undefined;
      const stop = (): void => {
        killGroup('SIGTERM');
        grace = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
        grace.unref();
      };
      const timer =
        options.timeoutMs === null
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              stop();
            }, options.timeoutMs);
      options.signal.addEventListener('abort', stop, { once: true });
      child.once('error', (error) => {
        clearTimeout(timer);
        options.signal.removeEventListener('abort', stop);
        done(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        clearTimeout(grace);
        options.signal.removeEventListener('abort', stop);
        done({ code, signal });
      });
    },
  );
  try {
    if (outcome instanceof Error) {
      // The kit writes no log for a command that could not start.
      closeSync(logFd);
      rmSync(logPath, { force: true });
      const code = (outcome as NodeJS.ErrnoException).code;
      return {
        rc: null,
        log: null,
        error: code === 'ENOENT' ? missing(argv[0]!) : outcome.message,
        sha256: null,
        duration_ms: 0,
      };
    }
    const stderr = readFileSync(errPath);
    if (stderr.length > 0) {
      writeSync(logFd, '\n[stderr]\n');
      writeSync(logFd, stderr);
    }
    closeSync(logFd);
    if (options.signal.aborted && !timedOut) throw canceled(options.signal);
    const rc = outcome.code ?? -(SIGNALS[outcome.signal ?? ''] ?? 1);
    const sha256 = createHash('sha256').update(readFileSync(logPath)).digest('hex');
    return {
      rc,
      log: logPath,
      error: timedOut
        ? (options.timeoutMessage ?? `timed out after ${(options.timeoutMs ?? 0) / 1000} s`)
        : null,
      sha256,
      duration_ms: Math.round(performance.now() - startedAt),
    };
  } finally {
    closeSync(errFd);
    rmSync(errPath, { force: true });
  }
}

function canceled(signal: AbortSignal): WardenError {
  const reason: unknown = signal.reason;
  return reason instanceof WardenError
    ? reason
    : new WardenError('CANCELED', 'the command was canceled');
}
