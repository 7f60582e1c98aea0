/**
 * The disk's fsync latency, stated in the report because it bounds every system that waits
 * for durability (Warden strict, PostgreSQL commits): a fast NVMe and a network disk differ by
 * 100×. PostgreSQL's own pg_test_fsync when it is installed (1 s per test), otherwise 200
 * writes of 8 KiB each followed by fdatasync from Node, timed one by one.
 */
import {
  existsSync,
  fdatasyncSync,
  openSync,
  closeSync,
  rmSync,
  writeSync,
  readdirSync,
} from 'node:fs';
import { join } from 'node:path';

import { sh } from '../shared/machine.ts';
import { median } from '../shared/stats.ts';

export interface FsyncProbe {
  readonly method: 'pg_test_fsync' | 'node-fdatasync' | 'off';
  /** One 8 kB write + fdatasync, per second. */
  readonly fdatasyncOpsPerSec?: number;
  /** One 8 kB write with O_DSYNC (pg_test_fsync only). */
  readonly openDatasyncOpsPerSec?: number;
  /** Median latency of one write + fdatasync, ms. */
  readonly fdatasyncMs?: number;
  readonly directory: string;
  readonly detail: string;
}

function findPgTestFsync(): string | undefined {
  const onPath = sh('sh', ['-c', 'command -v pg_test_fsync']);
  if (onPath) return onPath;
  const root = '/usr/lib/postgresql';
  try {
    const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const candidate = join(root, v, 'bin', 'pg_test_fsync');
      if (existsSync(candidate)) return candidate;
    }
  } catch {
    /* no PostgreSQL server package */
  }
  return undefined;
}

/** The ops/sec of `method` in pg_test_fsync's first section (one 8 kB write). */
function opsPerSec(output: string, method: string): number | undefined {
  const m = new RegExp(`^\\s*${method}\\s+([\\d.]+) ops/sec`, 'm').exec(output);
  return m ? Number(m[1]) : undefined;
}

function pgTestFsync(binary: string, dir: string): FsyncProbe | undefined {
  const file = join(dir, 'pg_test_fsync.tmp');
  try {
    const output = sh('timeout', ['120', binary, '-s', '1', '-f', file], dir);
    const fdatasync = opsPerSec(output, 'fdatasync');
    if (fdatasync === undefined) return undefined;
    const openDatasync = opsPerSec(output, 'open_datasync');
    return {
      method: 'pg_test_fsync',
      fdatasyncOpsPerSec: fdatasync,
      ...(openDatasync !== undefined ? { openDatasyncOpsPerSec: openDatasync } : {}),
      fdatasyncMs: 1000 / fdatasync,
      directory: dir,
      detail: `${binary} -s 1 -f ${file}`,
    };
  } finally {
    rmSync(file, { force: true });
  }
}

function nodeFdatasync(dir: string, samples = 200): FsyncProbe {
  const file = join(dir, 'fsync-probe.tmp');
  const block = Buffer.alloc(8192, 1);
  const fd = openSync(file, 'w');
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      writeSync(fd, block, 0, block.length, 0);
      fdatasyncSync(fd);
      times.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  const ms = median(times)!;
  return {
    method: 'node-fdatasync',
    fdatasyncMs: ms,
    fdatasyncOpsPerSec: 1000 / ms,
    directory: dir,
    detail: `${samples} × (8 KiB write at offset 0 + fdatasync) from Node, median`,
  };
}

/** `prefer`: 'pg_test_fsync' falls back to Node when the tool is missing or its output unreadable. */
export function probeFsync(dir: string, prefer: 'pg_test_fsync' | 'node' | 'off'): FsyncProbe {
  if (prefer === 'off')
    return { method: 'off', directory: dir, detail: 'not measured (--fsync-probe off)' };
  if (prefer === 'pg_test_fsync') {
    const binary = findPgTestFsync();
    const result = binary ? pgTestFsync(binary, dir) : undefined;
    if (result) return result;
  }
  return nodeFdatasync(dir);
}
