/**
 * The noop agent's crash window, deterministically: an attempt that died after writing its
 * evidence file and before its success was committed leaves the file behind; the next attempt
 * must adopt it (not write a second one), and must replace a file the crash cut short.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { type PlanItem } from '../../src/core/plan/index.ts';
import { noopEvidence } from '../../src/plans/noop-agent.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';

afterAll(removeTempDirs);

const item = (id: string, fileKey = id): PlanItem => ({
  index: 0,
  id,
  queue: 'Queue A \u2014 Bootstrapping',
  layer: 'foundation',
  occurrence: fileKey === id ? 1 : 2,
  fileKey,
  hook: null,
  agent: 'noop',
});

function runDir(): string {
  const dir = tempDir('warden-noop-');
  mkdirSync(join(dir, 'logs'));
  return dir;
}

const T1 = Date.UTC(2026, 11, 4, 21, 30, 38);
const T2 = T1 + 5_000; // a later second: a second write would make a second file

describe('noop evidence', () => {
  it("writes the kit's line on the first attempt", () => {
    const dir = runDir();
    const e = noopEvidence(dir, item('TASK-001'), 1, () => T1);
    expect(e.path).toBe(`${dir}/logs/TASK-001_noop_20261204_213038Z.txt`);
    expect(readFileSync(e.path, 'utf8')).toBe(
      'NOOP: TASK-001 in Queue A \u2014 Bootstrapping at 20261204_213038Z\n',
    );
  });

  it('adopts the file an earlier attempt wrote, instead of writing another', () => {
    const dir = runDir();
    const first = noopEvidence(dir, item('TASK-001'), 1, () => T1);
    const second = noopEvidence(dir, item('TASK-001'), 2, () => T2);
    expect(second).toEqual(first);
    expect(readdirSync(join(dir, 'logs'))).toEqual(['TASK-001_noop_20261204_213038Z.txt']);
  });

  it('replaces a file the crash cut short', () => {
    const dir = runDir();
    writeFileSync(join(dir, 'logs', 'TASK-001_noop_20261204_213038Z.txt'), 'NOOP: TASK-0');
    const e = noopEvidence(dir, item('TASK-001'), 2, () => T2);
    expect(readdirSync(join(dir, 'logs'))).toEqual(['TASK-001_noop_20261204_213043Z.txt']);
    expect(readFileSync(e.path, 'utf8')).toMatch(/^NOOP: TASK-001 in .* at 20261204_213043Z\n$/);
  });

  it("does not take another task's or another occurrence's file", () => {
    const dir = runDir();
    noopEvidence(dir, item('TASK-001'), 1, () => T1);
    noopEvidence(dir, item('TASK-0011'), 1, () => T1);
    const dup = noopEvidence(dir, item('TASK-001', 'TASK-001-2'), 3, () => T2);
    expect(dup.path).toBe(`${dir}/logs/TASK-001-2_noop_20261204_213043Z.txt`);
    expect(readdirSync(join(dir, 'logs')).sort()).toEqual([
      'TASK-001-2_noop_20261204_213043Z.txt',
      'TASK-0011_noop_20261204_213038Z.txt',
      'TASK-001_noop_20261204_213038Z.txt',
    ]);
  });
});
