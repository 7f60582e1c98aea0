/**
 * Properties of the planner on random documents (test/helpers/sot-grammar.ts): it never
 * throws, every id it plans sits on a `- Tasks:` line of the document, the queues and ids match
 * an independent model of the rules (reference A.3), layers match exact integer arithmetic, and
 * the plan survives a JSON round trip and validates against the published schema.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { buildPlan, parseSot, planSchema, pythonJson } from '../../src/core/plan/index.ts';
import {
  EDGE_CHARS,
  expectedLayer,
  expectedQueues,
  LINE_BREAKS,
  sotDoc,
  tokenSoup,
} from '../helpers/sot-grammar.ts';

const GENERATED_AT = '2025-10-01T22:05:55.307258Z';

/** The document's lines by every `str.splitlines()` boundary (a plain split: enough to search in). */
const BREAK = new RegExp(LINE_BREAKS.map((b) => (b === '\r\n' ? '\\r\\n' : b)).join('|'), 'u');

/** Holds when `id` is written in backticks on a line of `text` that has `- Tasks:` on it. */
function onTasksLine(text: string, id: string): boolean {
  return text.split(BREAK).some((line) => line.includes('- Tasks:') && line.includes(`\`${id}\``));
}

function checkRoundTrip(text: string): void {
  const parsed = parseSot(text);
  const plan = buildPlan(parsed.queues, 'sot.md', GENERATED_AT);
  const body = pythonJson(plan);
  const back = JSON.parse(body) as unknown;
  expect(back).toEqual(plan);
  const checked = planSchema.safeParse(back);
  expect(checked.success, JSON.stringify(checked.error?.issues)).toBe(true);
  expect(checked.data).toEqual(plan);
}

describe('planner properties on grammar documents', () => {
  it('queues, ids and layers match the model of the rules', () => {
    fc.assert(
      fc.property(sotDoc, (doc) => {
        const parsed = parseSot(doc.text);
        const model = expectedQueues(doc);
        expect(parsed.queues.map((q) => q.name)).toEqual(model.map((q) => q.name));
        expect(parsed.queues.map((q) => q.tasks.map((t) => t.id))).toEqual(model.map((q) => q.ids));
        for (const task of parsed.queues.flatMap((q) => q.tasks)) {
          expect(task.title).toBe(task.id);
          expect(task.layer).toBe(expectedLayer(task.id));
        }
      }),
      { numRuns: 400 },
    );
  });

  it('the task count is the number of backticked ids on Tasks lines after the first valid header', () => {
    fc.assert(
      fc.property(sotDoc, (doc) => {
        const count = parseSot(doc.text).queues.reduce((n, q) => n + q.tasks.length, 0);
        // Counted straight from the line kinds: inside section G, after a valid header.
        let started = false;
        let open = false;
        let expected = 0;
        for (const [i, line] of doc.lines.entries()) {
          const bomLine = doc.bom && i === 0;
          if (!started) {
            started = line.starts && !bomLine;
            continue;
          }
          if (line.stops) break;
          if (line.queue !== null) open = true;
          else if (open && line.ids !== null) expected += line.ids.length;
        }
        expect(count).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('every planned id is written in backticks on a - Tasks: line of the document', () => {
    fc.assert(
      fc.property(sotDoc, (doc) => {
        for (const q of parseSot(doc.text).queues)
          for (const t of q.tasks) expect(onTasksLine(doc.text, t.id), t.id).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('the plan round-trips through JSON and validates against planSchema', () => {
    fc.assert(
      fc.property(sotDoc, (doc) => checkRoundTrip(doc.text)),
      { numRuns: 300 },
    );
  });
});

describe('planner properties on arbitrary text', () => {
  const anyText = fc.oneof(
    tokenSoup,
    fc.string({ unit: fc.constantFrom(...EDGE_CHARS), maxLength: 80 }),
    fc.string({ unit: 'grapheme', maxLength: 80 }),
  );

  it('never throws; planned ids sit on Tasks lines; JSON round trip and schema hold', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const parsed = parseSot(text);
        for (const q of parsed.queues) {
          expect(q.name.startsWith('Queue ')).toBe(true);
          for (const t of q.tasks) expect(onTasksLine(text, t.id), t.id).toBe(true);
        }
        for (const w of parsed.warnings) expect(w.line).toBeGreaterThanOrEqual(1);
        checkRoundTrip(text);
      }),
      { numRuns: 400 },
    );
  });
});
