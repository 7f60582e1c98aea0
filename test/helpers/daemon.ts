/**
 * A real `warden serve` in a child process, on a free port: tests talk to it over real sockets.
 * The daemon's JSON log lines are kept; `ready` is read from them (it carries the URL).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { spawnCli } from './cli.ts';

export interface DaemonProcess {
  readonly child: ChildProcess;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** ws://127.0.0.1:<port>/acp */
  readonly acpUrl: string;
  readonly port: number;
  /** The admin token from auth.token. */
  readonly token: string;
  /** Every JSON log line so far (stdout). */
  readonly logs: Array<Record<string, unknown>>;
  /** Raw stdout + stderr so far. */
  output(): string;
  /** Sends a signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startDaemon(
  home: string,
  options: {
    listen?: string;
    args?: readonly string[];
    env?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<DaemonProcess> {
  const child = spawnCli(
    ['serve', '--listen', options.listen ?? '127.0.0.1:0', ...(options.args ?? [])],
    {
      home,
      ...(options.env ? { env: options.env } : {}),
    },
  );
  child.stdin!.end();
  const logs: Array<Record<string, unknown>> = [];
  let raw = '';
  let pending = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`warden serve did not get ready:\n${raw}`)),
      options.timeoutMs ?? 30_000,
    );
    child.stdout!.on('data', (d: Buffer) => {
      raw += d.toString();
      pending += d.toString();
      let nl;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'ready' && typeof entry.url === 'string') {
            clearTimeout(timer);
            resolve(entry.url);
          }
        } catch {
          // not a log line
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (raw += d.toString()));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`warden serve exited (${code ?? signal}) before it was ready:\n${raw}`));
    });
  });
  const url = await ready;
  const port = Number(new URL(url).port);
  return {
    child,
    url,
    acpUrl: `${url.replace(/^http/, 'ws')}/acp`,
    port,
    token: readFileSync(join(home, 'auth.token'), 'utf8').trim(),
    logs,
    output: () => raw,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
