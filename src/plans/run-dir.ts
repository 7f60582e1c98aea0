/**
 * The run directory (reference A.6): `<dirname(plan)>/runs/<%Y%m%d_%H%M%SZ>/{run.json, logs/}`,
 * never reused (a second run in the same second gets `-2`, `-3`…: A.8 #6). Warden adds one
 * hidden file, `.warden-exec.json`, naming the durable run behind the directory so
 * `warden exec --resume` can continue it, and holds `.warden-exec.lock` while it works.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';

import { z } from 'zod';

import { compactStamp, dirName, joinPath } from '../core/plan/index.ts';
import { KitError } from './kit-error.ts';

export const MARKER_FILE = '.warden-exec.json';
export const LOCK_FILE = '.warden-exec.lock';

export const markerSchema = z.strictObject({
  version: z.literal(1),
  exec_id: z.string().min(1),
  lane: z.string().min(1),
  session: z.string().min(1),
  plan: z.string().min(1),
  plan_sha256: z.string().length(64),
  hooks: z.string().nullable(),
  hooks_sha256: z.string().nullable(),
  tasks: z.number().int().min(0),
  max_workers: z.number().int().min(1),
  dry_run: z.boolean(),
  retries: z.number().int().min(0),
  timeout_ms: z.number().int().positive().nullable(),
  budget_ms: z.number().int().positive().nullable(),
  started: z.string(),
  home: z.string(),
});
export type ExecMarker = z.output<typeof markerSchema>;

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** `<dirname(plan)>/runs`, joined as the kit joins it. */
export function runsDirOf(planPath: string): string {
  return joinPath(dirName(planPath), 'runs');
}

/**
 * Makes a new, empty run directory with `logs/` (mkdir without `recursive` for the run itself:
 * two processes starting in the same second cannot both get one).
 */
export function createRunDir(planPath: string, nowMs: number): string {
  const runs = runsDirOf(planPath);
  mkdirSync(runs === '' ? '.' : runs, { recursive: true });
  const stamp = compactStamp(nowMs);
  for (let n = 1; ; n++) {
    const dir = joinPath(runs, n === 1 ? stamp : `${stamp}-${n}`);
    try {
      mkdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new KitError(`cannot create run directory ${dir}: ${(error as Error).message}`);
    }
    mkdirSync(joinPath(dir, 'logs'));
    return dir;
  }
}

export function writeMarker(runDir: string, marker: ExecMarker): void {
  writeAtomic(joinPath(runDir, MARKER_FILE), `${JSON.stringify(marker, null, 2)}\n`);
}

export function readMarker(runDir: string): ExecMarker {
  const file = joinPath(runDir, MARKER_FILE);
  if (!existsSync(file))
    throw new KitError(
      `${runDir} is not a run directory warden exec can resume (it has no ${MARKER_FILE})`,
    );
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (error) {
    throw new KitError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const parsed = markerSchema.safeParse(value);
  if (!parsed.success) throw new KitError(`${file} is damaged: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

/** The newest run directory of this plan that has a marker and no run.json, or null. */
export function latestUnfinished(planPath: string): string | null {
  const runs = runsDirOf(planPath);
  let names: string[];
  try {
    names = readdirSync(runs === '' ? '.' : runs);
  } catch {
    return null;
  }
  const order = (name: string): [string, number] => {
    const m = /^(\d{8}_\d{6}Z)(?:-(\d+))?$/.exec(name);
    return m ? [m[1]!, Number(m[2] ?? 1)] : ['', 0];
  };
  const candidates = names
    .filter((n) => order(n)[0] !== '')
    .map((n) => joinPath(runs, n))
    .filter((d) => existsSync(joinPath(d, MARKER_FILE)) && !existsSync(joinPath(d, 'run.json')))
    .sort((a, b) => {
      const [sa, na] = order(a.slice(a.lastIndexOf('/') + 1));
      const [sb, nb] = order(b.slice(b.lastIndexOf('/') + 1));
      return sa === sb ? na - nb : sa < sb ? -1 : 1;
    });
  return candidates.at(-1) ?? null;
}

/**
 * Holds the run directory for this process: a second `warden exec --resume` on it while this
 * one works is refused. A lock left by a process that died (same host) is taken over.
 */
export function lockRunDir(runDir: string): () => void {
  const file = joinPath(runDir, LOCK_FILE);
  const me = `${hostname()} ${process.pid}\n`;
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, me);
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const [host, pid] = readFileSync(file, 'utf8').trim().split(' ');
      if (host === hostname() && pid !== undefined && isAlive(Number(pid)))
        throw new KitError(
          `run directory ${runDir} is in use by process ${pid}; wait for it or stop it first`,
          1,
          'CONFLICT',
        );
      if (host !== hostname())
        throw new KitError(
          `run directory ${runDir} is held by host ${host ?? '?'}; remove ${file} if that run is gone`,
        );
      rmSync(file, { force: true }); // its process is gone
    }
  }
  throw new KitError(`cannot lock run directory ${runDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Writes a file whole or not at all. */
export function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}
