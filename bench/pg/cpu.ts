/**
 * CPU seconds of one measured clock: the benchmark's own processes (the producer and every
 * worker node, each a child process) plus PostgreSQL, counted two ways.
 *
 * - **all postgres processes**: utime + stime + cutime + cstime of every process named
 *   `postgres` (queue/cpu.ts): complete, but the server is shared, so another client's queries
 *   during the clock are counted too.
 * - **attributed**: the backends serving this benchmark's connections plus the server's
 *   auxiliary processes (WAL writer, checkpointer, background writer, …), which do work for
 *   every client. A backend is ours when the client port in its process title
 *   (`postgres: 15/main: postgres test 127.0.0.1(54321) idle`) is the local port of a TCP
 *   socket one of our processes holds (its `/proc/<pid>/fd` → socket inode → `/proc/net/tcp`).
 *   Backends of connections that close during the clock are missed (their CPU moves into the
 *   postmaster's cutime, which is not attributed), so this is a lower bound for our share.
 *
 * Times are read from /proc/<pid>/stat in clock ticks (`getconf CLK_TCK`).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

import { clockTicks, serverCpuSeconds } from '../queue/cpu.ts';

/** utime + stime (+ cutime + cstime when `children`) of one process, in ticks; 0 once it is gone. */
function ticksOf(pid: number, children: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const fields = children ? [14, 15, 16, 17] : [14, 15];
    return fields.reduce((sum, f) => sum + (Number(rest[f - 3]) || 0), 0);
  } catch {
    return 0;
  }
}

/** Local TCP ports of the sockets the given processes hold open. */
function localPorts(pids: readonly number[]): Set<number> {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        /* closed meanwhile */
      }
    }
  }
  const ports = new Set<number>();
  if (inodes.size === 0) return ports;
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pids[0]}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (cols.length < 10 || !inodes.has(cols[9]!)) continue;
      const port = parseInt(cols[1]!.split(':')[1] ?? '', 16);
      if (Number.isFinite(port)) ports.add(port);
    }
  }
  return ports;
}

interface PgProcess {
  readonly pid: number;
  readonly title: string;
}

function postgresProcesses(): PgProcess[] {
  const out: PgProcess[] = [];
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (comm !== 'postgres' && comm !== 'postmaster') continue;
      const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+/g, ' ').trim();
      out.push({ pid: Number(pid), title });
    } catch {
      /* exited */
    }
  }
  return out;
}

/** A client backend's title carries `host(port)` or `[local]`; the rest are the server's own. */
const CLIENT_PORT = /\s\S+\((\d+)\)/;

export interface CpuMark {
  /** Ticks per benchmark process (producer, workers). */
  readonly bench: ReadonlyMap<number, number>;
  /** Ticks per attributed postgres process (our backends and the auxiliaries). */
  readonly attributed: ReadonlyMap<number, number>;
  /** Seconds of every postgres process, children included. */
  readonly allPostgres: number;
}

export interface CpuSpent {
  /** The producer process. */
  readonly producerSeconds: number;
  /** Every worker node together. */
  readonly workerSeconds: number;
  /** Our backends + the server's auxiliary processes. */
  readonly postgresSeconds: number;
  /** Every postgres process (includes other clients of the shared server). */
  readonly allPostgresSeconds: number;
}

export function cpuMark(benchPids: readonly number[]): CpuMark {
  const bench = new Map<number, number>();
  for (const pid of benchPids) bench.set(pid, ticksOf(pid, false));
  const ports = localPorts(benchPids);
  const attributed = new Map<number, number>();
  for (const p of postgresProcesses()) {
    const m = CLIENT_PORT.exec(p.title);
    if (p.title.includes('[local]')) continue; // unix-socket clients are never ours (we use TCP)
    // The postmaster (no "postgres:" title) is left out: its cutime holds every exited backend's CPU.
    if (!p.title.startsWith('postgres:')) continue;
    if (m ? ports.has(Number(m[1])) : true) attributed.set(p.pid, ticksOf(p.pid, false));
  }
  return { bench, attributed, allPostgres: serverCpuSeconds('postgres') };
}

/**
 * CPU between `start` and a mark taken now. A process missing from `start` (a backend that
 * connected during the clock) counts from zero.
 */
export function cpuSince(start: CpuMark, producerPid: number, workerPids: readonly number[]) {
  const end = cpuMark([producerPid, ...workerPids]);
  const hz = clockTicks();
  const delta = (a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>, pid: number) =>
    Math.max(0, (b.get(pid) ?? 0) - (a.get(pid) ?? 0));
  let postgres = 0;
  for (const pid of end.attributed.keys()) postgres += delta(start.attributed, end.attributed, pid);
  const spent: CpuSpent = {
    producerSeconds: delta(start.bench, end.bench, producerPid) / hz,
    workerSeconds: workerPids.reduce((s, pid) => s + delta(start.bench, end.bench, pid), 0) / hz,
    postgresSeconds: postgres / hz,
    allPostgresSeconds: Math.max(0, end.allPostgres - start.allPostgres),
  };
  return spent;
}
