/**
 * CPU time of a measured run, including the database servers' processes: an in-process SQLite
 * queue does all its work in the benchmark's process, while a Redis or PostgreSQL queue does
 * much of it in the server, so counting only the client would flatter the client–server peers.
 *
 * Client: process.cpuUsage() of the measuring process (all its threads). Server: utime + stime
 * + cutime + cstime of every process whose /proc/<pid>/comm is the server's name, read from
 * /proc/<pid>/stat (in clock ticks, `getconf CLK_TCK`). The children's fields matter for
 * PostgreSQL: a backend that exits during the run is reaped by the postmaster, and its CPU
 * moves into the postmaster's cutime/cstime instead of vanishing from the sum.
 */
import { readdirSync, readFileSync } from 'node:fs';

import { sh } from '../shared/machine.ts';

export type ServerName = 'redis' | 'postgres';

/** `comm` of the processes that belong to each server. */
const COMM: Record<ServerName, ReadonlySet<string>> = {
  redis: new Set(['redis-server']),
  postgres: new Set(['postgres', 'postmaster']),
};

let ticksPerSecond: number | undefined;
export function clockTicks(): number {
  ticksPerSecond ??= Number(sh('getconf', ['CLK_TCK'])) || 100;
  return ticksPerSecond;
}

/** The server's processes' CPU seconds so far (0 when /proc is unreadable or none run). */
export function serverCpuSeconds(server: ServerName): number {
  const names = COMM[server];
  let ticks = 0;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return 0;
  }
  for (const pid of pids) {
    try {
      if (!names.has(readFileSync(`/proc/${pid}/comm`, 'utf8').trim())) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after "(comm)": state is field 3, utime 14, stime 15, cutime 16, cstime 17.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      for (const field of [14, 15, 16, 17]) ticks += Number(rest[field - 3]) || 0;
    } catch {
      // The process exited between listing and reading: its CPU is in its parent's cutime.
    }
  }
  return ticks / clockTicks();
}

/** How many processes the server has now (stated in the report, so a missing server shows). */
export function serverProcessCount(server: ServerName): number {
  let count = 0;
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (COMM[server].has(readFileSync(`/proc/${pid}/comm`, 'utf8').trim())) count += 1;
      } catch {
        /* exited */
      }
    }
  } catch {
    /* no /proc */
  }
  return count;
}

export interface CpuMark {
  readonly client: NodeJS.CpuUsage;
  readonly server: number;
}

export interface CpuSpent {
  readonly clientSeconds: number;
  readonly serverSeconds: number;
}

export function cpuMark(server: ServerName | null): CpuMark {
  return { client: process.cpuUsage(), server: server ? serverCpuSeconds(server) : 0 };
}

export function cpuSince(mark: CpuMark, server: ServerName | null): CpuSpent {
  const c = process.cpuUsage(mark.client);
  return {
    clientSeconds: (c.user + c.system) / 1e6,
    serverSeconds: server ? Math.max(0, serverCpuSeconds(server) - mark.server) : 0,
  };
}
