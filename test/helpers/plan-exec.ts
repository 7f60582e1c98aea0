/**
 * `warden exec` (the NOA task kit's `run`) as a user meets it: the real CLI in a child process,
 * in a working directory of its own (plan paths are relative to it), with a Warden home whose
 * store the test reads afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { type RunSummary, runSummarySchema } from '../../src/core/plan/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import type { CliResult } from './cli.ts';
import { tempDir } from './tmp.ts';

/** The `warden` executable's entry (it checks the Node version, then loads the CLI). */
export const WARDEN = fileURLToPath(new URL('../../src/cli/warden.ts', import.meta.url));

/** A working directory and a Warden home for one scenario. */
export interface Workspace {
  readonly cwd: string;
  readonly home: string;
}

export function workspace(): Workspace {
  const cwd = tempDir('warden-exec-');
  return { cwd, home: join(cwd, 'home') };
}

export function spawnWarden(ws: Workspace, args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [WARDEN, ...args], {
    cwd: ws.cwd,
    env: { ...process.env, WARDEN_HOME: ws.home, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Collects a spawned CLI's output until it exits (SIGKILL after `timeoutMs`). */
export function collect(child: ChildProcess, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export function warden(ws: Workspace, args: readonly string[], timeoutMs?: number) {
  return collect(spawnWarden(ws, args), timeoutMs);
}

/** Writes `file` (relative to the workspace), making its directory. */
export function writeFile(ws: Workspace, file: string, content: string): string {
  const path = join(ws.cwd, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return path;
}

export function writeJson(ws: Workspace, file: string, value: unknown): void {
  writeFile(ws, file, JSON.stringify(value, null, 2));
}

/** A plan v1 with these queues (name → task ids). */
export function planOf(queues: Record<string, readonly string[]>): unknown {
  return {
    version: 1,
    source: 'sot.md',
    generated_at: '2025-10-01T22:05:55.307258Z',
    queues: Object.entries(queues).map(([name, ids]) => ({
      name,
      tasks: ids.map((id) => ({ id, title: id, layer: 'foundation' })),
    })),
  };
}

/** `<home>/policy.yaml` allowing hook commands for every plan task (`agent:plan/<id>`). */
export function allowCommands(ws: Workspace, commands: readonly string[]): void {
  mkdirSync(ws.home, { recursive: true });
  writeFileSync(
    join(ws.home, 'policy.yaml'),
    [
      'version: 1',
      'agents:',
      '  plan:',
      '    tools: [shell.exec]',
      `    commands: [${commands.map((c) => JSON.stringify(c)).join(', ')}]`,
      '    max_command_risk: high',
      '',
    ].join('\n'),
  );
}

/** `[ok] run summary written: <path>` → the path (relative to the workspace), or a failure. */
export function summaryPath(result: CliResult): string {
  const m = /^\[ok\] run summary written: (.+)\n$/.exec(result.stdout);
  if (!m)
    throw new Error(`no summary line in stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  return m[1]!;
}

/** Reads run.json and validates it against the published schema. */
export function readSummary(ws: Workspace, path: string): RunSummary {
  const value = JSON.parse(readFileSync(join(ws.cwd, path), 'utf8')) as unknown;
  return runSummarySchema.parse(value);
}

export interface Marker {
  readonly exec_id: string;
  readonly session: string;
  readonly lane: string;
}

export function readMarkerOf(ws: Workspace, runDir: string): Marker {
  return JSON.parse(readFileSync(join(ws.cwd, runDir, '.warden-exec.json'), 'utf8')) as Marker;
}

/** The run directories under `<dir>/runs` (names only), sorted. */
export function runDirs(ws: Workspace, dir = '.'): string[] {
  const runs = join(ws.cwd, dir, 'runs');
  return existsSync(runs) ? readdirSync(runs).sort() : [];
}

export interface EventLine {
  readonly seq: number;
  readonly type: string;
  readonly task_id: string | null;
  readonly data: Record<string, unknown>;
}

/** A session's whole event log, through `warden events --json`. */
export async function sessionEvents(ws: Workspace, session: string): Promise<EventLine[]> {
  const result = await warden(ws, ['events', '--session', session, '--json', '--limit', '100000']);
  if (result.code !== 0) throw new Error(`warden events failed: ${result.stderr}`);
  return result.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as EventLine);
}

export function sha256Of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** What the store holds, coarsely: enough to see that a refused command changed nothing. */
export async function storeFingerprint(ws: Workspace): Promise<string> {
  const file = join(ws.home, 'warden.db');
  if (!existsSync(file)) return 'no store';
  const store = await openSqliteStore({ file });
  try {
    const sessions = (await store.listSessions()).map((s) => s.key).sort();
    const counts = await store.countByState();
    const tasks = await store.listTasks({ limit: 10_000 });
    const audit = await store.readAudit({ limit: 10_000 });
    return JSON.stringify({ sessions, counts, tasks: tasks.length, audit: audit.length });
  } finally {
    await store.close();
  }
}

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ`: the kit's timestamps, always with six fractional digits. */
export const MICROS_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** The run directory stamp (`%Y%m%d_%H%M%SZ`) of an ISO timestamp. */
export function stampOf(iso: string): string {
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}
