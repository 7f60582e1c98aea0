/**
 * The kit's NoOpAgent (reference A.6): one evidence line per task,
 * `logs/<key>_noop_<%Y%m%d_%H%M%SZ>.txt` containing `NOOP: <id> in <queue> at <ts>\n`, written
 * once whatever crashes. The first attempt writes it. A later attempt runs only because an
 * earlier one died before its success was committed, so it first adopts the file that one
 * wrote (a partial file — the crash fell inside the write — is removed and written again).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

import {
  compactStamp,
  joinPath,
  noopEvidencePath,
  noopEvidenceText,
  type PlanItem,
} from '../core/plan/index.ts';

export interface Evidence {
  readonly path: string;
  readonly sha256: string;
}

const sha256 = (data: string | Uint8Array): string =>
  createHash('sha256').update(data).digest('hex');

/** The task's evidence file: adopted (attempt > 1, when one exists whole) or written now. */
export function noopEvidence(
  runDir: string,
  item: PlanItem,
  attempt: number,
  now: () => number = Date.now,
): Evidence {
  return (
    (attempt > 1 ? findEvidence(runDir, item) : undefined) ?? writeEvidence(runDir, item, now())
  );
}

function writeEvidence(runDir: string, item: PlanItem, nowMs: number): Evidence {
  const stamp = compactStamp(nowMs);
  const path = noopEvidencePath(runDir, item.fileKey, stamp);
  const text = noopEvidenceText(item, stamp);
  // One small write: a crash leaves the whole line or a prefix of it, never another task's.
  writeFileSync(path, text);
  return { path, sha256: sha256(text) };
}

/** An evidence file an earlier attempt of this task wrote whole (a partial one is removed). */
function findEvidence(runDir: string, item: PlanItem): Evidence | undefined {
  const logs = joinPath(runDir, 'logs');
  const pattern = new RegExp(`^${escapeRegExp(item.fileKey)}_noop_(\\d{8}_\\d{6}Z)\\.txt$`);
  let found: Evidence | undefined;
  for (const name of readdirSync(logs)) {
    const m = pattern.exec(name);
    if (!m) continue;
    const path = joinPath(logs, name);
    const text = readFileSync(path, 'utf8');
    if (found === undefined && text === noopEvidenceText(item, m[1]!))
      found = { path, sha256: sha256(text) };
    else rmSync(path, { force: true });
  }
  return found;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
