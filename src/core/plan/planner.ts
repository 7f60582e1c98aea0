/**
 * The NOA kit's planner (`planner.py`), rule for rule (reference/noa-kit-and-kgents.md A.3):
 * the execution-queue section of a source-of-truth markdown document becomes plan JSON v1.
 * Where the kit silently merges or drops lines, Warden keeps the output identical and reports
 * the line as a warning instead (A.8 #7, #9).
 */
import { PY_WHITESPACE, splitLines, strip } from './python-text.ts';

export const SECTION_G = '### G. Execution Queue & Task Hooks';

/** `^\s*\d+\.\s*\*\*Queue\s+([A-Z])\s+—\s+(.+?)\*\*\s*$` with Python's `\s` and `\d`. */
const S = `[${PY_WHITESPACE}]`;
export const QUEUE_HEADER = new RegExp(
  `^${S}*\\p{Nd}+\\.${S}*\\*\\*Queue${S}+([A-Z])${S}+\u2014${S}+(.+?)\\*\\*${S}*$`,
  'u',
);
export const TASK_ID = /`(TASK-[0-9]{3,})`/g;

export type Layer =
  'foundation' | 'orchestration' | 'platform' | 'services' | 'monitoring' | 'execution';

export interface PlanTask {
  readonly id: string;
  readonly title: string;
  readonly layer: Layer;
}

export interface PlanQueue {
  readonly name: string;
  readonly tasks: readonly PlanTask[];
}

export interface PlanWarning {
  /** 1-based line number in the document. */
  readonly line: number;
  readonly message: string;
}

export interface ParsedSot {
  readonly queues: readonly PlanQueue[];
  readonly warnings: readonly PlanWarning[];
}

/** The layer of `TASK-<digits>` by its number (A.3 rule 6). */
export function layerOf(id: string): Layer {
  const n = Number(/^TASK-([0-9]+)$/.exec(id)?.[1] ?? Number.NaN);
  if (n >= 1 && n <= 21) return 'foundation';
  if (n >= 22 && n <= 29) return 'orchestration';
  if (n >= 30 && n <= 41) return 'platform';
  if (n >= 42 && n <= 53) return 'services';
  if (n >= 54 && n <= 61) return 'monitoring';
  return 'execution';
}

/** Parses a document's text (already decoded) into queues, in document order. */
export function parseSot(text: string): ParsedSot {
  const lines = splitLines(text);
  const start = lines.findIndex((line) => strip(line).startsWith(SECTION_G));
  if (start < 0) return { queues: [], warnings: [] };
  const queues: Array<{ name: string; tasks: PlanTask[] }> = [];
  const warnings: PlanWarning[] = [];
  const seen = new Map<string, number>();
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('## ') || (line.startsWith('### ') && !strip(line).startsWith('### G.')))
      break;
    const header = QUEUE_HEADER.exec(line);
    if (header) {
      queues.push({ name: `Queue ${header[1]!} \u2014 ${strip(header[2]!)}`, tasks: [] });
      continue;
    }
    if (line.includes('**Queue')) {
      const into = queues.at(-1);
      warnings.push({
        line: i + 1,
        message: into
          ? `not a queue header (the kit expects "N. **Queue X — Name**"); the tasks below it go to "${into.name}"`
          : 'not a queue header (the kit expects "N. **Queue X — Name**"); the tasks below it are dropped',
      });
    }
    if (!strip(line).startsWith('- Tasks:')) continue;
    const queue = queues.at(-1);
    const ids = [...line.matchAll(TASK_ID)].map((m) => m[1]!);
    if (!queue) {
      if (ids.length > 0)
        warnings.push({
          line: i + 1,
          message: `- Tasks: line before the first queue header: ${ids.join(', ')} ignored`,
        });
      continue;
    }
    for (const id of ids) {
      const count = (seen.get(id) ?? 0) + 1;
      seen.set(id, count);
      if (count === 2)
        warnings.push({
          line: i + 1,
          message: `${id} is listed more than once; every occurrence runs (evidence of the n-th is named ${id}-n)`,
        });
      queue.tasks.push({ id, title: id, layer: layerOf(id) });
    }
  }
  return { queues, warnings };
}

export interface PlanV1 {
  readonly version: 1;
  readonly source: string;
  readonly generated_at: string;
  readonly queues: readonly PlanQueue[];
}

/** The plan object in the kit's key order: version, source, generated_at, queues. */
export function buildPlan(
  queues: readonly PlanQueue[],
  source: string,
  generatedAt: string,
): PlanV1 {
  return {
    version: 1,
    source,
    generated_at: generatedAt,
    queues: queues.map((q) => ({
      name: q.name,
      tasks: q.tasks.map((t) => ({ id: t.id, title: t.title, layer: t.layer })),
    })),
  };
}
