/**
 * What every report states about where it ran: the machine, the load, and the Warden source
 * (commit, and whether src/ had uncommitted changes, since the benchmarks import src/ directly).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = resolve(benchDir, '..');

/** Runs a command and returns its trimmed stdout, or '' when it fails or is missing. */
export function sh(cmd: string, args: readonly string[], cwd = repoDir): string {
  try {
    return execFileSync(cmd, args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  [key: string]: string | number;
}

export function machineInfo(): MachineInfo {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux */
  }
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? '?';
  return {
    cpu: model,
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
  };
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

export function wardenInfo(): { commit: string; dirty: string[] } {
  const commit = sh('git', ['rev-parse', '--short=12', 'HEAD']) || 'unknown';
  // `sh` trims the output, so the first line may have lost the leading space of its status
  // column: strip "XY " by pattern rather than by position.
  const dirty = sh('git', ['status', '--porcelain', '--', 'src'])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^\s*\S{1,2}\s+/, ''));
  return { commit, dirty };
}

/** One markdown line naming the Warden source a report measured. */
export function wardenLine(w: { commit: string; dirty: string[] }): string {
  return `commit \`${w.commit}\`${w.dirty.length ? ` with uncommitted changes in ${w.dirty.map((f) => `\`${f}\``).join(', ')}` : ' (clean src/)'}`;
}

/** The installed version of a bench dependency ('not installed' when missing). */
export function packageVersion(pkg: string, root = benchDir): string {
  try {
    return (
      JSON.parse(readFileSync(resolve(root, 'node_modules', pkg, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return 'not installed';
  }
}
