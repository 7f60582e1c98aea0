/**
 * `warden serve` as a child process, as test/helpers/daemon.ts starts it: a home made by
 * `warden init`, `serve --listen`, JSON log lines on stdout, `{"msg":"ready","url":…}` once it
 * serves. Cold-start clocks: spawn → the `ready` line, and spawn → the first `/readyz` 200 (polled
 * on a port chosen beforehand, since the port is otherwise known only from the `ready` line).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { repoDir } from '../shared/machine.ts';

export type Entry = 'source' | 'built';

/** The CLI entry of each build: the TypeScript sources (type stripping) or dist/. */
export const ENTRIES: Record<Entry, string> = {
  source: join(repoDir, 'src/cli/main.ts'),
  built: join(repoDir, 'dist/cli/warden.js'),
};

export function builtAvailable(): boolean {
  return existsSync(ENTRIES.built);
}

export function env(home: string): NodeJS.ProcessEnv {
  return { ...process.env, WARDEN_HOME: home, NO_COLOR: '1' };
}

/** `warden init` (untimed): config, token and an empty database. */
export function initHome(home: string): void {
  execFileSync(process.execPath, [ENTRIES.source, 'init'], {
    cwd: repoDir,
    env: env(home),
    stdio: 'ignore',
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Daemon {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
  readonly acpUrl: string;
  readonly token: string;
  /** spawn → the `ready` log line, ms. */
  readonly readyLogMs: number;
  /** spawn → the first log line (`config loaded`, after every module is loaded), by the wall
   *  clock: the log lines carry `time` in ms since the epoch. */
  readonly firstLogMs: number;
  /** The daemon's own start: first log line → `ready` line, by their `time` fields. */
  readonly startPhasesMs: number;
  /** spawn → first `/readyz` 200, ms (only with `pollReadyz`). */
  readonly readyzMs?: number;
  /** Every JSON log line so far. */
  readonly logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

function readyz(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

export async function startDaemon(
  home: string,
  options: { entry?: Entry; pollReadyz?: boolean; timeoutMs?: number } = {},
): Promise<Daemon> {
  const port = options.pollReadyz ? await freePort() : 0;
  const t0 = performance.now();
  const wall0 = Date.now();
  const child = spawn(
    process.execPath,
    [ENTRIES[options.entry ?? 'source'], 'serve', '--listen', `127.0.0.1:${port}`],
    { cwd: repoDir, env: env(home), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: Array<Record<string, unknown>> = [];
  let raw = '';
  let pending = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<{ url: string; ms: number }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`warden serve did not get ready:\n${raw}`)),
      options.timeoutMs ?? 30_000,
    );
    child.stdout!.on('data', (d: Buffer) => {
      const now = performance.now();
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
            resolve({ url: entry.url, ms: now - t0 });
          }
        } catch {
          // not a log line
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (raw += d.toString()));
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`warden serve exited before it was ready:\n${raw}`));
    });
  });
  let readyzMs: number | undefined;
  if (options.pollReadyz) {
    // Polls every 2 ms from the spawn on: connection refused until it listens, 503 until ready.
    let gaveUp = false;
    void ready.catch(() => (gaveUp = true));
    while (!gaveUp) {
      const status = await readyz(port);
      if (status === 200) {
        readyzMs = performance.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  const { url, ms } = await ready;
  return {
    child,
    pid: child.pid!,
    url,
    acpUrl: `${url.replace(/^http/, 'ws')}/acp`,
    token: readFileSync(join(home, 'auth.token'), 'utf8').trim(),
    readyLogMs: ms,
    firstLogMs: Number(logs[0]?.time) - wall0,
    startPhasesMs: Number(logs.find((l) => l.msg === 'ready')?.time) - Number(logs[0]?.time),
    ...(readyzMs === undefined ? {} : { readyzMs }),
    logs,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc/<pid>/stat. */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the state field;
  // clock ticks of 1/100 s on Linux (getconf CLK_TCK).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** VmRSS and its parts from /proc/<pid>/status, in MiB. */
export function rss(pid: number): { vmRss: number; rssAnon: number; rssFile: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return {
    vmRss: kb('VmRSS') / 1024,
    rssAnon: kb('RssAnon') / 1024,
    rssFile: kb('RssFile') / 1024,
  };
}
